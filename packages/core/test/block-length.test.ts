import { closeSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeBlockLength, rdiffBlockLength, rdiffMinStrongLength } from '../src/index.js';
import { isqrt } from '../src/block-length.js';
import { hasRdiff, rdiff, useTempDir, withRdiff } from './helpers.js';

describe('isqrt', () => {
  it('is floor(sqrt(n)) exactly, also where floating point sqrt rounds up', () => {
    for (const r of [0, 1, 2, 255, 256, 65535, 1 << 26, 94906265]) {
      expect(isqrt(r * r)).toBe(r);
      if (r > 0) expect(isqrt(r * r - 1)).toBe(r - 1);
      if (r * r + 2 * r <= Number.MAX_SAFE_INTEGER) expect(isqrt(r * r + 2 * r)).toBe(r);
    }
    expect(isqrt(Number.MAX_SAFE_INTEGER)).toBe(94906265);
  });
});

describe('rdiffBlockLength (librsync rs_sig_args)', () => {
  it('is 256 up to 64 KiB', () => {
    for (const size of [0, 1, 256, 4096, 65535, 65536]) expect(rdiffBlockLength(size), `size ${size}`).toBe(256);
  });

  it('is isqrt(size) rounded down to a multiple of 128 above 64 KiB', () => {
    expect(rdiffBlockLength(65537)).toBe(256); // isqrt 256
    expect(rdiffBlockLength(147455)).toBe(256); // isqrt 383
    expect(rdiffBlockLength(147456)).toBe(384); // 384^2
    expect(rdiffBlockLength(1_000_000)).toBe(896); // isqrt 1000
    expect(rdiffBlockLength(1 << 24)).toBe(4096);
    expect(rdiffBlockLength(2 ** 40)).toBe(2 ** 20);
  });

  it('is 2048 when the size is unknown', () => {
    expect(rdiffBlockLength(undefined)).toBe(2048);
    expect(rdiffBlockLength(-1)).toBe(2048);
  });
});

/** rsync generator.c sum_sizes_sqroot(), bit by bit as rsync writes it (protocol 30+). */
function rsyncBlockLength(len: number): number {
  const BLOCK_SIZE = 700;
  const MAX_BLOCK_SIZE = 1 << 17;
  if (len <= BLOCK_SIZE * BLOCK_SIZE) return BLOCK_SIZE;
  let c = 1;
  for (let l = BigInt(len); (l >>= 2n) > 0n; ) c *= 2;
  if (c >= MAX_BLOCK_SIZE) return MAX_BLOCK_SIZE;
  let blength = 0;
  do {
    blength |= c;
    if (BigInt(len) < BigInt(blength) * BigInt(blength)) blength &= ~c;
    c >>= 1;
  } while (c >= 8);
  return Math.max(blength, BLOCK_SIZE);
}

describe('nativeBlockLength (rsync sum_sizes_sqroot)', () => {
  it('is 700 for small files, sqrt rounded down to a multiple of 8, at most 128 KiB', () => {
    expect(nativeBlockLength(0)).toBe(700);
    expect(nativeBlockLength(490_000)).toBe(700);
    expect(nativeBlockLength(1_000_000)).toBe(1000);
    expect(nativeBlockLength(1001 * 1001)).toBe(1000);
    expect(nativeBlockLength(1008 * 1008)).toBe(1008);
    expect(nativeBlockLength(1008 * 1008 - 1)).toBe(1000);
    expect(nativeBlockLength(2 ** 34 - 1)).toBe(131064);
    expect(nativeBlockLength(2 ** 34)).toBe(131072);
    expect(nativeBlockLength(2 ** 40)).toBe(131072);
  });

  it('is 2048 when the size is unknown', () => {
    expect(nativeBlockLength(undefined)).toBe(2048);
    expect(nativeBlockLength(-5)).toBe(2048);
  });

  it('agrees with rsync`s own loop on edge and spread sizes', () => {
    const sizes = [490_001, 500_000, 2 ** 20, 2 ** 30 + 12345, 2 ** 33, 2 ** 34 - 1, 2 ** 34, 2 ** 36, 2 ** 50];
    for (let r = 700; r < 140_000; r = Math.ceil(r * 1.37)) sizes.push(r * r - 1, r * r, r * r + 1);
    for (const size of sizes) expect(nativeBlockLength(size), `size ${size}`).toBe(rsyncBlockLength(size));
  });
});

describe('rdiffMinStrongLength (rdiff -S -1)', () => {
  // 2 + ceil((floor(log2(size + 2^24)) + floor(log2(size / block + 1))) / 8), at most `max`.
  it.each([
    [0, 256, 32, 5], // 24 + 0 bits
    [3, 256, 32, 5],
    [65536, 256, 32, 6], // 24 + 8
    [1_000_000, 896, 32, 7], // 24 + 10
    [1 << 24, 4096, 32, 7], // 25 + 12
    [2 ** 40, 2 ** 20, 32, 10], // 40 + 20
    [2 ** 40, 2 ** 20, 8, 8], // capped by the strong sum's length
    [2 ** 40, 2 ** 20, 16, 10],
  ])('size %d, block %d, max %d -> %d', (size, block, max, expected) => {
    expect(rdiffMinStrongLength(size, block, max)).toBe(expected);
  });
});

describe.skipIf(!hasRdiff)(withRdiff('block and strong lengths against rdiff signature'), () => {
  const tmp = useTempDir();

  /** A sparse file of `size` zero bytes; rdiff only needs its length for the header. */
  function fileOfSize(size: number): string {
    const file = join(tmp.dir, `size-${size}.bin`);
    const fd = openSync(file, 'w');
    ftruncateSync(fd, size);
    closeSync(fd);
    return file;
  }

  it.each([0, 3, 65536, 65537, 147455, 147456, 1_000_000, 4 * 1024 * 1024 + 1])(
    'size %d: header block length and -S -1 strong length',
    (size) => {
      const file = fileOfSize(size);
      for (const [hash, max] of [
        ['blake2', 32],
        ['md4', 16],
      ] as const) {
        const sig = rdiff(['signature', '-H', hash, '-S', '-1', file]);
        const blockLength = sig.readUInt32BE(4);
        expect(blockLength).toBe(rdiffBlockLength(size));
        expect(sig.readUInt32BE(8)).toBe(rdiffMinStrongLength(size, blockLength, max));
      }
    },
  );

  it('size unknown (basis on a pipe): 2048', () => {
    const sig = rdiff(['signature'], new Uint8Array(5000));
    expect(sig.readUInt32BE(4)).toBe(rdiffBlockLength(undefined));
  });
});
