import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DeltaDecoder,
  DeltacastError,
  PatchError,
  SignatureError,
  applyDelta,
  bufferBasis,
  decodeSignature,
  delta,
  encodeSignature,
  patchStream,
  signature,
} from '../src/index.js';
import { chunk, chunkings, deltaCases, type Chunking } from './arbitraries.js';
import { drain, fromHex, largestAllocation } from './helpers.js';

const SIGNATURE_MAGICS = ['72730136', '72730137', '72730146', '72730147', '44435347'];
const DELTA_MAGICS = ['72730236', '4443444c'];

/** Untrusted input may fail only with our own errors: never a TypeError, RangeError or the like. */
function expectOnlyOurErrors(run: () => unknown, kind: typeof DeltacastError): unknown {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof kind)) throw new Error(`unexpected ${String(error)}`, { cause: error });
    return error;
  }
}

async function expectOnlyOurErrorsAsync(run: () => Promise<unknown>, kind: typeof DeltacastError): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof kind)) throw new Error(`unexpected ${String(error)}`, { cause: error });
    return error;
  }
}

/** Random bytes, or random bytes behind a real magic (and a plausible native delta header). */
function junkAfter(magics: string[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 300 })).map(([magic, rest]) => {
      const head = fromHex(magic);
      const out = new Uint8Array(4 + rest.length);
      out.set(head);
      out.set(rest, 4);
      // Half the time keep the native delta header valid so the commands get parsed.
      if (magic === '4443444c' && rest.length >= 12 && rest[0] & 1) out.set([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4);
      return out;
    }),
  );
}

type Mutation = { kind: 'flip' | 'truncate' | 'insert' | 'field'; at: number; value: number; width: 1 | 4 | 8 };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip' as const, 'truncate' as const, 'insert' as const, 'field' as const),
  at: fc.nat(),
  value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffffffff, 2 ** 53 - 1, 2 ** 53, 2 ** 63),
  width: fc.constantFrom(1 as const, 4 as const, 8 as const),
});

/** Damages a valid encoding: flipped bytes, a cut, inserted bytes, or a field overwritten with an extreme value. */
function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = input.slice();
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.kind === 'flip' && out.length > 0) out[at] ^= m.value & 0xff || 1;
    else if (m.kind === 'truncate') out = out.slice(0, at);
    else if (m.kind === 'insert') {
      const grown = new Uint8Array(out.length + m.width);
      grown.set(out.subarray(0, at));
      grown.fill(m.value & 0xff, at, at + m.width);
      grown.set(out.subarray(at), at + m.width);
      out = grown;
    } else if (m.kind === 'field' && at + m.width <= out.length) {
      const view = new DataView(out.buffer);
      if (m.width === 1) out[at] = m.value & 0xff;
      else if (m.width === 4) view.setUint32(at, m.value >>> 0);
      else view.setBigUint64(at, BigInt(m.value));
    }
  }
  return out;
}

/** A valid signature and delta of a random case, then mutated. */
const damaged = fc.tuple(deltaCases, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(
  ([c, sigMutations, deltaMutations]) => {
    const sig = signature(c.basis, c.opts);
    return {
      basis: c.basis,
      target: c.target,
      signature: mutate(encodeSignature(sig), sigMutations),
      delta: mutate(delta(sig, c.target), deltaMutations),
    };
  },
);

/** Allocation allowed for an input: a small multiple of its size, plus a little fixed overhead. */
function allocationBound(inputLength: number): number {
  return 4 * inputLength + 4096;
}

/** Runs every delta consumer on `d` with a bounded output, checking errors and allocations. */
async function consumeDelta(basis: Uint8Array, d: Uint8Array, how: Chunking): Promise<void> {
  const inputLength = basis.length + d.length;
  // COPY may repeat the basis, so the output is capped as untrusted deltas require.
  const options = { maxOutputLength: 2 * inputLength };
  const bound = allocationBound(inputLength) + options.maxOutputLength;

  expect(await largestAllocation(() => expectOnlyOurErrors(() => applyDelta(basis, d, options), PatchError))).toBeLessThanOrEqual(bound);

  const chunks = chunk(d, how);
  const streamed = () => expectOnlyOurErrorsAsync(() => drain(patchStream(bufferBasis(basis), chunks, options)), PatchError);
  expect(await largestAllocation(streamed)).toBeLessThanOrEqual(bound);

  const decode = () =>
    expectOnlyOurErrors(() => {
      const decoder = new DeltaDecoder();
      for (const chunk of chunks) {
        decoder.push(chunk);
        while (decoder.next());
      }
      decoder.finish();
    }, PatchError);
  expect(await largestAllocation(decode)).toBeLessThanOrEqual(allocationBound(d.length));
}

describe('allocation tracking', () => {
  it('sees the typed arrays core allocates (so the bounds below mean something)', async () => {
    const sig = encodeSignature(signature(new Uint8Array(100_000), { blockLength: 10, seed: 1n }));
    // 10,000 blocks: the decoded weak sums alone take 40,000 bytes.
    expect(await largestAllocation(() => decodeSignature(sig))).toBeGreaterThanOrEqual(40_000);
  });
});

describe('untrusted signatures', () => {
  it('random bytes: decodeSignature raises only SignatureError and allocates at most a few times the input', async () => {
    await fc.assert(
      fc.asyncProperty(junkAfter(SIGNATURE_MAGICS), async (bytes) => {
        const used = await largestAllocation(() => expectOnlyOurErrors(() => decodeSignature(bytes), SignatureError));
        expect(used).toBeLessThanOrEqual(allocationBound(bytes.length));
      }),
      { numRuns: 400 },
    );
  });

  it('damaged signatures: decode fails with SignatureError or gives a signature that delta accepts', async () => {
    await fc.assert(
      fc.asyncProperty(damaged, async ({ signature: bytes, target }) => {
        let decoded: ReturnType<typeof decodeSignature> | undefined;
        const used = await largestAllocation(() =>
          expectOnlyOurErrors(() => {
            decoded = decodeSignature(bytes);
          }, SignatureError),
        );
        expect(used).toBeLessThanOrEqual(allocationBound(bytes.length));
        // Whatever decodes is a usable signature: a delta against it is made and is well formed.
        // (A header may declare blocks of up to 16 MiB, and the delta buffer is four blocks long:
        // those are skipped to keep the runs quick.)
        if (decoded && decoded.blockLength <= 1 << 16) {
          const d = delta(decoded, target);
          const decoder = new DeltaDecoder();
          decoder.push(d);
          while (decoder.next());
          decoder.finish();
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('untrusted deltas', () => {
  it('random bytes: applyDelta, patchStream and DeltaDecoder raise only PatchError, with bounded allocation', async () => {
    await fc.assert(
      fc.asyncProperty(junkAfter(DELTA_MAGICS), fc.uint8Array({ maxLength: 200 }), chunkings, async (d, basis, how) => {
        await consumeDelta(basis, d, how);
      }),
      { numRuns: 400 },
    );
  });

  it('damaged deltas: the same, with the right basis', async () => {
    await fc.assert(
      fc.asyncProperty(damaged, chunkings, async ({ basis, delta: d }, how) => {
        await consumeDelta(basis, d, how);
      }),
      { numRuns: 300 },
    );
  });

  it('huge declared lengths in tiny inputs fail without allocating for them', async () => {
    const cases: [string, Uint8Array][] = [
      // rdiff LITERAL_N8 of 2^52 - 1 bytes, then 7 bytes of it: 20 bytes in all.
      ['rdiff literal', fromHex('72730236' + '44' + '000fffffffffffff' + '00112233445566')],
      // rdiff LITERAL_N4 of 4 GiB - 1.
      ['rdiff literal n4', fromHex('72730236' + '43' + 'ffffffff' + 'aa')],
      // Native LITERAL with a 7-byte varint of about 2^49.
      ['native literal', fromHex('4443444c' + '01000000' + '0000000000000000' + '01' + 'ffffffffffff7f' + 'aa')],
    ];
    for (const [name, d] of cases) {
      const used = await largestAllocation(() => {
        const error = expectOnlyOurErrors(() => applyDelta(new Uint8Array(0), d), PatchError);
        expect(error, name).toBeInstanceOf(PatchError);
        expect((error as PatchError).code, name).toBe('TRUNCATED');
      });
      expect(used, name).toBeLessThanOrEqual(allocationBound(d.length));
    }
    // A native signature header claiming 2^52 bytes in 2^28 blocks of 16 MiB, with no blocks after it.
    const header = fromHex('44435347' + '01' + '01' + '01' + '08' + '01000000' + '0010000000000000' + '0000000000000000');
    const used = await largestAllocation(() => {
      const error = expectOnlyOurErrors(() => decodeSignature(header), SignatureError);
      expect((error as SignatureError).code).toBe('TRUNCATED');
    });
    expect(used).toBeLessThanOrEqual(allocationBound(header.length));
  });

  it('a tiny delta repeating a COPY is stopped by maxOutputLength before allocating the output', async () => {
    // 1000 COPY commands of the whole 60 KiB basis would make 60 MB from 3 KiB of delta.
    const basis = new Uint8Array(60 * 1024);
    const d = fromHex('72730236' + '4600f000'.repeat(1000) + '00');
    const used = await largestAllocation(() => {
      const error = expectOnlyOurErrors(() => applyDelta(basis, d, { maxOutputLength: 1 << 20 }), PatchError);
      expect((error as PatchError).code).toBe('OUTPUT_LIMIT');
    });
    expect(used).toBeLessThanOrEqual(1 << 20);
  });
});
