import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSignature, decodeSignature, encodeSignature, signature, signatureOfStream } from '../src/index.js';
import { chunk, chunkings, signatureOptions } from './arbitraries.js';
import { hex } from './helpers.js';

describe('signature chunking', () => {
  it('any chunking of the basis gives byte-identical encoded signatures (both formats)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        signatureOptions,
        chunkings,
        async (basis, opts, how) => {
          const expected = hex(encodeSignature(signature(basis, opts)));
          const chunks = chunk(basis, how);
          const builder = createSignature(opts);
          for (const chunk of chunks) builder.update(chunk);
          expect(hex(encodeSignature(builder.digest()))).toBe(expected);
          expect(hex(encodeSignature(await signatureOfStream(chunks, opts)))).toBe(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('decodeSignature(encodeSignature(sig)) equals sig', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), signatureOptions, (basis, opts) => {
        const sig = signature(basis, opts);
        expect(decodeSignature(encodeSignature(sig))).toEqual(sig);
      }),
      { numRuns: 150 },
    );
  });
});
