/**
 * Strong block sums: seeded xxh64 for the native format; BLAKE2b-256 and MD4 for librsync's.
 * Node's crypto has neither BLAKE2b-256 (only blake2b512, a different function, not a prefix) nor
 * MD4, so both come from hash-wasm; xxh64 from xxhash-wasm.
 *
 * Their WebAssembly modules can only be set up asynchronously, and the functions here are
 * synchronous: `loadStrongSums()` sets them up (once; later calls return the same promise), all of
 * them or the kinds named, and a sum asked for before its kind is set up is a `NOT_READY` error.
 * The package's main entry waits for all of them at import; `@deltacast/core/deferred` leaves it
 * to the caller, so a program can start (and be loaded from V8's code cache, which a module with a
 * top-level await cannot) without waiting for it.
 */
import type { IHasher } from 'hash-wasm';
import xxhash from 'xxhash-wasm';
import { NATIVE_XXH64_LENGTH, RS_BLAKE2_SUM_LENGTH, RS_MD4_SUM_LENGTH } from './constants.js';
import { DeltacastError } from './errors.js';

export type StrongSumKind = 'xxh64' | 'blake2' | 'md4';

type XXHash = Awaited<ReturnType<typeof xxhash>>;

let xxh: XXHash | undefined;
let blake2Hasher: IHasher | undefined;
let md4Hasher: IHasher | undefined;

const ALL_KINDS: readonly StrongSumKind[] = ['xxh64', 'blake2', 'md4'];

/**
 * How each kind is set up. hash-wasm is imported (librsync-sums.ts) only for librsync's sums: a
 * native sync never computes them, and compiling their modules took ~40 ms of CPU at every start.
 */
const setUp: Record<StrongSumKind, () => Promise<void>> = {
  xxh64: () => xxhash().then((x) => void (xxh = x)),
  blake2: () => import('./librsync-sums.js').then((h) => h.createBLAKE2b(256)).then((b) => void (blake2Hasher = b)),
  md4: () => import('./librsync-sums.js').then((h) => h.createMD4()).then((m) => void (md4Hasher = m)),
};

const loading = new Map<StrongSumKind, Promise<void>>();
/** The promise returned for each list of kinds asked for, so that a repeated call returns the same one. */
const returned = new Map<string, Promise<void>>();

/**
 * Sets up the hash modules of `kinds` (by default every kind); resolves once each of their strong
 * sums can be computed. Safe to call any number of times: each kind is set up once, and a later
 * call returns the same outcome. Signatures and deltas that hash blocks need it to have resolved
 * for their kind.
 */
export function loadStrongSums(kinds: readonly StrongSumKind[] = ALL_KINDS): Promise<void> {
  const key = kinds.join();
  let all = returned.get(key);
  if (!all) {
    all = Promise.all(
      kinds.map((kind) => {
        let ready = loading.get(kind);
        if (!ready) {
          ready = setUp[kind]();
          loading.set(kind, ready);
        }
        return ready;
      }),
    ).then(() => undefined);
    returned.set(key, all);
  }
  return all;
}

/** Whether loadStrongSums() has finished for `kinds` (by default every kind). */
export function strongSumsLoaded(kinds: readonly StrongSumKind[] = ALL_KINDS): boolean {
  return kinds.every((kind) => (kind === 'xxh64' ? xxh : kind === 'blake2' ? blake2Hasher : md4Hasher) !== undefined);
}

function notReady(): never {
  throw new DeltacastError('NOT_READY', 'the strong-sum hash modules are not set up yet: await loadStrongSums() first');
}

/** Full length in bytes of each strong sum. */
export function strongSumMaxLength(kind: StrongSumKind): number {
  switch (kind) {
    case 'xxh64':
      return NATIVE_XXH64_LENGTH;
    case 'blake2':
      return RS_BLAKE2_SUM_LENGTH;
    case 'md4':
      return RS_MD4_SUM_LENGTH;
  }
}

/** Seeded xxh64 of a block as a bigint. */
export function xxh64(data: Uint8Array, seed: bigint): bigint {
  return (xxh ?? notReady()).h64Raw(data, seed);
}

function hashWasm(hasher: IHasher, data: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
}

/** BLAKE2b with a 32-byte digest, unkeyed (librsync's RS_BLAKE2_SUM_LENGTH). */
export function blake2b256(data: Uint8Array): Uint8Array {
  return hashWasm(blake2Hasher ?? notReady(), data);
}

/** MD4 (RFC 1320), librsync's original strong sum. */
export function md4(data: Uint8Array): Uint8Array {
  return hashWasm(md4Hasher ?? notReady(), data);
}

/**
 * Writes the first `length` bytes of the strong sum of `block` to `out` at `outOffset`.
 * xxh64 is written big-endian; `seed` is used by xxh64 only (librsync's sums are unseeded).
 */
export function writeStrongSum(
  kind: StrongSumKind,
  block: Uint8Array,
  seed: bigint,
  out: Uint8Array,
  outOffset: number,
  length: number,
): void {
  if (kind === 'xxh64') {
    const v = (xxh ?? notReady()).h64Raw(block, seed);
    // Big-endian, most significant byte first; truncation keeps the high bytes.
    const hi = Number(v >> 32n);
    const lo = Number(v & 0xffffffffn);
    for (let i = 0; i < length; i++) {
      out[outOffset + i] = i < 4 ? hi >>> (24 - 8 * i) : lo >>> (56 - 8 * i);
    }
    return;
  }
  const digest = hashWasm((kind === 'blake2' ? blake2Hasher : md4Hasher) ?? notReady(), block);
  out.set(length === digest.length ? digest : digest.subarray(0, length), outOffset);
}
