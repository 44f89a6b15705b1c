#!/usr/bin/env node
/**
 * The fan-out against its alternatives, over one private OpenSSH server on 127.0.0.1: a tree with 1%
 * of its files edited goes to D identical destinations (directories on the server, each seeded with
 * the old tree by a local `cp -a` before every case). Cases: deltacast to one destination (the
 * baseline), one `deltacast sync` to all D, a sequential loop of `rsync -a --no-whole-file` to the D,
 * and D rsyncs at once. For each: wall time and the origin's CPU time (user + system of the client
 * processes, from GNU time), medians of --repeat runs, as ratios to the one-destination baseline.
 * After every run each destination is compared with the new tree (types, modes, sizes, mtimes,
 * SHA-256 of every file), and deltacast's report must show one delta per changed file for all D.
 *
 *   node compare-fanout.mjs [--files 20000] [--tree-size 200M] [--destinations 8] [--repeat 3]
 *                           [--parallel N] [--json FILE] [--dir DIR] [--keep] [--cli PATH] [--rsync PATH]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultCliPath, findExecutable, findGnuTime, formatSize, formatTable, median, parseSize, repoRoot, runChecked } from './lib/run.mjs';
import { benchArgs } from './lib/args.mjs';
import { findSshd, HOST_ALIAS, startSshd } from './lib/sshd.mjs';
import { BASE_MTIME, compareSnapshots, editTree, planTree, snapshotTree, writeTree } from './lib/tree-data.mjs';
import { reportHeader } from './lib/report.mjs';

const USAGE =
  'usage: node compare-fanout.mjs [--files 20000] [--tree-size 200M] [--destinations 8] [--repeat 3] [--parallel N]\n' +
  '                               [--json FILE] [--dir DIR] [--keep] [--cli PATH] [--rsync PATH]';
const { opts, fail, positive } = benchArgs('compare-fanout', USAGE, {
  files: { type: 'string', default: '20000' },
  'tree-size': { type: 'string', default: '200M' },
  destinations: { type: 'string', default: '8' },
  repeat: { type: 'string', default: '3' },
  parallel: { type: 'string' },
  json: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  cli: { type: 'string' },
  rsync: { type: 'string', default: 'rsync' },
});

const fileCount = positive('files');
const treeSize = parseSize(opts['tree-size']);
const destinationCount = positive('destinations');
const repeat = positive('repeat');
const parallel = opts.parallel === undefined ? undefined : positive('parallel');
const changeFraction = 0.01;
/** The project's goals for the fan-out, as multiples of the one-destination run. */
const TARGET = { cpu: 1.5, wall: 2.0 };
const loadAtStart = loadavg()[0];

const rsync = findExecutable(opts.rsync);
if (!rsync) fail(`rsync not found (${opts.rsync}); Debian: apt-get install rsync`);
const sshd = findSshd();
if (!sshd) fail('sshd not found; Debian: apt-get install openssh-server');
if (!findExecutable('ssh') || !findExecutable('ssh-keygen')) fail('ssh or ssh-keygen not found; Debian: apt-get install openssh-client');
// CPU time of the client processes (and of the ssh processes rsync starts) comes from wait4 via GNU time.
const gnuTime = findGnuTime();
if (!gnuTime) fail('GNU time not found (it measures the CPU time of the client processes); Debian: apt-get install time');
const cli = opts.cli ? resolve(opts.cli) : defaultCliPath;
const cliProbe = existsSync(cli) ? spawnSync(process.execPath, [cli, 'sync', '--help'], { encoding: 'utf8' }) : undefined;
if (!cliProbe || cliProbe.status !== 0 || !cliProbe.stdout.includes('--parallel')) {
  fail(`the deltacast CLI with a multi-destination sync command is not built at ${cli}; run pnpm -r run build`);
}
const bundle = join(repoRoot, 'packages', 'transport', 'dist', 'agent.bundle.mjs');
if (!existsSync(bundle)) fail(`the agent bundle ${bundle} is not built; run pnpm -r run build`);
// rsync runs its installed binary on the server; deltacast runs the agent bundle of this checkout, so nothing is uploaded.
const remoteCommand = `${process.execPath} ${bundle}`;
const rsyncVersion = runChecked([rsync, '--version']).stdout.split('\n')[0].replace(/\s+/g, ' ').trim();
const sshVersion = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();

const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'deltacast-fanout-'));
mkdirSync(dir, { recursive: true });
const at = (name) => join(dir, name);
// What this run writes: removed at exit, also after a failure, unless --keep (the whole directory when it made it).
const written = ['ssh', 'tree-old', 'tree-new', 'dst', 'out'];
process.on('exit', () => {
  if (opts.keep) return;
  if (opts.dir) for (const name of written) rmSync(at(name), { recursive: true, force: true });
  else rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const D = destinationCount;
console.log(`compare-fanout: tree of ${fileCount} files, ${formatSize(treeSize)}, ${changeFraction * 100}% changed, to ${D} destinations; ${repeat} repeat(s), median reported`);
console.log(`  rsync: ${rsync} (${rsyncVersion}); ${sshVersion}; sshd ${sshd}`);
console.log(`  deltacast: ${cli}; remote agent: ${remoteCommand}${parallel ? `; --parallel ${parallel}` : ''}`);
console.log(`  node ${process.version}; wall and CPU (user + sys) of the client processes via GNU time (${gnuTime})`);
console.log(`  files in ${dir}`);

const server = await startSshd(at('ssh'));
console.log(`  sshd on 127.0.0.1:${server.port}`);
const sshdPid = Number(readFileSync(join(server.configFile, '..', 'sshd.pid'), 'utf8'));
const clockTicks = Number(runChecked(['getconf', 'CLK_TCK']).stdout);

/**
 * Where this machine lets us (root, cgroup v1's cpuacct mounted writable), sshd runs in a cgroup of
 * its own, so that everything it starts is counted, also a process that outlives its connection:
 * an agent closes its output before it exits (its exit can wait for the kernel to free a replaced
 * file's blocks), the client then ends the connection, and the per-connection sshd no longer reaps
 * the agent. Elsewhere the server side's time is what sshd reaps (serverCpuMs says which).
 */
const CPUACCT = '/sys/fs/cgroup/cpuacct';
const cgroup = (() => {
  const path = join(CPUACCT, `deltacast-bench-${process.pid}`);
  try {
    mkdirSync(path);
  } catch {
    return undefined;
  }
  try {
    writeFileSync(join(path, 'tasks'), String(sshdPid));
  } catch {
    rmdirSync(path);
    return undefined;
  }
  // Removed once sshd is gone (its stop() runs at exit, before this listener: registered earlier).
  process.on('exit', () => {
    try {
      for (const pid of readFileSync(join(path, 'tasks'), 'utf8').split('\n').filter(Boolean)) writeFileSync(join(CPUACCT, 'tasks'), pid);
      rmdirSync(path);
    } catch {
      // a process still exiting: the empty group is left behind, harmless
    }
  });
  return path;
})();
const serverCpuSource = cgroup ? 'the cgroup of sshd and all it starts (cpuacct.usage)' : "what sshd reaps (its cutime + cstime)";

/**
 * CPU time of the server side so far (ms), once every connection has ended and, with the cgroup,
 * everything the connections started has exited. Without it: sshd's per-connection processes wait
 * for what they run (the agents, rsync --server) and sshd reaps them, so their time adds up in its
 * cutime + cstime (/proc/PID/stat, in clock ticks); a process that outlives its connection is missed.
 */
async function serverCpuMs() {
  const children = `/proc/${sshdPid}/task/${sshdPid}/children`;
  const busy = () => (cgroup ? readFileSync(join(cgroup, 'tasks'), 'utf8').trim() !== String(sshdPid) : readFileSync(children, 'utf8').trim() !== '');
  for (let waited = 0; busy(); waited += 10) {
    if (waited > 10_000) throw new Error(`sshd (pid ${sshdPid}) still has connections or their processes 10 s after the client exited`);
    await new Promise((r) => setTimeout(r, 10));
  }
  if (cgroup) return Number(readFileSync(join(cgroup, 'cpuacct.usage'), 'utf8')) / 1e6;
  const stat = readFileSync(`/proc/${sshdPid}/stat`, 'utf8');
  // Fields after the command name: state is field 3, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
}

const t0 = performance.now();
const plan = planTree(fileCount, treeSize);
writeTree(at('tree-old'), plan);
// tree-new: hard links to tree-old, then 1% of the files edited (written anew and renamed, so tree-old keeps its content).
runChecked(['cp', '-al', at('tree-old'), at('tree-new')]);
const changed = editTree(at('tree-new'), plan, changeFraction);
utimesSync(at('tree-new'), BASE_MTIME, BASE_MTIME);
const expected = snapshotTree(at('tree-new'));
console.log(
  `  generated the tree (${plan.files.length} files in ${plan.dirs.length + 1} directories, largest ${formatSize(Math.max(...plan.files.map((f) => f.size)))}) and its edited copy (${changed.length} files) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
mkdirSync(at('dst'));
mkdirSync(at('out'));
const destinations = Array.from({ length: D }, (_, i) => at(`dst/${i + 1}`));

/**
 * Puts destinations back to the old tree with a local `cp -a` (the server is this machine), then
 * flushes the copies to disk so their writeback does not land in the timed run.
 */
function seed(dsts) {
  for (const d of dsts) {
    rmSync(d, { recursive: true, force: true });
    runChecked(['cp', '-a', at('tree-old'), d]);
  }
  runChecked(['sync']);
}

/**
 * Runs `argv` under GNU time. Returns { wallMs (Node's monotonic clock around the spawn), userMs,
 * sysMs, cpuMs, maxRssKiB, stdout, serverCpuMs (the server side's CPU time during the run) }.
 * GNU time reports the rusage that wait4 returns, which covers the process and every descendant it
 * waited for (rsync's ssh, the rsyncs of a shell loop).
 */
async function timed(argv) {
  const serverBefore = await serverCpuMs();
  const m = await timedClient(argv);
  return { ...m, serverCpuMs: (await serverCpuMs()) - serverBefore };
}

function timedClient(argv) {
  return new Promise((resolvePromise, reject) => {
    const timeFile = at(`out/time-${process.pid}.txt`);
    rmSync(timeFile, { force: true });
    const start = process.hrtime.bigint();
    const child = spawn(gnuTime, ['-f', '%e %M %U %S', '-o', timeFile, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text) => {
      if (stdout.length < 64 * 1024 * 1024) stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text) => {
      if (stderr.length < 64 * 1024) stderr += text;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) {
        reject(new Error(`${argv.join(' ')} failed (${code ?? signal}):\n${stderr.trim()}\n${stdout.slice(-4000)}`));
        return;
      }
      // With -o, GNU time writes "Command exited ..." lines first when relevant; the format line is last.
      const [, rss, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      rmSync(timeFile, { force: true });
      resolvePromise({ wallMs, userMs: user * 1000, sysMs: sys * 1000, cpuMs: (user + sys) * 1000, maxRssKiB: rss, stdout });
    });
  });
}

/** A measurement without the tool's output, as kept in the samples. */
const measured = ({ stdout, ...m }) => m;

const ndjson = (stdout) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

const deltacastArgv = (dsts) => [
  process.execPath,
  cli,
  'sync',
  '--json',
  '--no-progress',
  '-F',
  server.configFile,
  '--remote-command',
  remoteCommand,
  ...(parallel ? ['--parallel', String(parallel)] : []),
  `${at('tree-new')}/`,
  ...dsts.map((d) => `${HOST_ALIAS}:${d}/`),
];

/** A destination's summary must be clean and show exactly the edited files sent. */
function checkSummary(label, result) {
  if (!result.ok) throw new Error(`${label}: deltacast reported errors: ${JSON.stringify(result.errors.slice(0, 5))}`);
  const sent = result.created + result.updated;
  if (sent !== changed.length) throw new Error(`${label}: deltacast sent ${sent} files, expected the ${changed.length} edited ones`);
}

const rsyncCommand = `${rsync} -a --no-whole-file --stats --no-human-readable -e "ssh -F ${server.configFile}" "${at('tree-new')}/"`;
/** rsync's --stats of every run: each must have transferred exactly the edited files. */
function checkRsyncStats(label, texts) {
  if (texts.length !== D) throw new Error(`${label}: ${texts.length} rsync reports, expected ${D}`);
  for (const text of texts) {
    const m = /^Number of regular files transferred: ([\d,.]+)/m.exec(text);
    if (!m) throw new Error(`${label}: rsync --stats output lacks the files transferred:\n${text}`);
    const n = Number(m[1].replace(/[,.]/g, ''));
    if (n !== changed.length) throw new Error(`${label}: rsync transferred ${n} files, expected the ${changed.length} edited ones`);
  }
}

/**
 * The cases. `dsts` are the destinations it syncs (seeded untimed before each run); `run` returns
 * the timed measurement plus what the tool said it did, having checked that it did the case's work.
 */
const caseList = [
  {
    key: 'one',
    name: 'deltacast, 1 destination',
    dsts: destinations.slice(0, 1),
    target: null,
    async run(dsts) {
      const m = await timed(deltacastArgv(dsts));
      const summary = ndjson(m.stdout).find((e) => e.type === 'summary');
      if (!summary) throw new Error(`deltacast sync --json printed no summary:\n${m.stdout.slice(-2000)}`);
      checkSummary(this.name, summary.result);
      return measured(m);
    },
  },
  {
    key: 'fanout',
    name: `deltacast fan-out, ${D} destinations`,
    dsts: destinations,
    target: TARGET,
    async run(dsts) {
      const m = await timed(deltacastArgv(dsts));
      const events = ndjson(m.stdout);
      const report = events.find((e) => e.type === 'fanout');
      if (!report) throw new Error(`deltacast sync --json printed no fanout line:\n${m.stdout.slice(-2000)}`);
      const summaries = events.filter((e) => e.type === 'summary');
      if (summaries.length !== dsts.length) throw new Error(`${this.name}: ${summaries.length} summary events, expected ${dsts.length}`);
      for (const s of summaries) checkSummary(`${this.name} (${s.destination})`, s.result);
      // Identical destinations: one delta per changed file serves all D, and each file is read once.
      const want = { ok: true, files: changed.length, deltasComputed: changed.length, destinationFiles: dsts.length * changed.length, sourceReads: changed.length };
      for (const [key, value] of Object.entries(want)) {
        if (report[key] !== value) throw new Error(`${this.name}: ${key} is ${report[key]}, expected ${value}: ${JSON.stringify(report)}`);
      }
      const { type, ...fanout } = report;
      return { ...measured(m), fanout };
    },
  },
  {
    key: 'rsync-loop',
    name: `rsync loop, ${D} destinations one after another`,
    dsts: destinations,
    target: null,
    async run(dsts) {
      const script = `for d do ${rsyncCommand} "${HOST_ALIAS}:$d/" || exit 1; echo '--- end of run'; done`;
      const m = await timed(['sh', '-c', script, 'sh', ...dsts]);
      checkRsyncStats(this.name, m.stdout.split('--- end of run\n').filter((t) => t.trim()));
      return measured(m);
    },
  },
  {
    key: 'rsync-parallel',
    name: `rsync, ${D} destinations at once`,
    dsts: destinations,
    target: null,
    async run(dsts) {
      // Each rsync's report goes to its own file; the shell waits for each by pid to get every exit status.
      const outs = dsts.map((_, i) => at(`out/rsync-${i + 1}.txt`));
      const script = `pids=; i=0; for d do i=$((i + 1)); ${rsyncCommand} "${HOST_ALIAS}:$d/" > "${at('out')}/rsync-$i.txt" & pids="$pids $!"; done; rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc`;
      const m = await timed(['sh', '-c', script, 'sh', ...dsts]);
      checkRsyncStats(
        this.name,
        outs.map((o) => readFileSync(o, 'utf8')),
      );
      for (const o of outs) rmSync(o);
      return measured(m);
    },
  },
];

/** One run of a case from freshly seeded destinations, checked against the new tree. */
async function runCase(c) {
  seed(c.dsts);
  const sample = await c.run(c.dsts);
  for (const d of c.dsts) {
    const problems = compareSnapshots(expected, snapshotTree(d));
    if (problems.length > 0) throw new Error(`${c.name}: ${d} differs from the new tree:\n  ${problems.join('\n  ')}`);
  }
  return sample;
}

// Untimed warm-up of both tools (files in the page cache, the agent bundle and ssh read once), so the first timed case pays no start-up cost the others do not.
await runCase(caseList[0]);
await runCase({ name: 'rsync warm-up', dsts: destinations.slice(0, 1), run: (dsts) => timed(['sh', '-c', `${rsyncCommand} "${HOST_ALIAS}:$1/"`, 'sh', dsts[0]]) });
const samples = new Map(caseList.map((c) => [c.key, []]));
// The cases alternate within each repeat, each repeat starting one case later, so a slow spell on a shared machine spreads over all of them.
for (let r = 0; r < repeat; r++) {
  for (let i = 0; i < caseList.length; i++) {
    const c = caseList[(i + r) % caseList.length];
    const sample = await runCase(c);
    samples.get(c.key).push(sample);
    console.log(
      `  run ${r + 1}/${repeat}: ${c.name}: ${(sample.wallMs / 1000).toFixed(2)} s wall, ${(sample.cpuMs / 1000).toFixed(2)} s origin CPU, ${(sample.serverCpuMs / 1000).toFixed(2)} s server CPU`,
    );
  }
}
const verified = caseList.map((c) => `${c.name}: ${c.dsts.length === 1 ? 'the destination equals' : `all ${c.dsts.length} destinations equal`} the new tree after every run`);

const results = caseList.map((c) => {
  const s = samples.get(c.key);
  const med = (key) => median(s.map((x) => x[key]));
  return { case: c.name, key: c.key, destinations: c.dsts.length, wallMs: med('wallMs'), cpuMs: med('cpuMs'), serverCpuMs: med('serverCpuMs'), target: c.target, samples: s };
});
const base = results[0];
for (const row of results) {
  row.wallRatio = row.wallMs / base.wallMs;
  row.cpuRatio = row.cpuMs / base.cpuMs;
  row.met = row.target === null ? null : row.cpuRatio <= row.target.cpu && row.wallRatio <= row.target.wall;
}

const seconds = (ms) => (ms / 1000).toFixed(2);
const targetText = (t) => (t === null ? 'info' : `CPU <= ${t.cpu.toFixed(1)}x, wall <= ${t.wall.toFixed(1)}x`);
console.log('');
console.log(
  formatTable(
    ['case', 'wall s', 'origin CPU s', 'wall ratio', 'CPU ratio', 'server CPU s', 'target', 'met'],
    results.map((t) => [
      t.case,
      seconds(t.wallMs),
      seconds(t.cpuMs),
      `${t.wallRatio.toFixed(2)}x`,
      `${t.cpuRatio.toFixed(2)}x`,
      seconds(t.serverCpuMs),
      targetText(t.target),
      t.met === null ? '' : t.met ? 'yes' : 'NO',
    ]),
  ),
);
console.log('');
console.log('ratios = case / deltacast to 1 destination (< 1: less); medians of the runs.');
console.log('origin CPU = user + system time of the client processes (rsync: with the ssh it starts; deltacast does SSH in-process).');
console.log(`server CPU = the same for the server side (sshd sessions, the agents or rsync --server), which shares this machine's cores: not in the ratios; from ${serverCpuSource}.`);
const fanoutReport = results.find((r) => r.key === 'fanout').samples.at(-1).fanout;
console.log(
  `fan-out: ${fanoutReport.files} changed files, ${fanoutReport.deltasComputed} deltas computed for ${fanoutReport.destinationFiles} destination-files, ${fanoutReport.sourceReads} source reads`,
);
console.log(`verified: ${verified.join('; ')}`);

if (opts.json) {
  const report = {
    ...reportHeader('compare-fanout', loadAtStart),
    node: process.version,
    rsync: rsyncVersion,
    ssh: sshVersion,
    remoteCommand,
    files: fileCount,
    treeSize,
    changedFiles: changed.length,
    destinations: D,
    parallel: parallel ?? null,
    repeat,
    serverCpu: serverCpuSource,
    cases: results,
    fanout: fanoutReport,
    verified,
  };
  writeFileSync(resolve(opts.json), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}
server.stop();
