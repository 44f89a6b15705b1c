/** fast-check generators shared by the property tests. */
import fc from 'fast-check';
import type { SignatureOptions } from '../src/index.js';

export type CaseOptions = SignatureOptions & { blockLength: number; strongLength: number };

/** Signature options of either format, all sums and strong lengths, with the given block lengths. */
export function signatureOptionsWith(blockLength: fc.Arbitrary<number>): fc.Arbitrary<CaseOptions> {
  return fc.oneof(
    fc.record({
      format: fc.constant('native' as const),
      blockLength,
      weakSum: fc.constantFrom('rabinkarp' as const, 'rollsum' as const),
      strongLength: fc.integer({ min: 1, max: 8 }),
      seed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    }),
    fc
      .record({
        format: fc.constant('rdiff' as const),
        blockLength,
        weakSum: fc.constantFrom('rabinkarp' as const, 'rollsum' as const),
        strongSum: fc.constantFrom('blake2' as const, 'md4' as const),
        strongLength: fc.integer({ min: 1, max: 32 }),
      })
      .map((o) => ({ ...o, strongLength: Math.min(o.strongLength, o.strongSum === 'md4' ? 16 : 32) })),
  );
}

/** Small block lengths (many blocks in little data, fast), now and then a larger one. */
export const blockLengths = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 1, max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(700, 1024, 4096) },
);

export const signatureOptions = signatureOptionsWith(fc.integer({ min: 1, max: 300 }));

const MAX_LENGTH = 2500;

/** Bytes of a given length, random or from a tiny alphabet (repeated blocks, colliding weak sums). */
function bytesOfLength(n: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ minLength: n, maxLength: n }),
    fc.uint8Array({ minLength: n, maxLength: n, max: 1 }),
    fc.uint8Array({ minLength: n, maxLength: n, max: 3 }),
  );
}

/** A length that is often a block boundary: 0, k*L, k*L + 1, k*L - 1, or anything. */
function lengthNear(blockLength: number): fc.Arbitrary<number> {
  const maxBlocks = Math.max(2, Math.floor(MAX_LENGTH / blockLength));
  return fc.oneof(
    fc.nat({ max: MAX_LENGTH }),
    fc
      .tuple(fc.nat({ max: maxBlocks }), fc.constantFrom(0, 1, -1))
      .map(([k, r]) => Math.max(0, k * blockLength + r)),
  );
}

export function basisFor(blockLength: number): fc.Arbitrary<Uint8Array> {
  return lengthNear(blockLength).chain(bytesOfLength);
}

type Edit = { op: 'insert' | 'delete' | 'flip' | 'move'; at: number; length: number; data: Uint8Array };

const edit: fc.Arbitrary<Edit> = fc.record({
  op: fc.constantFrom('insert' as const, 'delete' as const, 'flip' as const, 'move' as const),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 600 }),
  data: fc.uint8Array({ minLength: 1, maxLength: 80 }),
});

/** Applies edits one after another; positions wrap around the current length. */
export function applyEdits(basis: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let out = basis;
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + 1);
    const end = Math.min(out.length, at + e.length);
    const parts: Uint8Array[] = [];
    if (e.op === 'insert') parts.push(out.subarray(0, at), e.data, out.subarray(at));
    else if (e.op === 'delete') parts.push(out.subarray(0, at), out.subarray(end));
    else if (e.op === 'move') parts.push(out.subarray(end), out.subarray(at, end), out.subarray(0, at));
    else {
      const copy = out.slice();
      if (at < copy.length) copy[at] ^= e.data[0] | 1;
      parts.push(copy);
    }
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let pos = 0;
    for (const p of parts) {
      joined.set(p, pos);
      pos += p.length;
    }
    out = joined;
  }
  return out;
}

/** New data for a basis: edited (so copies really happen), the same, a block-aligned prefix, unrelated, empty. */
export function targetFor(basis: Uint8Array, blockLength: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => applyEdits(basis, edits)) },
    { weight: 1, arbitrary: fc.constant(basis) },
    { weight: 1, arbitrary: lengthNear(blockLength).map((n) => basis.subarray(0, Math.min(n, basis.length))) },
    { weight: 1, arbitrary: lengthNear(blockLength).chain(bytesOfLength) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  );
}

export interface DeltaCase {
  opts: CaseOptions;
  basis: Uint8Array;
  target: Uint8Array;
}

export const deltaCases: fc.Arbitrary<DeltaCase> = signatureOptionsWith(blockLengths).chain((opts) =>
  basisFor(opts.blockLength).chain((basis) => targetFor(basis, opts.blockLength).map((target) => ({ opts, basis, target }))),
);

/** How to cut data into chunks: at random points, or every `size` bytes (1 byte splits every field). */
export type Chunking = { cuts: number[] } | { every: number };

export const chunkings: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ cuts: fc.array(fc.nat(), { maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ every: fc.constantFrom(1, 2, 3, 7, 100, 10_000) }) },
);

export function chunk(data: Uint8Array, how: Chunking): Uint8Array[] {
  if ('cuts' in how) {
    const points = [...new Set(how.cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let start = 0;
    for (const p of points) {
      chunks.push(data.subarray(start, p));
      start = p;
    }
    chunks.push(data.subarray(start));
    return chunks;
  }
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += how.every) chunks.push(data.subarray(at, at + how.every));
  return chunks;
}
