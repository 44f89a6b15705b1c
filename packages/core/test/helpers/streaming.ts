/**
 * For testing the streaming forms, which break at chunk edges if anywhere: ways to cut data into
 * chunks, and a byte comparison that says where two outputs part.
 */
import { expect } from 'vitest';

/** `data` cut into pieces of `size` bytes (the last may be shorter); one empty piece for empty data. */
export function chunksOf(data: Uint8Array, size: number): Uint8Array[] {
  if (data.length === 0) return [data];
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) pieces.push(data.subarray(at, at + size));
  return pieces;
}

/**
 * `data` cut at seeded pseudo-random points into pieces of 1 .. `maxSize` bytes: every alignment of
 * chunk edges to block edges, including 1-byte pieces, at a cost of one call per few hundred bytes.
 */
export function irregularChunks(data: Uint8Array, seed: number, maxSize: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let x = seed >>> 0 || 0x9e3779b9;
  for (let at = 0; at < data.length; ) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // Mostly short pieces, now and then a long one.
    const size = 1 + ((x >>> 0) % ((x & 0x300) === 0 ? maxSize : 16));
    pieces.push(data.subarray(at, at + size));
    at += size;
  }
  return pieces.length > 0 ? pieces : [data];
}

export interface Chunking {
  label: string;
  pieces: Uint8Array[];
}

/**
 * The chunkings to feed `data` in: sizes 1, 2, 3, 7 (only up to `tinyLimit` bytes: one call per byte
 * or two is slow on large data), 100, 4093 (prime, so edges drift across blocks), 10000, the
 * whole, and an irregular cut with pieces from 1 byte to `maxIrregular`.
 */
export function chunkings(data: Uint8Array, { tinyLimit = 16 * 1024, seed = 1, maxIrregular = 4096 } = {}): Chunking[] {
  const sizes = data.length <= tinyLimit ? [1, 2, 3, 7, 100, 4093, 10000] : [100, 4093, 10000];
  return [
    ...sizes.map((size) => ({ label: `chunks of ${size}`, pieces: chunksOf(data, size) })),
    { label: 'one chunk', pieces: [data] },
    { label: `irregular chunks (seed ${seed})`, pieces: irregularChunks(data, seed, maxIrregular) },
  ];
}

/** Compares bytes by length and first differing offset, so a failure says where, not a 1 MiB diff. */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const n = Math.min(actual.length, expected.length);
  let first = actual.length === expected.length ? -1 : n;
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      first = i;
      break;
    }
  }
  expect({ what, length: actual.length, firstDifference: first }).toEqual({ what, length: expected.length, firstDifference: -1 });
}
