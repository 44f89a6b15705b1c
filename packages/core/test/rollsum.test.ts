import { describe, expect, it } from 'vitest';
import { ROLLSUM_CHAR_OFFSET, Rollsum, rollsumSum } from '../src/index.js';
import { blockSums, bytes, expectRollingAgrees, hasRdiff, pseudoRandom, rdiffWeakSums, withRdiff } from './helpers.js';

/** The definition: s1 = sum(b + 31), s2 = sum of s1 after each byte, digest = s2 << 16 | s1, both mod 2^16. */
function reference(data: Uint8Array): number {
  let s1 = 0n;
  let s2 = 0n;
  for (const b of data) {
    s1 += BigInt(b) + 31n;
    s2 += s1;
  }
  return Number(((s2 % 65536n) << 16n) | (s1 % 65536n));
}

const ramp256 = Uint8Array.from({ length: 256 }, (_, i) => i);

// Computed by hand from the definition; librsync's rollsum test has the same two for [0,1,2,3]
// (0x01400082) and 0..255 (0x3a009e80).
const KNOWN: [string, Uint8Array, number][] = [
  ['[0,1,2,3]', new Uint8Array([0, 1, 2, 3]), 0x01400082],
  ['empty', new Uint8Array(0), 0x00000000],
  ['"abc"', bytes('abc'), 0x03040183],
  ['0..255', ramp256, 0x3a009e80],
];

describe('rollsumSum', () => {
  it('uses librsync character offset 31', () => {
    expect(ROLLSUM_CHAR_OFFSET).toBe(31);
  });

  it('[0,1,2,3] by hand: s1 = 31+32+33+34 = 130, s2 = 31+63+96+130 = 320', () => {
    expect(rollsumSum(new Uint8Array([0, 1, 2, 3]))).toBe((320 << 16) | 130);
  });

  it.each(KNOWN)('of %s is the known answer', (_name, data, expected) => {
    expect(reference(data)).toBe(expected);
    expect(rollsumSum(data)).toBe(expected);
    expect(new Rollsum().update(data).digest()).toBe(expected);
  });

  it('sums a sub-range [start, end)', () => {
    const data = pseudoRandom(100, 5);
    expect(rollsumSum(data, 13, 90)).toBe(reference(data.subarray(13, 90)));
  });

  it('stays exact past 2^16 and 2^17 bytes (both halves wrap mod 2^16)', () => {
    const data = new Uint8Array(200_003).fill(255);
    expect(rollsumSum(data)).toBe(reference(data));
    expect(new Rollsum().update(data).digest()).toBe(reference(data));
  });
});

describe('Rollsum (incremental)', () => {
  it('update in pieces equals one update', () => {
    const data = pseudoRandom(500, 17);
    const sum = new Rollsum().update(data, 0, 3).update(data, 3, 3).update(data, 3, 499).update(data, 499, 500);
    expect(sum.count).toBe(500);
    expect(sum.digest()).toBe(reference(data));
  });

  it('rotate, rollin and rollout agree with recomputation on the known inputs', () => {
    expectRollingAgrees(() => new Rollsum(), reference, ramp256);
    expect(new Rollsum().digest()).toBe(0);
  });
});

describe.skipIf(!hasRdiff)(withRdiff('Rollsum against rdiff'), () => {
  // A one-block basis: the signature's first record holds the block's weak sum.
  it.each(KNOWN.filter(([, data]) => data.length > 0))('weak sum of %s equals rdiff signature', (_name, data, expected) => {
    expect(rdiffWeakSums(data, 1024, 'rollsum')).toEqual({ magic: 0x72730136, weakSums: [expected] });
  });

  it('per-block weak sums of a multi-block file equal rdiff signature', () => {
    const data = pseudoRandom(5000, 99);
    expect(rdiffWeakSums(data, 700, 'rollsum').weakSums).toEqual(blockSums(data, 700, (block) => rollsumSum(block)));
  });
});
