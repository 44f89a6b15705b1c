/**
 * @deltacast/core: everything in deferred.ts, with the hash modules (strong sums, XXH3-128) set up
 * before the importer runs, so every function can be called at once.
 */
import { loadFileHashes } from './file-hash.js';
import { loadStrongSums } from './strong-sum.js';

export * from './deferred.js';

await Promise.all([loadStrongSums(), loadFileHashes()]);
