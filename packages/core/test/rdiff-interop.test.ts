/**
 * Interop with the real rdiff (librsync 2.3), both ways: our signature is byte-identical to rdiff's,
 * rdiff patches our deltas, we patch rdiff's deltas, rdiff makes deltas from our signatures and we
 * make deltas from rdiff's. Skipped, saying so, where rdiff is not on the PATH; CI installs it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  bufferBasis,
  decodeSignature,
  delta,
  encodeSignature,
  patchStream,
  rdiffBlockLength,
  rdiffMinStrongLength,
  signature,
  strongSumMaxLength,
  type StrongSumKind,
  type WeakSumKind,
} from '../src/index.js';
import { expectSameBytes, irregularChunks } from './helpers/streaming.js';
import { concat, drain, hasRdiff, pseudoRandom, rdiff, useTempDir, withRdiff } from './helpers.js';

/** rdiff's -b: a block length, or 0 for its default. */
type BlockOption = number;
/** rdiff's -S: 0 full length, -1 the minimum, else a length. */
type StrongOption = number;

interface Case {
  name: string;
  basis: Uint8Array;
  target: Uint8Array;
  weak: WeakSumKind;
  strong: StrongSumKind;
  block: BlockOption;
  strongOption: StrongOption;
}

const KINDS: [WeakSumKind, StrongSumKind][] = [
  ['rabinkarp', 'blake2'],
  ['rabinkarp', 'md4'],
  ['rollsum', 'blake2'],
  ['rollsum', 'md4'],
];
const BLOCKS: BlockOption[] = [256, 1024, 2048, 4096, 0];
const STRONGS: StrongOption[] = [0, 8, -1];

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/**
 * A new version of `basis` by `edits` seeded operations: overwrite, insert, delete, duplicate a run
 * from elsewhere (a match at a new offset), and grow or cut the tail.
 */
function edited(basis: Uint8Array, seed: number, edits: number, maxRun: number): Uint8Array {
  const next = xorshift(seed);
  let data = basis;
  for (let i = 0; i < edits; i++) {
    const at = data.length === 0 ? 0 : next() % data.length;
    const run = 1 + (next() % maxRun);
    const fresh = pseudoRandom(run, next());
    switch (next() % 6) {
      case 0:
        data = concat(data.subarray(0, at), fresh, data.subarray(Math.min(data.length, at + run)));
        break;
      case 1:
        data = concat(data.subarray(0, at), fresh, data.subarray(at));
        break;
      case 2:
        data = concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + run)));
        break;
      case 3: {
        const from = data.length === 0 ? 0 : next() % data.length;
        data = concat(data.subarray(0, at), data.subarray(from, from + run), data.subarray(at));
        break;
      }
      case 4:
        data = concat(data, fresh);
        break;
      default:
        data = data.subarray(0, Math.max(0, data.length - run));
    }
  }
  return data;
}

function kindTag(weak: WeakSumKind, strong: StrongSumKind): string {
  return `${weak === 'rabinkarp' ? 'rk' : 'rs'}-${strong}`;
}

function caseName(label: string, c: Omit<Case, 'name'>): string {
  const block = c.block === 0 ? 'bdefault' : `b${c.block}`;
  const strong = c.strongOption === 0 ? 'sfull' : c.strongOption === -1 ? 'smin' : `s${c.strongOption}`;
  return `${label}: ${c.basis.length} -> ${c.target.length} bytes, ${kindTag(c.weak, c.strong)} ${block} ${strong}`;
}

function makeCase(label: string, c: Omit<Case, 'name'>): Case {
  return { name: caseName(label, c), ...c };
}

/** Every kind x block length x strong length, each on its own seeded pair of a few blocks' worth. */
function parameterCases(): Case[] {
  const cases: Case[] = [];
  let seed = 100;
  for (const [weak, strong] of KINDS) {
    for (const block of BLOCKS) {
      for (const strongOption of STRONGS) {
        seed++;
        const blockLength = block === 0 ? 256 : block;
        const basis = pseudoRandom(blockLength * 12 + (seed % 97), seed);
        const target = edited(basis, seed * 7, 6, blockLength);
        cases.push(makeCase('parameters', { basis, target, weak, strong, block, strongOption }));
      }
    }
  }
  return cases;
}

/**
 * The sizes around block edges and a large one, at a fixed and at the default block length; each
 * basis against itself unchanged, with one byte changed, and edited.
 */
function sizeCases(): Case[] {
  const cases: Case[] = [];
  const configs: [WeakSumKind, StrongSumKind, BlockOption, StrongOption, number][] = [
    ['rabinkarp', 'blake2', 1024, 0, 1024],
    // rdiff's default for a basis up to 64 KiB is 256; larger ones get a longer block.
    ['rollsum', 'md4', 0, -1, 256],
  ];
  let seed = 500;
  for (const [weak, strong, block, strongOption, blockLength] of configs) {
    for (const size of [0, 1, 100, blockLength - 1, blockLength, blockLength + 1, 64 * 1024, 3 * 1024 * 1024]) {
      seed++;
      const basis = pseudoRandom(size, seed);
      const oneByte = basis.slice();
      if (size > 0) oneByte[size >> 1] ^= 0x5a;
      const target = edited(basis, seed * 7, size > 1 << 20 ? 20 : 4, Math.max(1, Math.min(size, 2 * blockLength)));
      cases.push(makeCase(`size ${size} unchanged`, { basis, target: basis, weak, strong, block, strongOption }));
      cases.push(makeCase(`size ${size} one byte changed`, { basis, target: oneByte, weak, strong, block, strongOption }));
      cases.push(makeCase(`size ${size} edited`, { basis, target, weak, strong, block, strongOption }));
    }
  }
  // A basis against an empty new file and the other way round, and a file of zeros (all weak sums equal).
  const some = pseudoRandom(5000, 7);
  cases.push(makeCase('to empty', { basis: some, target: new Uint8Array(0), weak: 'rabinkarp', strong: 'md4', block: 0, strongOption: 8 }));
  cases.push(makeCase('from empty', { basis: new Uint8Array(0), target: some, weak: 'rollsum', strong: 'blake2', block: 2048, strongOption: 0 }));
  const zeros = new Uint8Array(200_000);
  const zerosTarget = concat(zeros.subarray(0, 90_000), pseudoRandom(3000, 9), zeros.subarray(80_000));
  cases.push(makeCase('zeros', { basis: zeros, target: zerosTarget, weak: 'rabinkarp', strong: 'blake2', block: 0, strongOption: -1 }));
  return cases;
}

/** Seeded random pairs: size, parameters and edits all drawn from one generator. */
function randomCases(count: number, seed: number): Case[] {
  const next = xorshift(seed);
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const [weak, strong] = KINDS[next() % KINDS.length];
    const block = BLOCKS[next() % BLOCKS.length];
    const strongOption = STRONGS[next() % STRONGS.length];
    // Log-uniform sizes from 0 to 256 KiB, so small files are as common as large ones.
    const size = next() % 8 === 0 ? 0 : Math.floor(2 ** ((next() % 1800) / 100));
    const basis = pseudoRandom(size, next());
    const target = edited(basis, next(), 1 + (next() % 12), 1 + (next() % 3000));
    cases.push(makeCase(`random #${i}`, { basis, target, weak, strong, block, strongOption }));
  }
  return cases;
}

/** The block and strong lengths rdiff chooses for these options, by our rules. */
function resolvedLengths(c: Case): { blockLength: number; strongLength: number } {
  const blockLength = c.block === 0 ? rdiffBlockLength(c.basis.length) : c.block;
  const max = strongSumMaxLength(c.strong);
  const strongLength =
    c.strongOption === 0 ? max : c.strongOption === -1 ? rdiffMinStrongLength(c.basis.length, blockLength, max) : c.strongOption;
  return { blockLength, strongLength };
}

describe.skipIf(!hasRdiff)(withRdiff('rdiff interop'), () => {
  const tmp = useTempDir();

  async function interop(c: Case): Promise<void> {
    const dir = mkdtempSync(join(tmp.dir, 'case-'));
    try {
      const file = (name: string) => join(dir, name);
      writeFileSync(file('basis'), c.basis);
      writeFileSync(file('new'), c.target);
      const { blockLength, strongLength } = resolvedLengths(c);

      // Signatures: rdiff's and ours, byte for byte.
      rdiff(['signature', '-R', c.weak, '-H', c.strong, '-b', String(c.block), '-S', String(c.strongOption), file('basis'), file('rdiff.sig')]);
      const rdiffSig = new Uint8Array(readFileSync(file('rdiff.sig')));
      const ourSig = encodeSignature(
        signature(c.basis, { format: 'rdiff', weakSum: c.weak, strongSum: c.strong, blockLength, strongLength }),
      );
      expectSameBytes(ourSig, rdiffSig, 'our signature vs rdiff signature');
      writeFileSync(file('our.sig'), ourSig);

      // Our delta, from rdiff's signature, applied by rdiff patch.
      const ourDelta = delta(decodeSignature(rdiffSig), c.target);
      writeFileSync(file('our.delta'), ourDelta);
      rdiff(['patch', file('basis'), file('our.delta'), file('rdiff-patched')]);
      expectSameBytes(new Uint8Array(readFileSync(file('rdiff-patched'))), c.target, 'rdiff patch of our delta');

      // rdiff's deltas, from its own signature and from ours, applied by us (one-shot and streamed).
      for (const sig of ['rdiff.sig', 'our.sig']) {
        const out = file(`rdiff-from-${sig}.delta`);
        rdiff(['delta', file(sig), file('new'), out]);
        const rdiffDelta = new Uint8Array(readFileSync(out));
        expectSameBytes(applyDelta(c.basis, rdiffDelta), c.target, `applyDelta of rdiff delta from ${sig}`);
        const { chunks, result } = await drain(patchStream(bufferBasis(c.basis), irregularChunks(rdiffDelta, c.basis.length + 1, 4096)));
        expectSameBytes(concat(...chunks), c.target, `patchStream of rdiff delta from ${sig}`);
        expect(result.outputLength).toBe(c.target.length);
        // Our matcher finds at least what rdiff's does: a delta no larger, but for a little slack
        // where both find valid but different matches.
        if (sig === 'rdiff.sig') expect(ourDelta.length).toBeLessThanOrEqual(rdiffDelta.length + 16 + Math.floor(rdiffDelta.length / 100));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  describe('all four signature kinds x block lengths x strong lengths', () => {
    it.each(parameterCases())('$name', interop);
  });

  describe('sizes around block edges, empty files, zeros and 3 MiB', () => {
    it.each(sizeCases())('$name', interop);
  });

  describe('seeded random pairs', () => {
    it.each(randomCases(24, 0x5eed))('$name', interop);
  });
});
