/** fast-check generators shared by the property tests. */
import fc from 'fast-check';
import type { SignatureOptions } from '../src/index.js';

/** Signature options of either format, with explicit block length (small, to get many blocks). */
export const signatureOptions: fc.Arbitrary<SignatureOptions> = fc.oneof(
  fc.record({
    format: fc.constant('native' as const),
    blockLength: fc.integer({ min: 1, max: 300 }),
    weakSum: fc.constantFrom('rabinkarp' as const, 'rollsum' as const),
    strongLength: fc.integer({ min: 1, max: 8 }),
    seed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }),
  fc
    .record({
      format: fc.constant('rdiff' as const),
      blockLength: fc.integer({ min: 1, max: 300 }),
      weakSum: fc.constantFrom('rabinkarp' as const, 'rollsum' as const),
      strongSum: fc.constantFrom('blake2' as const, 'md4' as const),
      strongLength: fc.integer({ min: 1, max: 32 }),
    })
    .map((o) => ({ ...o, strongLength: Math.min(o.strongLength, o.strongSum === 'md4' ? 16 : 32) })),
);
