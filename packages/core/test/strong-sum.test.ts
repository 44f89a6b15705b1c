import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blake2b256, md4, strongSumMaxLength, xxh64 } from '../src/index.js';
import { writeStrongSum } from '../src/strong-sum.js';
import { bytes, hex, pseudoRandom } from './helpers.js';

describe('md4', () => {
  // RFC 1320, appendix A.5 test suite.
  it.each([
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ])('md4(%j)', (input, expected) => {
    expect(hex(md4(bytes(input)))).toBe(expected);
  });

  it('is stateless between calls (the hasher is reused)', () => {
    const first = hex(md4(bytes('abc')));
    md4(pseudoRandom(1000));
    expect(hex(md4(bytes('abc')))).toBe(first);
  });
});

describe('blake2b256', () => {
  // BLAKE2b with a 32-byte digest, unkeyed (RFC 7693 parameter block with digest length 32).
  it.each([
    ['', '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8'],
    ['abc', 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319'],
  ])('blake2b256(%j)', (input, expected) => {
    const digest = blake2b256(bytes(input));
    expect(digest.length).toBe(32);
    expect(hex(digest)).toBe(expected);
  });

  it('is not BLAKE2b-512 truncated to 32 bytes (the digest length is a parameter of the hash)', () => {
    for (const input of ['', 'abc', 'message digest']) {
      const long = createHash('blake2b512').update(input).digest().subarray(0, 32);
      expect(hex(blake2b256(bytes(input)))).not.toBe(long.toString('hex'));
    }
  });
});

/** xxh64 from its specification, in BigInt, to check seeded values independently. */
function xxh64Reference(data: Uint8Array, seed: bigint): bigint {
  const P1 = 11400714785074694791n;
  const P2 = 14029467366897019727n;
  const P3 = 1609587929392839161n;
  const P4 = 9650029242287828579n;
  const P5 = 2870177450012600261n;
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
  const u64 = (at: number) => new DataView(data.buffer, data.byteOffset).getBigUint64(at, true);
  const u32 = (at: number) => BigInt(new DataView(data.buffer, data.byteOffset).getUint32(at, true));
  const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & M, 31n) * P1) & M;
  const merge = (acc: bigint, v: bigint) => (((acc ^ round(0n, v)) * P1 + P4) & M);
  const n = data.length;
  let i = 0;
  let h: bigint;
  if (n >= 32) {
    let v1 = (seed + P1 + P2) & M;
    let v2 = (seed + P2) & M;
    let v3 = seed;
    let v4 = (seed - P1) & M;
    for (; i + 32 <= n; i += 32) {
      v1 = round(v1, u64(i));
      v2 = round(v2, u64(i + 8));
      v3 = round(v3, u64(i + 16));
      v4 = round(v4, u64(i + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = (seed + P5) & M;
  }
  h = (h + BigInt(n)) & M;
  for (; i + 8 <= n; i += 8) h = ((rotl(h ^ round(0n, u64(i)), 27n) * P1 + P4) & M);
  if (i + 4 <= n) {
    h = ((rotl(h ^ ((u32(i) * P1) & M), 23n) * P2 + P3) & M);
    i += 4;
  }
  for (; i < n; i++) h = (rotl(h ^ ((BigInt(data[i]) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

describe('xxh64', () => {
  it('has the published known answers for seed 0', () => {
    expect(xxh64(new Uint8Array(0), 0n)).toBe(0xef46db3751d8e999n);
    expect(xxh64(bytes('abc'), 0n)).toBe(0x44bc2cf5ad770999n);
    expect(xxh64Reference(new Uint8Array(0), 0n)).toBe(0xef46db3751d8e999n);
    expect(xxh64Reference(bytes('abc'), 0n)).toBe(0x44bc2cf5ad770999n);
  });

  it('the seed changes the result', () => {
    for (const input of [new Uint8Array(0), bytes('abc'), pseudoRandom(100)]) {
      const a = xxh64(input, 0n);
      const b = xxh64(input, 1n);
      const c = xxh64(input, 0xfedcba9876543210n);
      expect(new Set([a, b, c]).size).toBe(3);
    }
  });

  it('matches the specification for every length 0..70 and full 64-bit seeds', () => {
    const data = pseudoRandom(70, 23);
    for (const seed of [0n, 1n, 0x9e3779b97f4a7c15n, (1n << 64n) - 1n]) {
      for (let n = 0; n <= 70; n++) {
        expect(xxh64(data.subarray(0, n), seed), `length ${n} seed ${seed}`).toBe(xxh64Reference(data.subarray(0, n), seed));
      }
    }
  });
});

describe('strong sums in signatures', () => {
  it('full lengths: xxh64 8, BLAKE2 32, MD4 16', () => {
    expect(strongSumMaxLength('xxh64')).toBe(8);
    expect(strongSumMaxLength('blake2')).toBe(32);
    expect(strongSumMaxLength('md4')).toBe(16);
  });

  it('writeStrongSum stores xxh64 big-endian and truncates each sum to a prefix', () => {
    const block = bytes('abc');
    const seed = 42n;
    const full = xxh64(block, seed).toString(16).padStart(16, '0');
    for (let length = 1; length <= 8; length++) {
      const out = new Uint8Array(length + 2).fill(0xee);
      writeStrongSum('xxh64', block, seed, out, 1, length);
      expect(hex(out.subarray(1, 1 + length))).toBe(full.slice(0, 2 * length));
      expect([out[0], out[length + 1]]).toEqual([0xee, 0xee]);
    }
    for (const [kind, digest] of [
      ['blake2', blake2b256(block)],
      ['md4', md4(block)],
    ] as const) {
      const out = new Uint8Array(5);
      writeStrongSum(kind, block, 0n, out, 0, 5);
      expect(hex(out)).toBe(hex(digest.subarray(0, 5)));
    }
  });

  it('librsync strong sums ignore the seed', () => {
    const a = new Uint8Array(16);
    const b = new Uint8Array(16);
    writeStrongSum('md4', bytes('abc'), 0n, a, 0, 16);
    writeStrongSum('md4', bytes('abc'), 99n, b, 0, 16);
    expect(hex(a)).toBe(hex(b));
  });
});
