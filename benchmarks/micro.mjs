#!/usr/bin/env node
/**
 * tinybench micro benchmarks of the built @deltacast/core, in MB/s of input: rolling sums, signatures,
 * deltas (scattered edits, no match, pathological repeated blocks and zeros) and patches.
 *
 *   node micro.mjs [--size 16M] [--time 1000] [--filter TEXT] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import {
  RabinKarp,
  Rollsum,
  applyDelta,
  delta,
  indexSignature,
  rabinKarpSum,
  rollsumSum,
  signature,
} from '@deltacast/core';
import { applyEdits, defaultEditCount, makeEdits, randomBytes } from './lib/data.mjs';
import { formatSize, formatTable, parseSize } from './lib/run.mjs';

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string', default: '16M' },
    time: { type: 'string', default: '1000' },
    filter: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log('usage: node micro.mjs [--size 16M] [--time 1000 (ms per case)] [--filter TEXT] [--json FILE]');
  process.exit(0);
}
const size = parseSize(opts.size);
const loadAtStart = loadavg()[0];
const BLOCK = 2048;

// Inputs, all deterministic.
const basis = randomBytes('micro-basis', size);
const scattered = applyEdits(basis, makeEdits(size, defaultEditCount(size)));
const unrelated = randomBytes('micro-unrelated', size);
// Pathological: every block of the basis has the same weak and strong sum.
const pattern = randomBytes('micro-pattern', 1024);
const repeatedBasis = new Uint8Array(size);
for (let i = 0; i < size; i += pattern.length) repeatedBasis.set(pattern.subarray(0, Math.min(pattern.length, size - i)), i);
const fewEdits = makeEdits(size, 16, 7);
const repeatedNew = applyEdits(repeatedBasis, fewEdits);
const zeros = new Uint8Array(size);
const zerosNew = applyEdits(zeros, fewEdits);

const seed = 0x0123456789abcdefn;
const nativeOf = (data) => signature(data, { format: 'native', seed });
const nativeSig = nativeOf(basis);
const rdiffSig = signature(basis, { format: 'rdiff' });
const nativeIndex = indexSignature(nativeSig);
const rdiffIndex = indexSignature(rdiffSig);
const repeatedIndex = indexSignature(nativeOf(repeatedBasis));
const zerosIndex = indexSignature(nativeOf(zeros));
const nativeDelta = delta(nativeIndex, scattered);
const rdiffDelta = delta(rdiffIndex, scattered);

// A benchmark that computes a wrong answer fast must not look good: check every delta round-trips.
for (const [name, index, base, target] of [
  ['scattered native', nativeIndex, basis, scattered],
  ['scattered rdiff', rdiffIndex, basis, scattered],
  ['no match', nativeIndex, basis, unrelated],
  ['repeated', repeatedIndex, repeatedBasis, repeatedNew],
  ['zeros', zerosIndex, zeros, zerosNew],
]) {
  const out = applyDelta(base, delta(index, target));
  if (Buffer.compare(Buffer.from(out.buffer, out.byteOffset, out.length), Buffer.from(target.buffer, target.byteOffset, target.length)) !== 0) {
    throw new Error(`delta ${name} does not rebuild its target`);
  }
}

// Results are folded into a sink so that no call can be optimised away.
let sink = 0;

/** Slides a window of BLOCK bytes over the whole buffer one byte at a time, as the delta does. */
function rotateRabinKarp(data) {
  const sum = new RabinKarp().update(data, 0, BLOCK);
  for (let i = BLOCK; i < data.length; i++) sum.rotate(data[i - BLOCK], data[i]);
  return sum.digest();
}
function rotateRollsum(data) {
  const sum = new Rollsum().update(data, 0, BLOCK);
  for (let i = BLOCK; i < data.length; i++) sum.rotate(data[i - BLOCK], data[i]);
  return sum.digest();
}
function blockSums(sumFn, data) {
  let acc = 0;
  for (let i = 0; i < data.length; i += BLOCK) acc ^= sumFn(data, i, Math.min(data.length, i + BLOCK));
  return acc;
}

/** [name, bytes of input per call, function]. */
const cases = [
  ['rolling: RabinKarp block sums (2 KiB)', size, () => (sink ^= blockSums(rabinKarpSum, basis))],
  ['rolling: rollsum block sums (2 KiB)', size, () => (sink ^= blockSums(rollsumSum, basis))],
  ['rolling: RabinKarp rotate loop', size, () => (sink ^= rotateRabinKarp(basis))],
  ['rolling: rollsum rotate loop', size, () => (sink ^= rotateRollsum(basis))],
  ['signature: native (xxh64)', size, () => (sink ^= nativeOf(basis).blockCount)],
  ['signature: rdiff blake2', size, () => (sink ^= signature(basis, { format: 'rdiff' }).blockCount)],
  ['signature: rdiff md4', size, () => (sink ^= signature(basis, { format: 'rdiff', strongSum: 'md4' }).blockCount)],
  ['index: native signature', 0, () => (sink ^= indexSignature(nativeSig).heads.length)],
  ['delta: scattered edits (native)', scattered.length, () => (sink ^= delta(nativeIndex, scattered).length)],
  ['delta: scattered edits (rdiff)', scattered.length, () => (sink ^= delta(rdiffIndex, scattered).length)],
  ['delta: no match', size, () => (sink ^= delta(nativeIndex, unrelated).length)],
  ['delta: repeated 1 KiB pattern', repeatedNew.length, () => (sink ^= delta(repeatedIndex, repeatedNew).length)],
  ['delta: zeros', zerosNew.length, () => (sink ^= delta(zerosIndex, zerosNew).length)],
  ['patch: native (SHA-256 verified)', scattered.length, () => (sink ^= applyDelta(basis, nativeDelta).length)],
  ['patch: rdiff', scattered.length, () => (sink ^= applyDelta(basis, rdiffDelta).length)],
].filter(([name]) => !opts.filter || name.includes(opts.filter));

console.log(`micro: ${formatSize(size)} inputs, node ${process.version}, tinybench, ${opts.time} ms per case`);
// Each call handles megabytes, so a handful of samples per case is enough; time bounds the total.
const bench = new Bench({ time: Number(opts.time), iterations: 5, warmupIterations: 1, warmupTime: 0 });
for (const [name, , fn] of cases) bench.add(name, fn);
await bench.run();

const results = bench.tasks.map((task, i) => {
  const [name, bytes] = cases[i];
  const result = task.result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state} ${result.error ?? ''}`);
  const medianMs = result.latency.p50;
  return {
    name,
    bytes,
    medianMs,
    mbPerSec: bytes > 0 ? bytes / 1e6 / (medianMs / 1000) : null,
    rme: result.latency.rme,
    samples: result.latency.samplesCount ?? result.runs,
  };
});

console.log(
  formatTable(
    ['case', 'MB/s', 'ms/op', '±%', 'samples'],
    results.map((r) => [r.name, r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(1), r.medianMs.toFixed(2), r.rme.toFixed(1), r.samples]),
  ),
);
console.log(`MB = 10^6 bytes of input (the new file for deltas, the output for patches); median latency. (sink ${sink & 1})`);

if (opts.json) {
  writeFileSync(resolve(opts.json), `${JSON.stringify({ benchmark: 'micro', command: ['node', 'micro.mjs', ...process.argv.slice(2)].join(' '), date: new Date().toISOString(), loadAverage: loadAtStart, node: process.version, size, results }, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}
