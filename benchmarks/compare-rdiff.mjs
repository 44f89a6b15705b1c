#!/usr/bin/env node
/**
 * Whole-process comparison of `deltacast` with `rdiff` (librsync) on the same generated files, in one
 * run: signature, delta (scattered edits and no match) and patch. Each command runs as its own
 * process, --repeat times, rdiff and deltacast interleaved; the median wall time and peak RSS are
 * reported, with the throughput ratio ours/rdiff against the project's target for that case.
 * Outputs are verified (patched files equal the new file, rdiff-format signatures byte-equal), so a
 * fast wrong answer cannot win.
 *
 *   node compare-rdiff.mjs [--size 256M] [--repeat 3] [--json FILE] [--dir DIR] [--keep]
 *                          [--edits N] [--cli PATH] [--rdiff PATH] [--no-gnu-time]
 */
import { readFileSync, rmSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeSignature } from '@deltacast/core';
import { defaultEditCount, generateFiles, hashFile } from './lib/data.mjs';
import {
  findDeltacast,
  findExecutable,
  findGnuTime,
  formatSize,
  formatTable,
  measure,
  median,
  parseSize,
  runChecked,
} from './lib/run.mjs';
import { reportHeader } from './lib/report.mjs';

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string', default: '256M' },
    repeat: { type: 'string', default: '3' },
    json: { type: 'string' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    edits: { type: 'string' },
    cli: { type: 'string' },
    rdiff: { type: 'string', default: 'rdiff' },
    'no-gnu-time': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: node compare-rdiff.mjs [--size 256M] [--repeat 3] [--json FILE] [--dir DIR] [--keep] [--edits N] [--cli PATH] [--rdiff PATH] [--no-gnu-time]');
  process.exit(0);
}

const size = parseSize(opts.size);
const loadAtStart = loadavg()[0];
const repeat = Number(opts.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, not ${opts.repeat}`);
const edits = opts.edits !== undefined ? Number(opts.edits) : defaultEditCount(size);
const rdiff = findExecutable(opts.rdiff);
if (!rdiff) {
  console.error(`rdiff not found (${opts.rdiff}); install librsync's rdiff (Debian: apt-get install rdiff)`);
  process.exit(2);
}
const gnuTime = opts['no-gnu-time'] ? undefined : findGnuTime();
const deltacast = findDeltacast(opts.cli ? resolve(opts.cli) : undefined);
const rdiffVersion = runChecked([rdiff, '--version']).stdout.split('\n')[0].trim();

const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'deltacast-compare-'));
mkdirSync(dir, { recursive: true });
const at = (name) => join(dir, name);

console.log(`compare-rdiff: ${formatSize(size)} basis, ${edits} scattered edits, ${repeat} repeat(s), median reported`);
console.log(`  rdiff: ${rdiff} (${rdiffVersion})`);
console.log(`  deltacast: ${deltacast.kind === 'cli' ? deltacast.path : `${deltacast.path} (CLI not built: core-library fallback)`}`);
console.log(`  node ${process.version}; peak RSS via ${gnuTime ? `GNU time (${gnuTime})` : 'child resourceUsage() / /proc VmHWM'}`);
console.log(`  files in ${dir}`);

// Remove what this run writes (the whole directory when it made it), also after a failure, unless --keep.
const written = ['basis.bin', 'new.bin', 'unrelated.bin', 'check.out', 'empty.bin', 'empty.sig'];
process.on('exit', () => {
  if (opts.keep) return;
  if (opts.dir) for (const name of written) rmSync(at(name), { force: true });
  else rmSync(dir, { recursive: true, force: true });
});

const t0 = performance.now();
const files = generateFiles(dir, size, { edits });
console.log(`  generated basis/new/unrelated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
// Warm the page cache so both tools read from memory, and check the files while at it.
for (const file of [files.basis, files.new, files.unrelated]) {
  if (hashFile(file.path).sha256 !== file.sha256) throw new Error(`${file.path} does not read back as written`);
}

const R = (...args) => [rdiff, ...args];
const D = (...args) => [...deltacast.argv, ...args];

/**
 * Commands, grouped in phases (a phase's outputs feed the next). `bytes` is the data the command
 * processes, for MB/s: the basis for signatures, the new file for deltas, the output for patches.
 */
const phases = [
  {
    name: 'signature',
    runs: {
      'rdiff.sig': { argv: R('signature', files.basis.path, at('rdiff.sig')), bytes: files.basis.length, out: at('rdiff.sig') },
      'native.sig': { argv: D('signature', '--format', 'native', files.basis.path, at('native.sig')), bytes: files.basis.length, out: at('native.sig') },
      'ours-rdiff.sig': { argv: D('signature', files.basis.path, at('ours-rdiff.sig')), bytes: files.basis.length, out: at('ours-rdiff.sig') },
    },
    verify() {
      const theirs = readFileSync(at('rdiff.sig'));
      const ours = readFileSync(at('ours-rdiff.sig'));
      if (!theirs.equals(ours)) throw new Error('deltacast signature (rdiff format) differs from rdiff signature');
      const native = decodeSignature(readFileSync(at('native.sig')));
      const expectedBlocks = Math.ceil(files.basis.length / native.blockLength);
      if (native.format !== 'native' || native.basisLength !== files.basis.length || native.blockCount !== expectedBlocks) {
        throw new Error(`native signature does not describe the basis: ${JSON.stringify({ ...native, weakSums: undefined, strongSums: undefined, seed: String(native.seed) })}`);
      }
      return ['rdiff-format signature byte-equal to rdiff', `native signature decodes: ${native.blockCount} blocks of ${native.blockLength}`];
    },
  },
  {
    name: 'delta',
    runs: {
      'rdiff.delta': { argv: R('delta', at('rdiff.sig'), files.new.path, at('rdiff.delta')), bytes: files.new.length, out: at('rdiff.delta') },
      'native.delta': { argv: D('delta', at('native.sig'), files.new.path, at('native.delta')), bytes: files.new.length, out: at('native.delta') },
      'ours-rdiff.delta': { argv: D('delta', at('ours-rdiff.sig'), files.new.path, at('ours-rdiff.delta')), bytes: files.new.length, out: at('ours-rdiff.delta') },
      'rdiff-nomatch.delta': { argv: R('delta', at('rdiff.sig'), files.unrelated.path, at('rdiff-nomatch.delta')), bytes: files.unrelated.length, out: at('rdiff-nomatch.delta') },
      'native-nomatch.delta': { argv: D('delta', at('native.sig'), files.unrelated.path, at('native-nomatch.delta')), bytes: files.unrelated.length, out: at('native-nomatch.delta') },
      'ours-rdiff-nomatch.delta': { argv: D('delta', at('ours-rdiff.sig'), files.unrelated.path, at('ours-rdiff-nomatch.delta')), bytes: files.unrelated.length, out: at('ours-rdiff-nomatch.delta') },
    },
    verify() {
      // Each delta must rebuild its target; ours in rdiff format must also be accepted by rdiff itself.
      const checks = [
        [D('patch', '-f', files.basis.path, at('native.delta'), at('check.out')), files.new, 'native delta (deltacast patch)'],
        [R('patch', '-f', files.basis.path, at('ours-rdiff.delta'), at('check.out')), files.new, 'rdiff-format delta (rdiff patch)'],
        [D('patch', '-f', files.basis.path, at('native-nomatch.delta'), at('check.out')), files.unrelated, 'native no-match delta'],
        [R('patch', '-f', files.basis.path, at('ours-rdiff-nomatch.delta'), at('check.out')), files.unrelated, 'rdiff-format no-match delta (rdiff patch)'],
        [R('patch', '-f', files.basis.path, at('rdiff-nomatch.delta'), at('check.out')), files.unrelated, "rdiff's no-match delta"],
      ];
      const done = [];
      for (const [argv, target, label] of checks) {
        runChecked(argv);
        expectSame(at('check.out'), target, label);
        done.push(`${label} rebuilds the target`);
      }
      rmSync(at('check.out'), { force: true });
      return done;
    },
  },
  {
    name: 'patch',
    runs: {
      'rdiff.out': { argv: R('patch', files.basis.path, at('rdiff.delta'), at('rdiff.out')), bytes: files.new.length, out: at('rdiff.out') },
      'native.out': { argv: D('patch', files.basis.path, at('native.delta'), at('native.out')), bytes: files.new.length, out: at('native.out') },
      'ours-rdiff.out': { argv: D('patch', files.basis.path, at('rdiff.delta'), at('ours-rdiff.out')), bytes: files.new.length, out: at('ours-rdiff.out') },
    },
    verify() {
      expectSame(at('rdiff.out'), files.new, 'rdiff patch output');
      expectSame(at('native.out'), files.new, 'deltacast patch output (native delta)');
      expectSame(at('ours-rdiff.out'), files.new, "deltacast patch output (rdiff's delta)");
      return ['all patch outputs equal the new file'];
    },
  },
];

written.push(...phases.flatMap((p) => Object.keys(p.runs)));

/** Rows of the report: [case, rdiff run, deltacast run, target ratio or null for information only]. */
const rows = [
  ['signature (native)', 'rdiff.sig', 'native.sig', 2.0],
  ['signature (rdiff format)', 'rdiff.sig', 'ours-rdiff.sig', 1.0],
  ['delta scattered (native)', 'rdiff.delta', 'native.delta', 1.5],
  ['delta scattered (rdiff format)', 'rdiff.delta', 'ours-rdiff.delta', null],
  ['delta no match (native)', 'rdiff-nomatch.delta', 'native-nomatch.delta', 2.0],
  ['delta no match (rdiff format)', 'rdiff-nomatch.delta', 'ours-rdiff-nomatch.delta', null],
  ['patch (native)', 'rdiff.out', 'native.out', 1.0],
  ["patch (rdiff's delta)", 'rdiff.out', 'ours-rdiff.out', null],
];

function expectSame(path, target, label) {
  const got = hashFile(path);
  if (got.length !== target.length || got.sha256 !== target.sha256) {
    throw new Error(`${label}: ${path} (${got.length} bytes, sha256 ${got.sha256}) differs from ${target.path} (${target.length} bytes, sha256 ${target.sha256})`);
  }
}

const measured = {};
const verified = [];
for (const phase of phases) {
  const names = Object.keys(phase.runs);
  for (const name of names) measured[name] = [];
  for (let r = 0; r < repeat; r++) {
    for (const name of names) {
      const run = phase.runs[name];
      rmSync(run.out, { force: true });
      measured[name].push(await measure(run.argv, gnuTime));
    }
  }
  verified.push(...phase.verify());
  process.stdout.write(`  ${phase.name}: done\n`);
}

// Fixed cost per process (start-up, module and hash set-up): the signature of an empty file. On
// small sizes it is a large part of deltacast's time; subtract it mentally when reading those.
writeFileSync(at('empty.bin'), new Uint8Array(0));
const startup = { rdiff: [], deltacast: [] };
for (let r = 0; r < repeat; r++) {
  rmSync(at('empty.sig'), { force: true });
  startup.rdiff.push((await measure(R('signature', at('empty.bin'), at('empty.sig')), gnuTime)).wallMs);
  rmSync(at('empty.sig'), { force: true });
  startup.deltacast.push((await measure(D('signature', '--format', 'native', at('empty.bin'), at('empty.sig')), gnuTime)).wallMs);
}
const startupMs = { rdiff: median(startup.rdiff), deltacast: median(startup.deltacast) };

const summary = {};
for (const [name, samples] of Object.entries(measured)) {
  const run = phases.find((p) => p.runs[name]).runs[name];
  const wallMs = median(samples.map((s) => s.wallMs));
  summary[name] = {
    command: run.argv.join(' '),
    bytes: run.bytes,
    wallMs,
    mbPerSec: run.bytes / 1e6 / (wallMs / 1000),
    maxRssMB: (median(samples.map((s) => s.maxRssKiB)) * 1024) / 1e6,
    samples,
  };
}

const table = rows.map(([label, theirs, ours, target]) => {
  const ratio = summary[ours].mbPerSec / summary[theirs].mbPerSec;
  return {
    case: label,
    rdiffMBps: summary[theirs].mbPerSec,
    deltacastMBps: summary[ours].mbPerSec,
    ratio,
    rdiffRssMB: summary[theirs].maxRssMB,
    deltacastRssMB: summary[ours].maxRssMB,
    target,
    met: target === null ? null : ratio >= target,
  };
});

console.log('');
console.log(
  formatTable(
    ['case', 'rdiff MB/s', 'deltacast MB/s', 'ratio', 'rdiff RSS MB', 'deltacast RSS MB', 'target', 'met'],
    table.map((t) => [
      t.case,
      t.rdiffMBps.toFixed(1),
      t.deltacastMBps.toFixed(1),
      `${t.ratio.toFixed(2)}x`,
      t.rdiffRssMB.toFixed(1),
      t.deltacastRssMB.toFixed(1),
      t.target === null ? 'info' : `>= ${t.target.toFixed(1)}x`,
      t.met === null ? '' : t.met ? 'yes' : 'NO',
    ]),
  ),
);
console.log('');
console.log('ratio = deltacast MB/s / rdiff MB/s (> 1 is faster); MB = 10^6 bytes; medians of the runs.');
console.log(`fixed cost per process (signature of an empty file): rdiff ${startupMs.rdiff.toFixed(1)} ms, deltacast ${startupMs.deltacast.toFixed(1)} ms`);
console.log(`verified: ${verified.join('; ')}`);

if (opts.json) {
  const report = {
    ...reportHeader('compare-rdiff', loadAtStart),
    node: process.version,
    rdiff: rdiffVersion,
    deltacast: deltacast.kind,
    rssMethod: gnuTime ? 'gnu-time' : 'child',
    size,
    edits,
    repeat,
    files: { basis: files.basis, new: files.new, unrelated: files.unrelated },
    cases: table,
    startupMs,
    runs: summary,
    verified,
  };
  writeFileSync(resolve(opts.json), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}


