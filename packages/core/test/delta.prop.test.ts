import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PatchError,
  applyDelta,
  bufferBasis,
  createDelta,
  delta,
  deltaStream,
  patchStream,
  signature,
  type DeltaCommand,
  type Signature,
} from '../src/index.js';
import { applyEdits, chunk, chunkings, deltaCases, type CaseOptions, type DeltaCase } from './arbitraries.js';
import { concat, decodeCommands, drain, hex, pseudoRandom, thrown } from './helpers.js';

/** Strong sums this long make a false block match (weak and strong collision) vanishingly unlikely. */
const SAFE_STRONG_LENGTH = 4;

function sign({ opts, basis }: DeltaCase): Signature {
  return signature(basis, opts);
}

/**
 * Every COPY is made of whole basis blocks (a short one only last), each with the same weak sum and
 * strong prefix as the new data it stands for: what the algorithm promises even with short sums.
 */
function expectCopiesJustified(sig: Signature, target: Uint8Array, commands: readonly DeltaCommand[], opts: CaseOptions) {
  const L = sig.blockLength;
  let t = 0;
  for (const c of commands) {
    if (c.type === 'literal') {
      expect(hex(c.data)).toBe(hex(target.subarray(t, t + c.data.length)));
      t += c.data.length;
    } else if (c.type === 'copy') {
      expect(c.offset % L).toBe(0);
      for (let done = 0; done < c.length; ) {
        const block = (c.offset + done) / L;
        const piece = Math.min(L, c.length - done);
        expect(block).toBeLessThan(sig.blockCount);
        if (piece < L) {
          expect(block).toBe(sig.blockCount - 1);
          if (sig.basisLength !== undefined) expect(piece).toBe(sig.basisLength - block * L);
        }
        const window = signature(target.subarray(t + done, t + done + piece), { ...opts, blockLength: piece });
        expect(window.weakSums[0]).toBe(sig.weakSums[block]);
        const k = sig.strongLength;
        expect(hex(window.strongSums)).toBe(hex(sig.strongSums.subarray(block * k, (block + 1) * k)));
        done += piece;
      }
      t += c.length;
    } else if (c.targetLength !== undefined) {
      expect(c.targetLength).toBe(target.length);
    }
  }
  expect(t).toBe(target.length);
}

describe('delta then patch', () => {
  it('patch(basis, delta(sig(basis), new)) == new (both formats, both weak sums, any block and strong length)', () => {
    fc.assert(
      fc.property(deltaCases, (c) => {
        const sig = sign(c);
        const d = delta(sig, c.target);
        expectCopiesJustified(sig, c.target, decodeCommands(d), c.opts);
        if (c.opts.strongLength >= SAFE_STRONG_LENGTH) {
          expect(hex(applyDelta(c.basis, d))).toBe(hex(c.target));
          return;
        }
        // With 1-3 byte strong sums a false match is possible: the native END hash catches it; an
        // rdiff delta then still has the right length, or copies past a basis it guessed too long.
        const error = thrown(() => {
          const out = applyDelta(c.basis, d);
          if (c.opts.format === 'native') expect(hex(out)).toBe(hex(c.target));
          else expect(out.length).toBe(c.target.length);
        });
        if (error === undefined) return;
        expect(error).toBeInstanceOf(PatchError);
        expect((error as PatchError).code).toBe(c.opts.format === 'native' ? 'HASH_MISMATCH' : 'COPY_OUT_OF_BOUNDS');
      }),
      { numRuns: 300 },
    );
  });

  it('edited copies of a basis are mostly copied, not sent as literals', () => {
    fc.assert(
      fc.property(fc.integer({ min: 16, max: 128 }), fc.integer({ min: 0, max: 7 }), fc.nat(), (L, edits, seed) => {
        const basis = pseudoRandom(64 * L, seed + 1);
        // One flipped byte per edit spoils at most two blocks' worth of matches.
        const flips = Array.from({ length: edits }, (_, i) => ({
          op: 'flip' as const,
          at: (seed + i * 7919) % basis.length,
          length: 1,
          data: new Uint8Array([1]),
        }));
        const target = applyEdits(basis, flips);
        const builder = createDelta(signature(basis, { blockLength: L, seed: 1n }));
        builder.update(target);
        builder.final();
        expect(builder.stats.copiedBytes).toBeGreaterThanOrEqual(target.length - 2 * L * edits);
      }),
      { numRuns: 40 },
    );
  });
});

describe('delta chunking', () => {
  it('any chunking of the new data gives identical delta bytes', async () => {
    await fc.assert(
      fc.asyncProperty(deltaCases, chunkings, async (c, how) => {
        const sig = sign(c);
        const expected = hex(delta(sig, c.target));
        const chunks = chunk(c.target, how);
        const builder = createDelta(sig);
        const out = chunks.map((piece) => builder.update(piece));
        out.push(builder.final());
        expect(hex(concat(...out))).toBe(expected);
        const streamed = (await drain(deltaStream(sig, chunks))).chunks;
        expect(hex(concat(...streamed))).toBe(expected);
      }),
      { numRuns: 150 },
    );
  });

  it('any chunking of data larger than the delta buffer (1 MiB) gives identical delta bytes', () => {
    // The builder compacts its buffer every 1 MiB; chunk edges must not change what it emits there.
    const basis = pseudoRandom(2_600_000, 77);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: basis.length }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(64, 1000, 4096),
        fc.constantFrom('native' as const, 'rdiff' as const),
        fc.array(fc.nat(), { maxLength: 30 }),
        (flipAt, L, format, cuts) => {
          const target = applyEdits(
            basis,
            flipAt.map((at) => ({ op: at % 2 ? 'flip' : 'insert', at, length: 1, data: new Uint8Array([at & 255, 1, 2]) })),
          );
          const sig = signature(basis, { format, blockLength: L, seed: 2n, strongLength: 6 });
          const oneShot = delta(sig, target);
          const builder = createDelta(sig);
          const out = chunk(target, { cuts }).map((piece) => builder.update(piece));
          out.push(builder.final());
          const chunked = concat(...out);
          expect(chunked.length).toBe(oneShot.length);
          expect(Buffer.compare(Buffer.from(chunked), Buffer.from(oneShot))).toBe(0);
          expect(Buffer.compare(Buffer.from(applyDelta(basis, oneShot)), Buffer.from(target))).toBe(0);
        },
      ),
      { numRuns: 4 },
    );
  });
});

describe('truncated deltas', () => {
  it('every proper prefix of a delta fails with TRUNCATED and incomplete true', () => {
    fc.assert(
      fc.property(deltaCases, fc.array(fc.nat(), { maxLength: 40 }), (c, picks) => {
        const d = delta(sign(c), c.target);
        // All prefixes of short deltas; of long ones, the last 64 and a random sample of the rest.
        const lengths =
          d.length <= 400
            ? Array.from({ length: d.length }, (_, i) => i)
            : [...Array.from({ length: 64 }, (_, i) => d.length - 1 - i), ...picks.map((p) => p % d.length)];
        for (const n of lengths) {
          const error = thrown(() => applyDelta(c.basis, d.subarray(0, n), { verify: false }));
          expect(error, `prefix of ${n} of ${d.length} bytes`).toBeInstanceOf(PatchError);
          expect((error as PatchError).code).toBe('TRUNCATED');
          expect((error as PatchError).incomplete).toBe(true);
        }
      }),
      { numRuns: 120 },
    );
  });
});

describe('streamed patch', () => {
  it('patchStream with any chunking of the delta equals applyDelta', async () => {
    await fc.assert(
      fc.asyncProperty(deltaCases, chunkings, async (c, how) => {
        const d = delta(sign(c), c.target);
        let expected: Uint8Array;
        try {
          expected = applyDelta(c.basis, d);
        } catch (error) {
          // Only a false match with a short strong sum gets here; the stream must fail the same way.
          const streamError = await drain(patchStream(bufferBasis(c.basis), chunk(d, how))).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect((streamError as PatchError).code).toBe((error as PatchError).code);
          return;
        }
        const { chunks, result } = await drain(patchStream(bufferBasis(c.basis), chunk(d, how)));
        expect(hex(concat(...chunks))).toBe(hex(expected));
        expect(result.outputLength).toBe(expected.length);
        expect(result.format).toBe(c.opts.format);
        expect(result.verified).toBe(c.opts.format === 'native');
      }),
      { numRuns: 150 },
    );
  });
});
