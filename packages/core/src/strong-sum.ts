/**
 * Strong block sums: seeded xxh64 for the native format; BLAKE2b-256 and MD4 for librsync's.
 * Node's crypto has neither BLAKE2b-256 (only blake2b512, a different function, not a prefix) nor
 * MD4, so both come from hash-wasm; xxh64 from xxhash-wasm.
 *
 * Their WebAssembly modules can only be set up asynchronously, and the functions here are
 * synchronous: `loadStrongSums()` sets them up (once; later calls return the same promise) and a sum
 * asked for before it has finished is a `NOT_READY` error. The package's main entry waits for it at
 * import; `@deltacast/core/deferred` leaves it to the caller, so a program can start (and be loaded
 * from V8's code cache, which a module with a top-level await cannot) without waiting for it.
 */
import { createBLAKE2b, createMD4, type IHasher } from 'hash-wasm';
import xxhash from 'xxhash-wasm';
import { NATIVE_XXH64_LENGTH, RS_BLAKE2_SUM_LENGTH, RS_MD4_SUM_LENGTH } from './constants.js';
import { DeltacastError } from './errors.js';

export type StrongSumKind = 'xxh64' | 'blake2' | 'md4';

type XXHash = Awaited<ReturnType<typeof xxhash>>;

let xxh: XXHash | undefined;
let blake2Hasher: IHasher | undefined;
let md4Hasher: IHasher | undefined;
let loading: Promise<void> | undefined;

/**
 * Sets up the hash modules; resolves once every strong sum can be computed. Safe to call any number
 * of times. Signatures and deltas that hash blocks need it to have resolved.
 */
export function loadStrongSums(): Promise<void> {
  loading ??= Promise.all([xxhash(), createBLAKE2b(256), createMD4()]).then(([x, b, m]) => {
    xxh = x;
    blake2Hasher = b;
    md4Hasher = m;
  });
  return loading;
}

/** Whether loadStrongSums() has finished. */
export function strongSumsLoaded(): boolean {
  return xxh !== undefined;
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
