/**
 * @deltacast/core: everything in deferred.ts, with the strong-sum hash modules set up before the
 * importer runs, so every function can be called at once.
 */
import { loadStrongSums } from './strong-sum.js';

export * from './deferred.js';

await loadStrongSums();
