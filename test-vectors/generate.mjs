#!/usr/bin/env node
// Generates the golden vectors: deterministic inputs, then signatures, deltas and patches made by the
// real `rdiff` (librsync 2.3.x), and manifest.json recording every file's parameters, size and SHA-256.
// Usage: node test-vectors/generate.mjs [--force]   (--force accepts an rdiff other than 2.3.x)
// Plain Node, no dependencies: the tests read the committed files and never need rdiff themselves.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const force = process.argv.includes('--force');

// ---------------------------------------------------------------- rdiff

function rdiffVersion() {
  let out;
  try {
    out = execFileSync('rdiff', ['--version'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(`cannot run rdiff (${error.message}); install librsync's rdiff 2.3.x (e.g. apt-get install rdiff)`);
  }
  return out.split('\n')[0].trim();
}

function rdiff(...args) {
  execFileSync('rdiff', ['--force', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// ---------------------------------------------------------------- deterministic data

/** xorshift32 (Marsaglia 2003): tiny, fast, and the same on every platform. */
function xorshift32(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomBytes(length, seed) {
  const next = xorshift32(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const word = next();
    for (let k = 0; k < 4 && i + k < length; k++) out[i + k] = (word >>> (8 * k)) & 0xff;
  }
  return out;
}

const WORDS = (
  'block basis delta signature rolling checksum strong weak literal copy patch stream chunk window ' +
  'offset length match index table hash server client mirror release snapshot commit stage rename ' +
  'the a of to and in is for with on that by this be from at as or an are it not'
).split(' ');

/** Text-like data: lines of words, a third of them repeats of a recent line (as in logs and source). */
function textLike(length, seed) {
  const next = xorshift32(seed);
  const lines = [];
  let size = 0;
  while (size < length) {
    let line;
    if (lines.length > 8 && next() % 3 === 0) {
      line = lines[lines.length - 1 - (next() % Math.min(50, lines.length))];
    } else {
      const words = [];
      for (let n = 3 + (next() % 12); n > 0; n--) words.push(WORDS[next() % WORDS.length]);
      line = `${String(next() % 10000).padStart(4, '0')} ${words.join(' ')}\n`;
    }
    lines.push(line);
    size += line.length;
  }
  return new TextEncoder().encode(lines.join('')).subarray(0, length);
}

/**
 * A "new" version of `data`: `edits` scattered overwrites, inserts and deletes (lengths up to
 * `maxRun`), then the tail grown by `append` bytes or cut by `truncate` bytes. Insert material comes
 * from `filler(length)` so text stays text-like.
 */
function mutate(data, { seed, edits, maxRun, append = 0, truncate = 0, filler }) {
  const next = xorshift32(seed);
  let out = Array.from(data);
  for (let i = 0; i < edits; i++) {
    const at = out.length === 0 ? 0 : next() % out.length;
    const run = 1 + (next() % maxRun);
    switch (next() % 3) {
      case 0:
        out.splice(at, Math.min(run, out.length - at), ...filler(Math.min(run, out.length - at), next()));
        break;
      case 1:
        out.splice(at, 0, ...filler(run, next()));
        break;
      default:
        out.splice(at, run);
    }
  }
  if (truncate > 0) out = out.slice(0, Math.max(0, out.length - truncate));
  if (append > 0) out.push(...filler(append, next()));
  return Uint8Array.from(out);
}

const randomFiller = (length, seed) => randomBytes(length, seed);
const textFiller = (length, seed) => textLike(length, seed);

function inputs() {
  const r256 = randomBytes(257, 256);
  const random64k = randomBytes(64 * 1024, 64);
  const text = textLike(300 * 1024, 300);
  const random1m = randomBytes(1024 * 1024, 1024);
  const twoBlocks = randomBytes(2 * 2048, 2048);
  const zeros = new Uint8Array(100_000);
  const zerosNew = new Uint8Array(120_000);
  zerosNew.set(randomBytes(1000, 7), 50_000);
  const twoBlocksNew = new Uint8Array(twoBlocks.length);
  // The two blocks swapped, then one byte changed in what is now the first block.
  twoBlocksNew.set(twoBlocks.subarray(2048), 0);
  twoBlocksNew.set(twoBlocks.subarray(0, 2048), 2048);
  twoBlocksNew[100] ^= 0xff;
  return {
    empty: new Uint8Array(0),
    'one-byte': Uint8Array.of(0x61),
    'bytes-255': r256.subarray(0, 255),
    'bytes-256': r256.subarray(0, 256),
    'bytes-257': r256,
    'two-blocks-2048': twoBlocks,
    'two-blocks-2048.new': twoBlocksNew,
    'random-64k': random64k,
    'random-64k.new': mutate(random64k, { seed: 641, edits: 12, maxRun: 300, filler: randomFiller }),
    'text-300k': text,
    'text-300k.new': mutate(text, { seed: 3001, edits: 40, maxRun: 200, append: 3000, filler: textFiller }),
    'random-1m': random1m,
    'random-1m.new': mutate(random1m, { seed: 10241, edits: 16, maxRun: 500, truncate: 5000, filler: randomFiller }),
    zeros,
    'zeros.new': zerosNew,
  };
}

/** Each basis turned into one new file; deltas are named by the pair. */
const PAIRS = [
  { name: 'empty-to-one-byte', basis: 'empty', new: 'one-byte' },
  { name: 'one-byte-to-empty', basis: 'one-byte', new: 'empty' },
  { name: 'bytes-255-to-256', basis: 'bytes-255', new: 'bytes-256' },
  { name: 'bytes-256-to-257', basis: 'bytes-256', new: 'bytes-257' },
  { name: 'bytes-257-to-255', basis: 'bytes-257', new: 'bytes-255' },
  { name: 'two-blocks-2048', basis: 'two-blocks-2048', new: 'two-blocks-2048.new' },
  { name: 'random-64k', basis: 'random-64k', new: 'random-64k.new' },
  { name: 'text-300k', basis: 'text-300k', new: 'text-300k.new' },
  { name: 'random-1m', basis: 'random-1m', new: 'random-1m.new' },
  { name: 'zeros', basis: 'zeros', new: 'zeros.new' },
];

const KINDS = [
  { weak: 'rabinkarp', strong: 'blake2', tag: 'rk-blake2' },
  { weak: 'rabinkarp', strong: 'md4', tag: 'rk-md4' },
  { weak: 'rollsum', strong: 'blake2', tag: 'rs-blake2' },
  { weak: 'rollsum', strong: 'md4', tag: 'rs-md4' },
];

/**
 * Parameter sets per basis: rdiff's defaults (-b 0), explicit block lengths with full sums, and the
 * short strong sums (-S 8, -S -1) at the default and at 1024. Block length 64 only for small bases,
 * where its many blocks keep the signature small.
 */
function parameterSets(basisLength) {
  const sets = [];
  const blocks = [0, 1024, 2048];
  if (basisLength <= 64 * 1024) blocks.push(64);
  for (const block of blocks) sets.push({ block, strong: 0 });
  for (const block of [0, 1024]) for (const strong of [8, -1]) sets.push({ block, strong });
  return sets;
}

// ---------------------------------------------------------------- generation

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function main() {
  const version = rdiffVersion();
  if (!/\(librsync 2\.3\.\d+\)/.test(version) && !force) {
    throw new Error(`expected rdiff from librsync 2.3.x, found "${version}"; rerun with --force to accept it`);
  }
  for (const dir of ['inputs', 'sigs', 'deltas']) rmSync(join(root, dir), { recursive: true, force: true });
  for (const dir of ['inputs', 'sigs', 'deltas']) mkdirSync(join(root, dir));
  const scratch = join(root, '.patch-output.tmp');

  /** path (relative to test-vectors/) -> manifest entry */
  const files = new Map();
  const inputPath = {};
  const data = inputs();
  for (const [name, bytes] of Object.entries(data)) {
    const path = `inputs/${name}${name.startsWith('text-') ? '.txt' : '.bin'}`;
    writeFileSync(join(root, path), bytes);
    inputPath[name] = path;
    files.set(path, { path, kind: 'input', parameters: { name }, size: bytes.length, sha256: sha256(bytes) });
  }

  for (const pair of PAIRS) {
    const basis = data[pair.basis];
    for (const kind of KINDS) {
      for (const set of parameterSets(basis.length)) {
        const tmpSig = join(root, 'sigs', '.tmp.sig');
        rdiff('signature', '-R', kind.weak, '-H', kind.strong, '-b', String(set.block), '-S', String(set.strong),
          join(root, inputPath[pair.basis]), tmpSig);
        const sig = readFileSync(tmpSig);
        rmSync(tmpSig);
        // The effective parameters, as rdiff chose them, are in the signature header.
        const blockLength = sig.readUInt32BE(4);
        const strongLength = sig.readUInt32BE(8);
        const params = `${kind.tag}.b${blockLength}.s${strongLength}`;
        const sigPath = `sigs/${pair.basis}.${params}.sig`;
        const how = {
          blockLengthOption: set.block === 0 ? 'default' : set.block,
          strongLengthOption: set.strong === 0 ? 'full' : set.strong === -1 ? 'min' : set.strong,
        };
        const existing = files.get(sigPath);
        if (existing) {
          // Two option sets chose the same parameters (e.g. -b 0 is 1024 for 1 MiB): one file, both noted.
          if (!existing.parameters.options.some((o) => o.blockLengthOption === how.blockLengthOption && o.strongLengthOption === how.strongLengthOption)) {
            existing.parameters.options.push(how);
          }
          if (sha256(sig) !== existing.sha256) throw new Error(`rdiff made two different ${sigPath}`);
        } else {
          writeFileSync(join(root, sigPath), sig);
          files.set(sigPath, {
            path: sigPath,
            kind: 'signature',
            parameters: { weak: kind.weak, strong: kind.strong, blockLength, strongLength, basis: inputPath[pair.basis], options: [how] },
            size: sig.length,
            sha256: sha256(sig),
          });
        }

        const deltaPath = `deltas/${pair.name}.${params}.delta`;
        if (files.has(deltaPath)) continue;
        rdiff('delta', join(root, sigPath), join(root, inputPath[pair.new]), join(root, deltaPath));
        rdiff('patch', join(root, inputPath[pair.basis]), join(root, deltaPath), scratch);
        const patched = readFileSync(scratch);
        rmSync(scratch);
        if (!patched.equals(data[pair.new])) throw new Error(`rdiff patch with ${deltaPath} did not give ${pair.new}`);
        const deltaBytes = readFileSync(join(root, deltaPath));
        files.set(deltaPath, {
          path: deltaPath,
          kind: 'delta',
          parameters: {
            weak: kind.weak,
            strong: kind.strong,
            blockLength,
            strongLength,
            basis: inputPath[pair.basis],
            new: inputPath[pair.new],
            signature: sigPath,
          },
          size: deltaBytes.length,
          sha256: sha256(deltaBytes),
        });
      }
    }
  }

  const entries = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = {
    rdiffVersion: version,
    generator: 'test-vectors/generate.mjs',
    note: 'Every delta was applied with `rdiff patch` to its basis at generation time and gave exactly its new file.',
    files: entries,
  };
  writeFileSync(join(root, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const total = entries.reduce((sum, e) => sum + e.size, 0);
  const count = (kind) => entries.filter((e) => e.kind === kind).length;
  console.log(
    `${version}: ${count('input')} inputs, ${count('signature')} signatures, ${count('delta')} deltas, ` +
      `${(total / 1024 / 1024).toFixed(2)} MiB in ${root}`,
  );
}

try {
  main();
} catch (error) {
  console.error(`generate.mjs: ${error.message}`);
  process.exit(1);
}
