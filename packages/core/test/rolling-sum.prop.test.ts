import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RabinKarp, Rollsum, rabinKarpSum, rollsumSum } from '../src/index.js';

type Sum = RabinKarp | Rollsum;
const KINDS: [string, () => Sum, (data: Uint8Array, start: number, end: number) => number][] = [
  ['RabinKarp', () => new RabinKarp(), rabinKarpSum],
  ['Rollsum', () => new Rollsum(), rollsumSum],
];

/** Data, a window length and a start position with room to slide. */
const windowCase = fc
  .uint8Array({ minLength: 1, maxLength: 600 })
  .chain((data) =>
    fc.record({
      data: fc.constant(data),
      length: fc.integer({ min: 1, max: data.length }),
      start: fc.nat({ max: data.length - 1 }),
    }),
  )
  .map(({ data, length, start }) => ({ data, length, start: Math.min(start, data.length - length) }));

describe.each(KINDS)('%s rolling update', (_name, make, sumOf) => {
  it('rotate over every later position equals recomputing the window', () => {
    fc.assert(
      fc.property(windowCase, ({ data, length, start }) => {
        const sum = make().update(data, start, start + length);
        for (let p = start + 1; p + length <= data.length; p++) {
          sum.rotate(data[p - 1], data[p + length - 1]);
          if (sum.digest() !== sumOf(data, p, p + length)) return false;
        }
        return true;
      }),
      { numRuns: 200 },
    );
  });

  it('random rollin/rollout/rotate steps keep the digest equal to the sum of the window', () => {
    const step = fc.constantFrom('rollin', 'rollout', 'rotate');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 400 }), fc.array(step, { maxLength: 300 }), (data, steps) => {
        // The window is data[lo, hi); each step moves one or both ends by one byte.
        let lo = 0;
        let hi = 0;
        const sum = make();
        for (const s of steps) {
          if (s === 'rollin' && hi < data.length) sum.rollin(data[hi++]);
          else if (s === 'rollout' && lo < hi) sum.rollout(data[lo++]);
          else if (s === 'rotate' && lo < hi && hi < data.length) sum.rotate(data[lo++], data[hi++]);
          else continue;
          expect(sum.count).toBe(hi - lo);
          expect(sum.digest()).toBe(sumOf(data, lo, hi));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('update split at any point equals one update', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (data, cut) => {
        const at = data.length === 0 ? 0 : cut % (data.length + 1);
        expect(make().update(data, 0, at).update(data, at, data.length).digest()).toBe(sumOf(data, 0, data.length));
      }),
      { numRuns: 200 },
    );
  });
});
