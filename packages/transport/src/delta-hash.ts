/**
 * The whole-file hash the deltas sent to agents carry (docs/format.md, Native delta): XXH3-128 for an
 * agent that lists `delta-xxh128`, ~3x faster to compute on both sides than SHA-256, which every
 * agent reads and every other one gets. A payload written to several agents (a fan-out's shared
 * delta) carries XXH3-128 only if each of them takes it. Its WebAssembly module (~10 ms of CPU) is
 * set up (`loadDeltaHashes`) once the source is scanned, while the agents walk and compare and this
 * side waits; the paths that make deltas wait for it. Should it fail, deltas carry SHA-256: slower,
 * never wrong.
 */
import { fileHashLoaded, loadFileHashes, loadStrongSums, type FileHashKind } from '@deltacast/core/deferred';
import type { AgentClient } from './agent-client.js';
import { DELTA_XXH128_CAPABILITY } from './messages.js';

/** The whole-file hash of deltas for all of `clients`. */
export function deltaFileHash(clients: AgentClient | Iterable<AgentClient>): FileHashKind {
  if (!fileHashLoaded('xxh128')) return 'sha256';
  const list = Symbol.iterator in clients ? (clients as Iterable<AgentClient>) : [clients as AgentClient];
  for (const client of list) {
    if (!(client.info?.capabilities.includes(DELTA_XXH128_CAPABILITY) ?? false)) return 'sha256';
  }
  return 'xxh128';
}

/**
 * Sets up what making deltas needs: xxh64 to match blocks, XXH3-128 for the END. A failure to set
 * up XXH3-128 leaves deltas on SHA-256 rather than failing them.
 */
export function loadDeltaHashes(): Promise<void> {
  return Promise.all([loadStrongSums(['xxh64']), loadFileHashes().catch(() => {})]).then(() => undefined);
}
