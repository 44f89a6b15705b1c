import { describe, expect, it } from 'vitest';
import { RABINKARP_MULT, RABINKARP_SEED, RabinKarp, rabinKarpSum } from '../src/index.js';
import { RABINKARP_ADJ, RABINKARP_INVM, rabinKarpPower } from '../src/rabinkarp.js';
import { blockSums, bytes, expectRollingAgrees, hasRdiff, pseudoRandom, rdiffWeakSums, withRdiff } from './helpers.js';

/** The definition, in BigInt: 1 * M^n + sum b[i] * M^(n-1-i) mod 2^32. */
function reference(data: Uint8Array): number {
  const M = 0x08104225n;
  const mod = 1n << 32n;
  const n = data.length;
  let h = 1n;
  for (let i = 0; i < n; i++) h = (h * M) % mod;
  let pow = 1n;
  for (let i = n - 1; i >= 0; i--) {
    h = (h + BigInt(data[i]) * pow) % mod;
    pow = (pow * M) % mod;
  }
  return Number(h);
}

const ramp256 = Uint8Array.from({ length: 256 }, (_, i) => i);

// Known answers computed from the definition with arbitrary-precision integers (and librsync's own
// rabinkarp test uses [0,1,2,3] -> 0xaf981e97).
const KNOWN: [string, Uint8Array, number][] = [
  ['[0,1,2,3]', new Uint8Array([0, 1, 2, 3]), 0xaf981e97],
  ['empty', new Uint8Array(0), 0x00000001],
  ['"abc"', bytes('abc'), 0x66298923],
  ['0..255', ramp256, 0xc1972381],
];

describe('rabinKarpSum', () => {
  it('uses librsync constants', () => {
    expect(RABINKARP_SEED).toBe(1);
    expect(RABINKARP_MULT).toBe(0x08104225);
    // INVM is the inverse of MULT mod 2^32; ADJ folds the seed into the leaving byte.
    expect(Number((BigInt(RABINKARP_MULT) * BigInt(RABINKARP_INVM)) % (1n << 32n))).toBe(1);
    expect(RABINKARP_ADJ).toBe(RABINKARP_SEED * (RABINKARP_MULT - 1));
  });

  it.each(KNOWN)('of %s is the known answer', (_name, data, expected) => {
    expect(reference(data)).toBe(expected);
    expect(rabinKarpSum(data)).toBe(expected);
    expect(new RabinKarp().update(data).digest()).toBe(expected);
  });

  it('matches the definition for lengths 0..40 (the 4-byte unrolled loop and its tail)', () => {
    const data = pseudoRandom(40, 7);
    for (let n = 0; n <= 40; n++) expect(rabinKarpSum(data, 0, n), `length ${n}`).toBe(reference(data.subarray(0, n)));
  });

  it('matches the definition on the 8-byte word path (aligned, 64 bytes and more) and beside it (unaligned)', () => {
    const data = pseudoRandom(300, 11);
    for (const start of [0, 1, 2, 3, 4, 8]) {
      for (let n = 60; n <= 140; n++) expect(rabinKarpSum(data, start, start + n), `start ${start}, length ${n}`).toBe(reference(data.subarray(start, start + n)));
    }
  });

  it('sums a sub-range [start, end)', () => {
    const data = pseudoRandom(100, 3);
    expect(rabinKarpSum(data, 10, 77)).toBe(reference(data.subarray(10, 77)));
  });

  it('is unsigned 32-bit', () => {
    const data = new Uint8Array(1000).fill(255);
    const h = rabinKarpSum(data);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(h).toBeLessThan(2 ** 32);
    expect(h).toBe(reference(data));
  });

  it('rabinKarpPower(n) is MULT^n mod 2^32', () => {
    let p = 1n;
    for (let n = 0; n < 70; n++) {
      expect(rabinKarpPower(n), `n = ${n}`).toBe(Number(p));
      p = (p * BigInt(RABINKARP_MULT)) % (1n << 32n);
    }
  });
});

describe('RabinKarp (incremental)', () => {
  it('update in pieces equals one update', () => {
    const data = pseudoRandom(333, 11);
    const sum = new RabinKarp();
    for (const [a, b] of [
      [0, 1],
      [1, 6],
      [6, 6],
      [6, 200],
      [200, 333],
    ]) {
      sum.update(data, a, b);
    }
    expect(sum.count).toBe(333);
    expect(sum.digest()).toBe(reference(data));
  });

  it('rotate, rollin and rollout agree with recomputation on the known inputs', () => {
    expectRollingAgrees(() => new RabinKarp(), reference, ramp256);
    expect(new RabinKarp().digest()).toBe(RABINKARP_SEED);
  });
});

describe.skipIf(!hasRdiff)(withRdiff('RabinKarp against rdiff'), () => {
  // A one-block basis: the signature's first record holds the block's weak sum.
  it.each(KNOWN.filter(([, data]) => data.length > 0))('weak sum of %s equals rdiff signature', (_name, data, expected) => {
    expect(rdiffWeakSums(data, 1024, 'rabinkarp')).toEqual({ magic: 0x72730146, weakSums: [expected] });
  });

  it('per-block weak sums of a multi-block file equal rdiff signature', () => {
    const data = pseudoRandom(5000, 99);
    expect(rdiffWeakSums(data, 700, 'rabinkarp').weakSums).toEqual(blockSums(data, 700, (block) => rabinKarpSum(block)));
  });
});
