/** Default block lengths from the basis length: rdiff's rule for its format, rsync's for ours. */
import { RS_DEFAULT_BLOCK_LENGTH } from './constants.js';

/** floor(sqrt(n)) exactly, for any safe integer n >= 0. */
export function isqrt(n: number): number {
  let r = Math.floor(Math.sqrt(n));
  while (r * r > n) r--;
  while ((r + 1) * (r + 1) <= n) r++;
  return r;
}

/**
 * librsync rs_sig_args(): 256 for a basis up to 256*256 bytes, else sqrt(length) rounded down to a
 * multiple of 128 (a cache line); 2048 when the length is unknown (a pipe).
 */
export function rdiffBlockLength(basisLength: number | undefined): number {
  if (basisLength === undefined || basisLength < 0) return RS_DEFAULT_BLOCK_LENGTH;
  if (basisLength <= 256 * 256) return 256;
  return isqrt(basisLength) & ~127;
}

/** rsync's BLOCK_SIZE and MAX_BLOCK_SIZE (rsync.h, protocol 30+). */
const RSYNC_MIN_BLOCK = 700;
const RSYNC_MAX_BLOCK = 1 << 17;

/**
 * rsync generator.c sum_sizes_sqroot(): sqrt(length) rounded down to a multiple of 8, at least 700
 * and at most 128 KiB. Larger blocks than rdiff's make signatures smaller and faster for big files.
 * 2048 when the length is unknown.
 */
export function nativeBlockLength(basisLength: number | undefined): number {
  if (basisLength === undefined || basisLength < 0) return RS_DEFAULT_BLOCK_LENGTH;
  const rounded = isqrt(basisLength) & ~7;
  return Math.min(RSYNC_MAX_BLOCK, Math.max(RSYNC_MIN_BLOCK, rounded));
}

/** floor(log2(v)) for v >= 1 (librsync rs_long_ln2). */
function floorLog2(v: number): number {
  let n = 0;
  for (let x = v; x >= 2; x = Math.floor(x / 2)) n++;
  return n;
}

/**
 * rdiff `-S -1`: the shortest strong sum that keeps collisions unlikely for this basis (librsync
 * rs_sig_args): 2 + ceil((log2(length + 2^24) + log2(length / blockLength + 1)) / 8), capped at `max`.
 */
export function rdiffMinStrongLength(basisLength: number, blockLength: number, max: number): number {
  const bits = floorLog2(basisLength + (1 << 24)) + floorLog2(Math.floor(basisLength / blockLength) + 1);
  return Math.min(max, 2 + Math.floor((bits + 7) / 8));
}
