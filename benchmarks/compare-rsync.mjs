#!/usr/bin/env node
/**
 * `deltacast sync` against `rsync -a` over the same OpenSSH server on 127.0.0.1, in one run: a large
 * file with scattered edits (delta against a pre-seeded old version), and a tree of many small files
 * (initial copy, a run with nothing to do, 1% of the files edited). Each tool syncs into its own
 * destination directory; the runs alternate, --repeat times, and the medians of wall time and peak
 * RSS of the client process are reported with the bytes each tool says it sent. After every run the
 * destination is compared with the source (types, modes, sizes, mtimes, SHA-256 of every file), so a
 * fast wrong answer cannot win.
 *
 *   node compare-rsync.mjs [--big-size 1G] [--files 20000] [--tree-size 200M] [--repeat 3]
 *                          [--json FILE] [--dir DIR] [--keep] [--cases big,tree] [--wire]
 *                          [--agent bundle|cli|auto] [--cli PATH] [--rsync PATH] [--no-gnu-time] [--rtt MS]
 *
 * --rtt MS puts the byte-counting relay (implied) between both tools and sshd with MS/2 of delay
 * each way: every round trip takes MS longer, as on a distant network (bandwidth unchanged).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultEditCount, generateFiles } from './lib/data.mjs';
import { defaultCliPath, findExecutable, findGnuTime, formatSize, formatTable, measure, median, parseSize, repoRoot, runChecked } from './lib/run.mjs';
import { benchArgs } from './lib/args.mjs';
import { findSshd, HOST_ALIAS, startByteCounter, startSshd } from './lib/sshd.mjs';
import { BASE_MTIME, compareSnapshots, EDITED_MTIME, editTree, planTree, snapshotTree, writeTree } from './lib/tree-data.mjs';
import { reportHeader } from './lib/report.mjs';

const USAGE =
  'usage: node compare-rsync.mjs [--big-size 1G] [--files 20000] [--tree-size 200M] [--repeat 3] [--json FILE] [--dir DIR] [--keep]\n' +
  '                              [--cases big,tree] [--wire] [--agent bundle|cli|auto] [--cli PATH] [--rsync PATH] [--no-gnu-time] [--rtt MS]';
const { opts, fail, positive } = benchArgs('compare-rsync', USAGE, {
  'big-size': { type: 'string', default: '1G' },
  files: { type: 'string', default: '20000' },
  'tree-size': { type: 'string', default: '200M' },
  repeat: { type: 'string', default: '3' },
  json: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  cases: { type: 'string', default: 'big,tree' },
  wire: { type: 'boolean', default: false },
  agent: { type: 'string', default: 'bundle' },
  cli: { type: 'string' },
  rsync: { type: 'string', default: 'rsync' },
  'no-gnu-time': { type: 'boolean', default: false },
  rtt: { type: 'string', default: '0' },
});

const bigSize = parseSize(opts['big-size']);
const fileCount = positive('files');
const treeSize = parseSize(opts['tree-size']);
const repeat = positive('repeat');
const cases = new Set(opts.cases.split(',').map((c) => c.trim()));
for (const c of cases) if (c !== 'big' && c !== 'tree') fail(`--cases takes big and/or tree, not ${JSON.stringify(c)}`);
const rttMs = Number(opts.rtt);
if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > 10_000) fail(`--rtt takes milliseconds from 0 to 10000, not ${JSON.stringify(opts.rtt)}`);
const changeFraction = 0.01;
const edits = defaultEditCount(bigSize);
const loadAtStart = loadavg()[0];

const rsync = findExecutable(opts.rsync);
if (!rsync) fail(`rsync not found (${opts.rsync}); Debian: apt-get install rsync`);
const sshd = findSshd();
if (!sshd) fail('sshd not found; Debian: apt-get install openssh-server');
if (!findExecutable('ssh') || !findExecutable('ssh-keygen')) fail('ssh or ssh-keygen not found; Debian: apt-get install openssh-client');
const cli = opts.cli ? resolve(opts.cli) : defaultCliPath;
const cliProbe = existsSync(cli) ? spawnSync(process.execPath, [cli, 'sync', '--help'], { encoding: 'utf8' }) : undefined;
if (!cliProbe || cliProbe.status !== 0) fail(`the deltacast CLI with a sync command is not built at ${cli}; run pnpm -r run build`);
const bundle = join(repoRoot, 'packages', 'transport', 'dist', 'agent.bundle.mjs');
/** How the agent starts on the server: rsync runs its installed binary there, so by default so does deltacast. */
const remoteCommand = {
  bundle: `${process.execPath} ${bundle}`,
  cli: `${process.execPath} ${cli} agent`,
  auto: undefined,
}[opts.agent];
if (!['bundle', 'cli', 'auto'].includes(opts.agent)) fail(`--agent takes bundle, cli or auto, not ${JSON.stringify(opts.agent)}`);
if (opts.agent === 'bundle' && !existsSync(bundle)) fail(`the agent bundle ${bundle} is not built; run pnpm -r run build`);
const gnuTime = opts['no-gnu-time'] ? undefined : findGnuTime();
const rsyncVersion = runChecked([rsync, '--version']).stdout.split('\n')[0].replace(/\s+/g, ' ').trim();
const sshVersion = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();

const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'deltacast-rsync-'));
mkdirSync(dir, { recursive: true });
const at = (name) => join(dir, name);
// What this run writes: removed at exit, also after a failure, unless --keep (the whole directory when it made it).
const written = ['ssh', 'big-gen', 'big-src', 'big-rsync', 'big-deltacast', 'tree-a', 'tree-b', 'tree-rsync', 'tree-deltacast'];
process.on('exit', () => {
  if (opts.keep) return;
  if (opts.dir) for (const name of written) rmSync(at(name), { recursive: true, force: true });
  else rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

console.log(
  `compare-rsync: ${[cases.has('big') && `${formatSize(bigSize)} file with ${edits} edits`, cases.has('tree') && `tree of ${fileCount} files, ${formatSize(treeSize)}`].filter(Boolean).join('; ')}; ${repeat} repeat(s), median reported`,
);
console.log(`  rsync: ${rsync} (${rsyncVersion}); ${sshVersion}; sshd ${sshd}`);
console.log(`  deltacast: ${cli}; remote agent: ${remoteCommand ?? 'found or uploaded by deltacast (auto)'}`);
console.log(`  node ${process.version}; peak RSS of the client via ${gnuTime ? `GNU time (${gnuTime})` : 'child resourceUsage() / /proc VmHWM'}`);
console.log(`  files in ${dir}`);

const server = await startSshd(at('ssh'));
const counter = opts.wire || rttMs > 0 ? await startByteCounter(server.port, { delayMs: rttMs / 2 }) : undefined;
if (counter) server.useClientPort(counter.port);
console.log(
  `  sshd on 127.0.0.1:${server.port}${counter ? `, byte-counting relay on port ${counter.port}${rttMs > 0 ? ` adding ${rttMs / 2} ms each way (round trip +${rttMs} ms)` : ''}` : ''}`,
);

const tools = {
  rsync: {
    argv: (src, dst, extra = []) => [rsync, '-a', ...extra, '--stats', '--no-human-readable', '-e', `ssh -F ${server.configFile}`, `${src}/`, `${HOST_ALIAS}:${dst}/`],
    /** rsync --stats: "Total bytes sent" counts everything the client wrote to the connection (file list, deltas, checksums), before ssh. */
    parse(stdout) {
      const number = (label) => {
        const m = new RegExp(`^${label}: ([\\d,.]+)`, 'm').exec(stdout);
        if (!m) throw new Error(`rsync --stats output lacks "${label}":\n${stdout}`);
        return Number(m[1].replace(/[,.]/g, ''));
      };
      return {
        sentBytes: number('Total bytes sent'),
        receivedBytes: number('Total bytes received'),
        filesTransferred: number('Number of regular files transferred'),
        literalBytes: number('Literal data'),
        matchedBytes: number('Matched data'),
      };
    },
  },
  deltacast: {
    argv: (src, dst) => [
      process.execPath,
      cli,
      'sync',
      '--json',
      '--no-progress',
      '-F',
      server.configFile,
      ...(remoteCommand ? ['--remote-command', remoteCommand] : []),
      `${src}/`,
      `${HOST_ALIAS}:${dst}/`,
    ],
    /** deltacast's summary: sentBytes counts file data frames only (literal data and copy commands), not signatures, listings or framing. */
    parse(stdout) {
      const summary = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .find((event) => event.type === 'summary');
      if (!summary) throw new Error(`deltacast sync --json printed no summary:\n${stdout.slice(-2000)}`);
      const r = summary.result;
      if (!r.ok) throw new Error(`deltacast sync reported errors: ${JSON.stringify(r.errors.slice(0, 5))}`);
      return { sentBytes: r.sentBytes, receivedBytes: null, filesTransferred: r.created + r.updated, literalBytes: r.literalBytes, matchedBytes: r.matchedBytes };
    },
  },
};

/**
 * The cases: each syncs `src` into the tool's own destination after `prepare` put that destination
 * in its starting state (untimed), and must leave it equal to `expected` (a snapshot of `src`).
 * `check` looks at what the tool says it did, to catch a set-up where no delta (or no work) happened.
 * Targets: minimum time ratio (rsync / deltacast) and maximum bytes ratio (deltacast / rsync).
 */
const caseList = [];

if (cases.has('big')) {
  const t0 = performance.now();
  mkdirSync(at('big-gen'), { recursive: true });
  const files = generateFiles(at('big-gen'), bigSize, { edits, unrelated: false });
  mkdirSync(at('big-src'), { recursive: true });
  renameSync(files.new.path, at('big-src/big.bin'));
  utimesSync(at('big-src/big.bin'), EDITED_MTIME, EDITED_MTIME);
  utimesSync(at('big-src'), BASE_MTIME, BASE_MTIME);
  const expected = snapshotTree(at('big-src'));
  console.log(`  generated the ${formatSize(bigSize)} old and new file in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  caseList.push({
    name: `big file (${formatSize(bigSize)}, ${edits} edits)`,
    src: at('big-src'),
    dst: (tool) => at(`big-${tool}`),
    rsyncExtra: ['--no-whole-file'],
    // The old version under the same name with an older mtime: both tools see a changed file and send a delta against it.
    prepare(dst) {
      rmSync(dst, { recursive: true, force: true });
      mkdirSync(dst);
      copyFileSync(files.basis.path, join(dst, 'big.bin'));
      utimesSync(join(dst, 'big.bin'), BASE_MTIME, BASE_MTIME);
      utimesSync(dst, BASE_MTIME, BASE_MTIME);
    },
    expected,
    check(tool, said) {
      if (said.filesTransferred !== 1) throw new Error(`${tool} transferred ${said.filesTransferred} files, expected 1`);
      if (said.matchedBytes < bigSize / 2) throw new Error(`${tool} matched only ${said.matchedBytes} bytes of ${bigSize}: no delta against the old version`);
    },
    target: { time: 1.0, bytes: 1.1 },
  });
}

if (cases.has('tree')) {
  const t0 = performance.now();
  const plan = planTree(fileCount, treeSize);
  writeTree(at('tree-a'), plan);
  // tree-b: hard links to tree-a, then 1% of the files edited (written anew and renamed, so tree-a keeps its content).
  runChecked(['cp', '-al', at('tree-a'), at('tree-b')]);
  const changed = editTree(at('tree-b'), plan, changeFraction);
  utimesSync(at('tree-b'), BASE_MTIME, BASE_MTIME);
  const expectedA = snapshotTree(at('tree-a'));
  const expectedB = snapshotTree(at('tree-b'));
  console.log(
    `  generated the tree (${plan.files.length} files in ${plan.dirs.length + 1} directories, largest ${formatSize(Math.max(...plan.files.map((f) => f.size)))}) and its edited copy (${changed.length} files) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const dst = (tool) => at(`tree-${tool}`);
  const transferred = (want) => (tool, said) => {
    if (said.filesTransferred !== want) throw new Error(`${tool} transferred ${said.filesTransferred} files, expected ${want}`);
  };
  caseList.push(
    {
      name: `tree initial copy (${fileCount} files)`,
      src: at('tree-a'),
      dst,
      prepare: (d) => rmSync(d, { recursive: true, force: true }),
      expected: expectedA,
      check: transferred(plan.files.length),
      target: { time: 1.0, bytes: null },
    },
    {
      name: 'tree no change',
      src: at('tree-a'),
      dst,
      // The initial copy's last run left the destination equal to tree-a.
      prepare: () => {},
      expected: expectedA,
      check: transferred(0),
      target: { time: 1.0, bytes: null },
    },
    {
      name: `tree ${changed.length} files changed (${changeFraction * 100}%)`,
      src: at('tree-b'),
      dst,
      // Back to tree-a's state with a local rsync (untimed), so each run has the same work.
      prepare: (d) => runChecked([rsync, '-a', '--delete', `${at('tree-a')}/`, `${d}/`]),
      expected: expectedB,
      check: transferred(changed.length),
      target: { time: 1.0, bytes: null },
    },
  );
}

// The targets are for loopback; over an added round trip the figures are for information.
if (rttMs > 0) for (const c of caseList) c.target = null;

const results = [];
const verified = [];
for (const c of caseList) {
  const samples = { rsync: [], deltacast: [] };
  for (let r = 0; r < repeat; r++) {
    for (const tool of ['rsync', 'deltacast']) {
      const dst = c.dst(tool);
      c.prepare(dst);
      if (counter) await counter.take();
      const argv = tool === 'rsync' ? tools.rsync.argv(c.src, dst, c.rsyncExtra) : tools.deltacast.argv(c.src, dst);
      const run = await measure(argv, gnuTime, { captureStdout: true });
      const said = tools[tool].parse(run.stdout);
      const wire = counter ? await counter.take() : undefined;
      c.check(tool, said);
      const problems = compareSnapshots(c.expected, snapshotTree(dst));
      if (problems.length > 0) throw new Error(`${c.name}: after ${tool}, ${dst} differs from ${c.src}:\n  ${problems.join('\n  ')}`);
      samples[tool].push({ wallMs: run.wallMs, maxRssKiB: run.maxRssKiB, ...said, wireUp: wire?.up ?? null, wireDown: wire?.down ?? null, command: argv.join(' ') });
    }
  }
  verified.push(`${c.name}: both destinations equal the source after every run`);
  const med = (tool, key) => (samples[tool][0][key] === null ? null : median(samples[tool].map((s) => s[key])));
  const row = {
    case: c.name,
    rsyncMs: med('rsync', 'wallMs'),
    deltacastMs: med('deltacast', 'wallMs'),
    rsyncSent: med('rsync', 'sentBytes'),
    deltacastSent: med('deltacast', 'sentBytes'),
    rsyncWireUp: med('rsync', 'wireUp'),
    deltacastWireUp: med('deltacast', 'wireUp'),
    rsyncWireDown: med('rsync', 'wireDown'),
    deltacastWireDown: med('deltacast', 'wireDown'),
    rsyncRssMB: (med('rsync', 'maxRssKiB') * 1024) / 1e6,
    deltacastRssMB: (med('deltacast', 'maxRssKiB') * 1024) / 1e6,
    target: c.target,
    samples,
  };
  row.ratio = row.rsyncMs / row.deltacastMs;
  // Bytes are compared on the wire when measured there (same definition for both), else as each tool reports them.
  row.bytesBasis = counter ? 'wire' : 'reported';
  row.bytesRatio = counter ? row.deltacastWireUp / row.rsyncWireUp : row.rsyncSent > 0 ? row.deltacastSent / row.rsyncSent : null;
  row.met = c.target === null ? null : row.ratio >= c.target.time && (c.target.bytes === null || (row.bytesRatio !== null && row.bytesRatio <= c.target.bytes));
  results.push(row);
  console.log(`  ${c.name}: done`);
}

const seconds = (ms) => (ms / 1000).toFixed(2);
const targetText = (t) => (t === null ? 'info' : `>= ${t.time.toFixed(1)}x${t.bytes === null ? '' : `, bytes <= ${t.bytes.toFixed(1)}x`}`);
const header = ['case', 'rsync s', 'deltacast s', 'ratio', 'rsync sent', 'deltacast sent', ...(counter ? ['rsync wire up', 'deltacast wire up'] : []), 'rsync RSS MB', 'deltacast RSS MB', 'target', 'met'];
console.log('');
console.log(
  formatTable(
    header,
    results.map((t) => [
      t.case,
      seconds(t.rsyncMs),
      seconds(t.deltacastMs),
      `${t.ratio.toFixed(2)}x`,
      formatSize(t.rsyncSent),
      formatSize(t.deltacastSent),
      ...(counter ? [formatSize(t.rsyncWireUp), formatSize(t.deltacastWireUp)] : []),
      t.rsyncRssMB.toFixed(1),
      t.deltacastRssMB.toFixed(1),
      targetText(t.target),
      t.met === null ? '' : t.met ? 'yes' : 'NO',
    ]),
  ),
);
console.log('');
console.log('ratio = rsync time / deltacast time (> 1: deltacast faster); medians of the runs; MB = 10^6 bytes; RSS of the client process.');
console.log("sent: rsync's \"Total bytes sent\" (everything it wrote to ssh) vs deltacast's sentBytes (file data only, no signatures, listing or framing).");
if (counter) console.log('wire up: bytes from client to sshd on the TCP connection, counted by the relay (SSH encryption and framing included); the bytes target uses these.');
console.log(`verified: ${verified.join('; ')}`);

if (opts.json) {
  const report = {
    ...reportHeader('compare-rsync', loadAtStart),
    node: process.version,
    rsync: rsyncVersion,
    ssh: sshVersion,
    agent: opts.agent,
    remoteCommand: remoteCommand ?? null,
    rssMethod: gnuTime ? 'gnu-time' : 'child',
    bigSize: cases.has('big') ? bigSize : null,
    edits: cases.has('big') ? edits : null,
    files: cases.has('tree') ? fileCount : null,
    treeSize: cases.has('tree') ? treeSize : null,
    repeat,
    wire: Boolean(counter),
    rttMs,
    cases: results,
    verified,
  };
  writeFileSync(resolve(opts.json), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}
counter?.close();
server.stop();
