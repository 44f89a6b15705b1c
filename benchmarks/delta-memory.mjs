#!/usr/bin/env node
/**
 * Memory of a streaming delta on a large file: generates a basis and a new version with scattered
 * edits (default 1 GiB each, written in one pass), makes the signature with `deltacast signature`,
 * then measures `deltacast delta SIG NEW DELTA` in a child process: peak RSS (target <= 150 MB,
 * whatever the file size) and throughput. The delta is then patched and checked against the new
 * file (the patch's RSS and throughput are reported too), unless --no-verify.
 *
 *   node delta-memory.mjs [--size 1G] [--format native|rdiff] [--json FILE] [--dir DIR] [--keep]
 *                         [--edits N] [--cli PATH] [--no-verify] [--no-gnu-time]
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultEditCount, generateFiles, hashFile } from './lib/data.mjs';
import { findDeltacast, findGnuTime, formatSize, formatTable, measure, parseSize } from './lib/run.mjs';
import { reportHeader } from './lib/report.mjs';

const TARGET_RSS_MB = 150;

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    format: { type: 'string', default: 'native' },
    json: { type: 'string' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    edits: { type: 'string' },
    cli: { type: 'string' },
    'no-verify': { type: 'boolean', default: false },
    'no-gnu-time': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: node delta-memory.mjs [--size 1G] [--format native|rdiff] [--json FILE] [--dir DIR] [--keep] [--edits N] [--cli PATH] [--no-verify] [--no-gnu-time]');
  process.exit(0);
}
if (opts.format !== 'native' && opts.format !== 'rdiff') throw new Error(`--format must be native or rdiff, not ${opts.format}`);

const size = parseSize(opts.size);
const loadAtStart = loadavg()[0];
const edits = opts.edits !== undefined ? Number(opts.edits) : defaultEditCount(size);
const gnuTime = opts['no-gnu-time'] ? undefined : findGnuTime();
const deltacast = findDeltacast(opts.cli ? resolve(opts.cli) : undefined);
const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'deltacast-memory-'));
mkdirSync(dir, { recursive: true });
const at = (name) => join(dir, name);

console.log(`delta-memory: ${formatSize(size)} new file, ${edits} scattered edits, ${opts.format} format`);
console.log(`  deltacast: ${deltacast.kind === 'cli' ? deltacast.path : `${deltacast.path} (CLI not built: core-library fallback)`}`);
console.log(`  node ${process.version}; peak RSS via ${gnuTime ? `GNU time (${gnuTime})` : 'child resourceUsage()'}; files in ${dir}`);

// Remove what this run writes (the whole directory when it made it), also after a failure, unless --keep.
process.on('exit', () => {
  if (opts.keep) return;
  if (opts.dir) for (const name of ['basis.bin', 'new.bin', 'basis.sig', 'new.delta', 'new.out']) rmSync(at(name), { force: true });
  else rmSync(dir, { recursive: true, force: true });
});

const t0 = performance.now();
const files = generateFiles(dir, size, { edits, unrelated: false });
console.log(`  generated basis and new file in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const D = (...args) => [...deltacast.argv, ...args];
const formatArgs = opts.format === 'native' ? ['--format', 'native'] : [];
const steps = [];

async function step(name, argv, bytes, out) {
  rmSync(out, { force: true });
  const m = await measure(argv, gnuTime);
  const result = {
    step: name,
    command: argv.join(' '),
    bytes,
    wallMs: m.wallMs,
    mbPerSec: bytes / 1e6 / (m.wallMs / 1000),
    maxRssMB: (m.maxRssKiB * 1024) / 1e6,
    outputBytes: statSync(out).size,
  };
  steps.push(result);
  return result;
}

hashFile(files.basis.path);
await step('signature', D('signature', ...formatArgs, files.basis.path, at('basis.sig')), files.basis.length, at('basis.sig'));
// Warm the new file only now: on a small machine the basis may have pushed it out of the page cache.
hashFile(files.new.path);
const deltaStep = await step('delta', D('delta', at('basis.sig'), files.new.path, at('new.delta')), files.new.length, at('new.delta'));

let verified = false;
if (!opts['no-verify']) {
  await step('patch', D('patch', files.basis.path, at('new.delta'), at('new.out')), files.new.length, at('new.out'));
  const out = hashFile(at('new.out'));
  if (out.length !== files.new.length || out.sha256 !== files.new.sha256) {
    throw new Error(`patched output (${out.length} bytes, sha256 ${out.sha256}) differs from the new file (${files.new.length} bytes, sha256 ${files.new.sha256})`);
  }
  verified = true;
}

console.log('');
console.log(
  formatTable(
    ['step', 'input', 'MB/s', 'wall s', 'peak RSS MB', 'output'],
    steps.map((s) => [s.step, formatSize(s.bytes), s.mbPerSec.toFixed(1), (s.wallMs / 1000).toFixed(2), s.maxRssMB.toFixed(1), formatSize(s.outputBytes)]),
  ),
);
const met = deltaStep.maxRssMB <= TARGET_RSS_MB;
console.log('');
console.log(`delta peak RSS ${deltaStep.maxRssMB.toFixed(1)} MB, target <= ${TARGET_RSS_MB} MB: ${met ? 'met' : 'NOT met'}`);
console.log(verified ? 'verified: patched output equals the new file' : 'not verified (--no-verify)');

if (opts.json) {
  const report = {
    ...reportHeader('delta-memory', loadAtStart),
    node: process.version,
    deltacast: deltacast.kind,
    rssMethod: gnuTime ? 'gnu-time' : 'child',
    size,
    edits,
    format: opts.format,
    targetRssMB: TARGET_RSS_MB,
    met,
    verified,
    steps,
  };
  writeFileSync(resolve(opts.json), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}

