/**
 * RabinKarp block sums in WebAssembly SIMD (rabinkarp-wasm.ts) against the JavaScript definition,
 * and the embedded module against its source.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { rabinKarpSum } from '../src/rabinkarp.js';
import { RABINKARP_WASM, rabinKarpBlockSums } from '../src/rabinkarp-wasm.js';
import { signature } from '../src/index.js';
import { pseudoRandom } from './helpers.js';

function expectSums(data: Uint8Array, start: number, blockLength: number, count: number): void {
  const out = new Uint32Array(count + 2).fill(0xdeadbeef);
  expect(rabinKarpBlockSums(data, start, blockLength, count, out, 1)).toBe(true);
  const expected = Array.from({ length: count }, (_, k) => rabinKarpSum(data, start + k * blockLength, start + (k + 1) * blockLength));
  expect([...out.subarray(1, count + 1)]).toEqual(expected);
  expect([out[0], out[count + 1]]).toEqual([0xdeadbeef, 0xdeadbeef]);
}

describe('rabinKarpBlockSums', () => {
  it('gives rabinKarpSum of every block: block lengths around the 16-byte groups, any start', () => {
    const data = pseudoRandom(300_000, 5);
    for (const blockLength of [16, 17, 31, 32, 33, 700, 1000, 4096]) {
      for (const start of [0, 1, 3, 15]) expectSums(data, start, blockLength, Math.floor((data.length - start) / blockLength));
    }
  });

  it('across its 1 MiB pieces, and for a block longer than a piece', () => {
    const data = pseudoRandom(5 * (1 << 20) + 77, 6);
    expectSums(data, 7, 131_072, 40); // 5 MiB in 1 MiB pieces
    expectSums(data, 0, 3 * (1 << 20) + 5, 1); // one block of 3 MiB
    expectSums(data, 1, 700_001, 7);
  });

  it('on any bytes: all 0xff, all zero, random', () => {
    for (const fill of [0x00, 0xff]) expectSums(new Uint8Array(10_000).fill(fill), 0, 100, 100);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 5_000 }), fc.integer({ min: 16, max: 600 }), (data, blockLength) => {
        const count = Math.floor(data.length / blockLength);
        if (count > 0) expectSums(data, 0, blockLength, count);
      }),
      { numRuns: 300 },
    );
  });

  it('declines blocks under 16 bytes, writing nothing (the caller sums them)', () => {
    const out = new Uint32Array(4);
    expect(rabinKarpBlockSums(new Uint8Array(60), 0, 15, 4, out, 0)).toBe(false);
    expect([...out]).toEqual([0, 0, 0, 0]);
  });

  it('leaves signatures as they were: any chunking gives the same weak sums as block by block', () => {
    const basis = pseudoRandom(200_003, 8);
    const whole = signature(basis, { format: 'native', seed: 1n, blockLength: 1000 });
    for (let k = 0; k < whole.blockCount; k++) {
      expect(whole.weakSums[k]).toBe(rabinKarpSum(basis, k * 1000, Math.min(basis.length, (k + 1) * 1000)));
    }
  });

  it('embeds the module scripts/build-rabinkarp-wasm.mjs assembles from src/wasm/rabinkarp.wat', async () => {
    const script = new URL('../scripts/build-rabinkarp-wasm.mjs', import.meta.url).href;
    const { assembleRabinKarp } = (await import(script)) as { assembleRabinKarp: () => Promise<string> };
    expect(await assembleRabinKarp()).toBe(RABINKARP_WASM);
  });
});
