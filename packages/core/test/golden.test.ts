/**
 * Golden tests against the files in test-vectors/, made by the real rdiff (librsync 2.3.2) and
 * listed in test-vectors/manifest.json. No rdiff is needed here: the expected bytes are committed.
 * Every check is re-run with many chunkings, because streaming code breaks at chunk edges.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  bufferBasis,
  createDelta,
  createSignature,
  decodeSignature,
  delta,
  encodeSignature,
  indexSignature,
  patchStream,
  rdiffMinStrongLength,
  signature,
  strongSumMaxLength,
  type SignatureOptions,
  type StrongSumKind,
  type WeakSumKind,
} from '../src/index.js';
import { chunkings, expectSameBytes } from './helpers/streaming.js';
import { concat, drain } from './helpers.js';

const VECTORS = fileURLToPath(new URL('../../../test-vectors/', import.meta.url));

interface SignatureParameters {
  weak: WeakSumKind;
  strong: StrongSumKind;
  blockLength: number;
  strongLength: number;
  basis: string;
  /** The rdiff options that produced this file (several when they chose the same parameters). */
  options: { blockLengthOption: 'default' | number; strongLengthOption: 'full' | 'min' | number }[];
}

interface DeltaParameters {
  weak: WeakSumKind;
  strong: StrongSumKind;
  blockLength: number;
  strongLength: number;
  basis: string;
  new: string;
  signature: string;
}

type Entry =
  | { path: string; kind: 'input'; parameters: { name: string }; size: number; sha256: string }
  | { path: string; kind: 'signature'; parameters: SignatureParameters; size: number; sha256: string }
  | { path: string; kind: 'delta'; parameters: DeltaParameters; size: number; sha256: string };

interface Manifest {
  rdiffVersion: string;
  files: Entry[];
}

const manifest = JSON.parse(readFileSync(join(VECTORS, 'manifest.json'), 'utf8')) as Manifest;
const byPath = new Map(manifest.files.map((entry) => [entry.path, entry]));
const signatures = manifest.files.filter((e): e is Extract<Entry, { kind: 'signature' }> => e.kind === 'signature');
const deltas = manifest.files.filter((e): e is Extract<Entry, { kind: 'delta' }> => e.kind === 'delta');

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const loaded = new Map<string, Uint8Array>();

/** A vector's bytes, refused unless they have the size and SHA-256 the manifest records. */
function vector(path: string): Uint8Array {
  const cached = loaded.get(path);
  if (cached) return cached;
  const entry = byPath.get(path);
  if (!entry) throw new Error(`test vector ${path} is not in test-vectors/manifest.json`);
  const data = new Uint8Array(readFileSync(join(VECTORS, path)));
  const actual = sha256Hex(data);
  if (data.length !== entry.size || actual !== entry.sha256) {
    throw new Error(
      `test vector ${path} is corrupted: ${data.length} bytes with sha256 ${actual}, ` +
        `the manifest says ${entry.size} bytes with sha256 ${entry.sha256} (restore it from git, or regenerate all with node test-vectors/generate.mjs)`,
    );
  }
  loaded.set(path, data);
  return data;
}

describe('test-vectors/manifest.json', () => {
  it('records the rdiff 2.3.x that made the vectors', () => {
    expect(manifest.rdiffVersion).toMatch(/^rdiff \(librsync 2\.3\.\d+\)$/);
  });

  it('matches every committed file by size and SHA-256', () => {
    const corrupted: string[] = [];
    for (const entry of manifest.files) {
      try {
        vector(entry.path);
      } catch (error) {
        corrupted.push((error as Error).message);
      }
    }
    expect(corrupted).toEqual([]);
  });

  it('lists every file under inputs/, sigs/ and deltas/', () => {
    const onDisk = ['inputs', 'sigs', 'deltas'].flatMap((dir) => readdirSync(join(VECTORS, dir)).map((name) => `${dir}/${name}`));
    expect(onDisk.filter((path) => !byPath.has(path))).toEqual([]);
  });

  it('names, for every signature and delta, files the manifest lists', () => {
    const missing: string[] = [];
    for (const e of signatures) if (byPath.get(e.parameters.basis)?.kind !== 'input') missing.push(`${e.path}: ${e.parameters.basis}`);
    for (const e of deltas) {
      for (const ref of [e.parameters.basis, e.parameters.new]) {
        if (byPath.get(ref)?.kind !== 'input') missing.push(`${e.path}: ${ref}`);
      }
      if (byPath.get(e.parameters.signature)?.kind !== 'signature') missing.push(`${e.path}: ${e.parameters.signature}`);
    }
    expect(missing).toEqual([]);
    // All four signature kinds are covered.
    expect(new Set(signatures.map((e) => `${e.parameters.weak}/${e.parameters.strong}`)).size).toBe(4);
  });
});

function signatureOptions(p: SignatureParameters | DeltaParameters): SignatureOptions {
  return { format: 'rdiff', weakSum: p.weak, strongSum: p.strong, blockLength: p.blockLength, strongLength: p.strongLength };
}

describe('signatures are byte-identical to rdiff signature', () => {
  it.each(signatures)('$path', (entry) => {
    const p = entry.parameters;
    const basis = vector(p.basis);
    const expected = vector(entry.path);
    const options = signatureOptions(p);

    expectSameBytes(encodeSignature(signature(basis, options)), expected, 'signature()');

    // rdiff's default block length (-b 0) and strong lengths (-S 0 full, -S -1 minimum) by our rules.
    for (const how of p.options) {
      const chosen: SignatureOptions = { format: 'rdiff', weakSum: p.weak, strongSum: p.strong };
      if (how.blockLengthOption !== 'default') chosen.blockLength = how.blockLengthOption;
      if (how.strongLengthOption === 'min') {
        expect(rdiffMinStrongLength(basis.length, p.blockLength, strongSumMaxLength(p.strong))).toBe(p.strongLength);
        chosen.strongLength = p.strongLength;
      } else if (how.strongLengthOption !== 'full') {
        chosen.strongLength = how.strongLengthOption;
      }
      expectSameBytes(encodeSignature(signature(basis, chosen)), expected, `signature() with ${JSON.stringify(how)}`);
    }

    const decoded = decodeSignature(expected);
    expect({
      format: decoded.format,
      weakSum: decoded.weakSum,
      strongSum: decoded.strongSum,
      blockLength: decoded.blockLength,
      strongLength: decoded.strongLength,
      blockCount: decoded.blockCount,
    }).toEqual({
      format: 'rdiff',
      weakSum: p.weak,
      strongSum: p.strong,
      blockLength: p.blockLength,
      strongLength: p.strongLength,
      blockCount: Math.ceil(basis.length / p.blockLength),
    });
    expectSameBytes(encodeSignature(decoded), expected, 'encodeSignature(decodeSignature())');

    for (const { label, pieces } of chunkings(basis)) {
      const builder = createSignature(options);
      for (const piece of pieces) builder.update(piece);
      expectSameBytes(encodeSignature(builder.digest()), expected, `createSignature() fed ${label}`);
    }
  });
});

describe('rdiff deltas patch to the new file', () => {
  it.each(deltas)('$path', async (entry) => {
    const p = entry.parameters;
    const basis = vector(p.basis);
    const target = vector(p.new);
    const rdiffDelta = vector(entry.path);

    expectSameBytes(applyDelta(basis, rdiffDelta), target, 'applyDelta()');

    for (const { label, pieces } of chunkings(rdiffDelta)) {
      const { chunks, result } = await drain(patchStream(bufferBasis(basis), pieces));
      expectSameBytes(concat(...chunks), target, `patchStream() fed the delta in ${label}`);
      expect(result.format).toBe('rdiff');
      expect(result.outputLength).toBe(target.length);
      expect(result.fileHash).toBe('sha256');
      expect(Buffer.from(result.digest).toString('hex')).toBe(byPath.get(p.new)?.sha256);
    }
  });
});

describe('our deltas from rdiff signatures patch to the new file', () => {
  it.each(deltas)('$parameters.signature -> $parameters.new', (entry) => {
    const p = entry.parameters;
    const basis = vector(p.basis);
    const target = vector(p.new);
    const index = indexSignature(decodeSignature(vector(p.signature)));

    const ours = delta(index, target);
    expectSameBytes(applyDelta(basis, ours), target, 'applyDelta(delta())');

    for (const { label, pieces } of chunkings(target)) {
      const builder = createDelta(index);
      const out = pieces.map((piece) => builder.update(piece));
      out.push(builder.final());
      expectSameBytes(concat(...out), ours, `createDelta() fed the new file in ${label}`);
    }
  });
});
