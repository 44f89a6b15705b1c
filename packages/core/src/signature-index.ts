/**
 * A signature turned into a lookup table, once, and reused for any number of deltas.
 *   - prefilter: a bitmap of 256 bits a block (up to 8 MiB), so "no block has this weak sum" costs one memory read;
 *   - buckets: head/next chains in Int32Arrays, blocks in ascending order within a bucket.
 * Weak sums are mixed with a Fibonacci multiplier first: rollsum's low half is a plain byte sum and
 * would crowd a few buckets otherwise.
 */
import type { Signature } from './signature.js';

export const WEAK_MIX = 0x9e3779b1;

/** Limit on strong comparisons against blocks of equal weak sum at one offset (pathological inputs). */
export const MAX_CANDIDATES = 64;

export class SignatureIndex {
  readonly signature: Signature;
  /** Bit i set when some block's mixed weak sum has top bits i. */
  readonly prefilter: Int32Array;
  /** 32 - log2(prefilter bits). */
  readonly prefilterShift: number;
  readonly heads: Int32Array;
  readonly next: Int32Array;
  /** 32 - log2(bucket count). */
  readonly bucketShift: number;

  constructor(signature: Signature) {
    this.signature = signature;
    const n = signature.blockCount;
    const prefilterBits = Math.min(26, Math.max(12, ceilLog2(n) + 8));
    const bucketBits = Math.min(24, Math.max(4, ceilLog2(n) + 1));
    this.prefilterShift = 32 - prefilterBits;
    this.bucketShift = 32 - bucketBits;
    this.prefilter = new Int32Array(1 << (prefilterBits - 5));
    this.heads = new Int32Array(1 << bucketBits).fill(-1);
    this.next = new Int32Array(n).fill(-1);
    const { weakSums } = signature;
    // Insert from the last block down so every chain lists blocks in ascending order.
    for (let i = n - 1; i >= 0; i--) {
      const mixed = Math.imul(weakSums[i], WEAK_MIX);
      const bit = mixed >>> this.prefilterShift;
      this.prefilter[bit >>> 5] |= 1 << (bit & 31);
      const bucket = mixed >>> this.bucketShift;
      this.next[i] = this.heads[bucket];
      this.heads[bucket] = i;
    }
  }

  /** Cheap test: false means no block has this weak sum. */
  mayContain(weak: number): boolean {
    const bit = Math.imul(weak, WEAK_MIX) >>> this.prefilterShift;
    return (this.prefilter[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  /** First block in the bucket of `weak` (-1 if none); walk on with `next`. */
  firstCandidate(weak: number): number {
    return this.heads[Math.imul(weak, WEAK_MIX) >>> this.bucketShift];
  }
}

function ceilLog2(n: number): number {
  return n <= 1 ? 0 : 32 - Math.clz32(n - 1);
}

/** Builds the lookup table for a signature. Reuse it for every delta against the same basis. */
export function indexSignature(signature: Signature): SignatureIndex {
  return new SignatureIndex(signature);
}
