#!/usr/bin/env node
/**
 * Watch mode against lsyncd, over one private OpenSSH server on 127.0.0.1: a source tree and D
 * destinations on the server (directories of this machine), each seeded with the tree before each
 * tool's run. With the watcher running (`deltacast watch`, or lsyncd with one default.rsyncssh sync
 * per destination, the same delay), files land on the source one at a time at spaced intervals
 * (written beside the source, then renamed in) and the destinations are polled every few ms until
 * each file is there whole everywhere: latency = rename to complete on the last destination. Then
 * a burst of files at once, then an idle window in which the watcher's CPU time (with its children)
 * is read from /proc. At the end every destination must equal the source.
 *
 *   node compare-watch.mjs [--files 2000] [--tree-size 20M] [--destinations 4] [--delay 1] [--landings 40]
 *                          [--interval 0.5-1.5] [--burst 200] [--idle 10] [--poll 2] [--timeout 60]
 *                          [--tools deltacast,lsyncd] [--json FILE] [--dir DIR] [--keep] [--cli PATH]
 *                          [--lsyncd PATH] [--rsync PATH]
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { mulberry32, randomBytes } from './lib/data.mjs';
import { descendants, processTreeCpuMs, processTreeRuntime, runtimeBetweenMs } from './lib/proc.mjs';
import { defaultCliPath, findExecutable, formatSize, formatTable, median, parseSize, repoRoot, runChecked } from './lib/run.mjs';
import { benchArgs } from './lib/args.mjs';
import { findSshd, HOST_ALIAS, startSshd } from './lib/sshd.mjs';
import { compareSnapshots, planTree, snapshotTree, writeTree } from './lib/tree-data.mjs';
import { reportHeader } from './lib/report.mjs';
import { watchTable } from './lib/watch-table.mjs';

const USAGE =
  'usage: node compare-watch.mjs [--files 2000] [--tree-size 20M] [--destinations 4] [--delay 1] [--landings 40]\n' +
  '                              [--interval 0.5-1.5] [--burst 200] [--idle 10] [--poll 2] [--timeout 60]\n' +
  '                              [--tools deltacast,lsyncd] [--json FILE] [--dir DIR] [--keep] [--cli PATH]\n' +
  '                              [--lsyncd PATH] [--rsync PATH]';
const { opts, fail, positive } = benchArgs('compare-watch', USAGE, {
  files: { type: 'string', default: '2000' },
  'tree-size': { type: 'string', default: '20M' },
  destinations: { type: 'string', default: '4' },
  delay: { type: 'string', default: '1' },
  landings: { type: 'string', default: '40' },
  interval: { type: 'string', default: '0.5-1.5' },
  burst: { type: 'string', default: '200' },
  idle: { type: 'string', default: '10' },
  poll: { type: 'string', default: '2' },
  timeout: { type: 'string', default: '60' },
  tools: { type: 'string', default: 'deltacast,lsyncd' },
  json: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean', default: false },
  cli: { type: 'string' },
  lsyncd: { type: 'string', default: 'lsyncd' },
  rsync: { type: 'string', default: 'rsync' },
});

const positiveSeconds = (name, text = opts[name]) => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number of seconds, not ${text}`);
  return n;
};
const fileCount = positive('files');
const treeSize = parseSize(opts['tree-size']);
const D = positive('destinations');
const delaySeconds = positiveSeconds('delay');
const landingCount = positive('landings');
const intervalMatch = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(opts.interval);
if (!intervalMatch) fail(`--interval must be SECONDS or MIN-MAX seconds, not ${opts.interval}`);
const interval = { min: Number(intervalMatch[1]), max: Number(intervalMatch[2] ?? intervalMatch[1]) };
if (interval.max < interval.min) fail(`--interval ${opts.interval}: the maximum is below the minimum`);
const burstCount = Number(opts.burst);
if (!Number.isInteger(burstCount) || burstCount < 0) fail(`--burst must be a whole number of files (0: no burst), not ${opts.burst}`);
const idleSeconds = positiveSeconds('idle');
const pollMs = positiveSeconds('poll');
const timeoutSeconds = positiveSeconds('timeout');
const toolNames = opts.tools.split(',').map((t) => t.trim()).filter(Boolean);
for (const t of toolNames) if (t !== 'deltacast' && t !== 'lsyncd') fail(`--tools: unknown tool ${t} (deltacast, lsyncd)`);
if (toolNames.length === 0) fail('--tools names no tool');
/** How long a watcher may take for its first full sync (--timeout bounds the deliveries). */
const STARTUP_TIMEOUT_MS = 600_000;
/** Sizes of the landed files: uniform in this range, so each is a single small write as in a deploy or an editor's save. */
const LAND_SIZE = { min: 1024, max: 64 * 1024 };
const loadAtStart = loadavg()[0];

const rsync = findExecutable(opts.rsync);
if (!rsync) fail(`rsync not found (${opts.rsync}); Debian: apt-get install rsync`);
const sshd = findSshd();
if (!sshd) fail('sshd not found; Debian: apt-get install openssh-server');
const ssh = findExecutable('ssh');
if (!ssh || !findExecutable('ssh-keygen')) fail('ssh or ssh-keygen not found; Debian: apt-get install openssh-client');
if (!existsSync('/proc/self/stat')) fail('/proc is not mounted (the CPU times are read from /proc/PID/stat)');
const cli = opts.cli ? resolve(opts.cli) : defaultCliPath;
if (toolNames.includes('deltacast')) {
  const probe = existsSync(cli) ? spawnSync(process.execPath, [cli, 'watch', '--help'], { encoding: 'utf8' }) : undefined;
  if (!probe || probe.status !== 0 || !probe.stdout.includes('--delay')) fail(`the deltacast CLI with a watch command is not built at ${cli}; run pnpm -r run build`);
}
const bundle = join(repoRoot, 'packages', 'transport', 'dist', 'agent.bundle.mjs');
if (toolNames.includes('deltacast') && !existsSync(bundle)) fail(`the agent bundle ${bundle} is not built; run pnpm -r run build`);
// The agent bundle of this checkout on the server, as in compare-fanout: nothing is uploaded.
const remoteCommand = `${process.execPath} ${bundle}`;
// lsyncd is optional: without it deltacast still runs, and the report says why lsyncd is missing.
const lsyncd = toolNames.includes('lsyncd') ? findExecutable(opts.lsyncd) : undefined;
const lsyncdVersion = lsyncd ? (spawnSync(lsyncd, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^Version:\s*/, '') || 'unknown') : null;
const skipped = [];
if (toolNames.includes('lsyncd') && !lsyncd) skipped.push({ tool: 'lsyncd', reason: `lsyncd not found (${opts.lsyncd}); Debian: apt-get install lsyncd` });
const tools = toolNames.filter((t) => t !== 'lsyncd' || lsyncd);
const rsyncVersion = runChecked([rsync, '--version']).stdout.split('\n')[0].replace(/\s+/g, ' ').trim();
const sshVersion = spawnSync(ssh, ['-V'], { encoding: 'utf8' }).stderr.trim();
const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout ?? '';
const cpuModel = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1].trim() ?? cpus()[0]?.model ?? 'unknown';
const machine = `${cpuModel}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory`;

const dir = opts.dir ? resolve(opts.dir) : mkdtempSync(join(tmpdir(), 'deltacast-watch-'));
mkdirSync(dir, { recursive: true });
const at = (name) => join(dir, name);
// What this run writes: removed at exit, also after a failure, unless --keep (the whole directory when it made it).
const written = ['ssh', 'tree', 'src', 'stage', 'dst', 'lsyncd'];
/** The watcher running now, stopped at exit whatever happens. */
let running;
process.on('exit', () => {
  if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
  if (opts.keep) return;
  if (opts.dir) for (const name of written) rmSync(at(name), { recursive: true, force: true });
  else rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

console.log(
  `compare-watch: tree of ${fileCount} files, ${formatSize(treeSize)}, to ${D} destinations; delay ${delaySeconds} s; ${landingCount} files landed ${interval.min}-${interval.max} s apart, a burst of ${burstCount}, ${idleSeconds} s idle`,
);
console.log(`  machine: ${machine}; node ${process.version}`);
console.log(`  deltacast: ${cli}; remote agent: ${remoteCommand}`);
console.log(`  lsyncd: ${lsyncd ? `${lsyncd} (${lsyncdVersion})` : `not run: ${skipped[0]?.reason ?? 'not asked for (--tools)'}`}`);
console.log(`  rsync: ${rsync} (${rsyncVersion}); ${sshVersion}; sshd ${sshd}`);
console.log(`  files in ${dir}`);

const server = await startSshd(at('ssh'));
console.log(`  sshd on 127.0.0.1:${server.port}`);
const sshdPid = Number(readFileSync(join(server.configFile, '..', 'sshd.pid'), 'utf8'));

const t0 = performance.now();
const plan = planTree(fileCount, treeSize);
writeTree(at('tree'), plan);
console.log(`  generated the tree (${plan.files.length} files in ${plan.dirs.length + 1} directories) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const src = at('src');
const stage = at('stage');
const destinations = Array.from({ length: D }, (_, i) => at(`dst/${i + 1}`));

/**
 * What lands, the same for every tool (seeded): `landings` files at spaced intervals, then `burst`
 * files at once, each in a directory of the tree, with random content.
 */
const rand = mulberry32(42);
const dirsOfTree = ['', ...plan.dirs];
const landingFile = (name, i) => {
  const d = dirsOfTree[Math.floor(rand() * dirsOfTree.length)];
  const size = LAND_SIZE.min + Math.floor(rand() * (LAND_SIZE.max - LAND_SIZE.min + 1));
  return { rel: d ? `${d}/${name}` : name, size, seed: `land:${name}:${i}` };
};
const landings = Array.from({ length: landingCount }, (_, i) => ({
  ...landingFile(`landed-${String(i).padStart(4, '0')}.bin`, i),
  waitMs: (interval.min + rand() * (interval.max - interval.min)) * 1000,
}));
const burst = Array.from({ length: burstCount }, (_, i) => landingFile(`burst-${String(i).padStart(4, '0')}.bin`, i));

/**
 * Puts the source and every destination back to the generated tree (local `cp -a`; the server is
 * this machine) and flushes them to disk, so the previous tool's files and writeback are gone.
 */
function seed() {
  for (const d of [src, stage, ...destinations]) rmSync(d, { recursive: true, force: true });
  runChecked(['cp', '-a', at('tree'), src]);
  for (const d of destinations) {
    mkdirSync(join(d, '..'), { recursive: true });
    runChecked(['cp', '-a', at('tree'), d]);
  }
  mkdirSync(stage);
  runChecked(['sync']);
}

/** Lines of a child's stream, to `onLine`, keeping the last ones for error messages. */
function lines(stream, onLine, tail) {
  let rest = '';
  stream.setEncoding('utf8').on('data', (text) => {
    const parts = (rest + text).split('\n');
    rest = parts.pop();
    for (const line of parts) {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      onLine(line);
    }
  });
}

/** Resolves when `ready()` is true; rejects with `explain()` after `timeoutMs` or when the child exits. */
async function waitFor(child, ready, timeoutMs, explain) {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${explain()}`);
    if (performance.now() > deadline) throw new Error(`not ready after ${timeoutMs / 1000} s:\n${explain()}`);
    await sleep(20);
  }
}

/**
 * The watchers. Each `start()` spawns it (returning the child) and resolves once its first full
 * sync is done to every destination; `busy()` says whether it is still working on something.
 */
const toolDefs = {
  deltacast: {
    version: null,
    runsUnit: `batches (each to all ${D} destinations)`,
    command: () =>
      [process.execPath, cli, 'watch', '--json', '-F', server.configFile, '--remote-command', remoteCommand, '--delay', String(delaySeconds), `${src}/`, ...destinations.map((d) => `${HOST_ALIAS}:${d}/`)],
    async start() {
      const argv = this.command();
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.events = [];
      this.stdoutTail = [];
      this.stderrTail = [];
      this.lastEventAt = performance.now();
      lines(
        child.stdout,
        (line) => {
          if (!line.trim()) return;
          let event;
          try {
            event = JSON.parse(line);
          } catch {
            event = { type: 'unparsed', line };
          }
          this.lastEventAt = performance.now();
          // The fan-out's per-file events are many in a full sync; only the watch loop's are kept.
          if (!['item', 'file', 'delta', 'start', 'summary'].includes(event.type)) this.events.push({ at: performance.now(), ...event });
        },
        this.stdoutTail,
      );
      lines(child.stderr, () => {}, this.stderrTail);
      const explain = () => `${this.stderrTail.join('\n')}\n${this.stdoutTail.slice(-10).join('\n')}`;
      await waitFor(
        child,
        () => this.events.some((e) => e.type === 'batch-done' && e.reason === 'initial') && this.events.filter((e) => e.type === 'destination-up').length >= D,
        STARTUP_TIMEOUT_MS,
        explain,
      );
      const initial = this.events.find((e) => e.type === 'batch-done' && e.reason === 'initial');
      if (!initial.ok) throw new Error(`deltacast's first sync failed: ${JSON.stringify(initial)}\n${explain()}`);
      return child;
    },
    busy() {
      const started = this.events.filter((e) => e.type === 'batch').length;
      const done = this.events.filter((e) => e.type === 'batch-done').length;
      return started !== done || performance.now() - this.lastEventAt < 500;
    },
    /** Where its output is now, for activity(). */
    position() {
      return this.events.length;
    },
    /** What happened between two positions: batches run and anything that went wrong. */
    activity(from, to = this.events.length) {
      const within = this.events.slice(from, to);
      return {
        runs: within.filter((e) => e.type === 'batch-done').length,
        problems: within.filter((e) => ['destination-down', 'watch-error', 'error', 'unparsed'].includes(e.type) || (e.type === 'batch-done' && !e.ok)),
      };
    },
    explain() {
      return `deltacast stderr:\n${this.stderrTail.join('\n')}\nlast stdout lines:\n${this.stdoutTail.slice(-10).join('\n')}`;
    },
  },
  lsyncd: {
    version: lsyncdVersion,
    runsUnit: 'rsync runs (each to one destination)',
    command: () => [lsyncd, at('lsyncd/lsyncd.conf.lua')],
    /**
     * One default.rsyncssh sync per destination (the form lsyncd's manual gives for a remote
     * host: rsync for contents, ssh for moves and deletes), all with the same delay, rsync -a,
     * and both rsync's ssh and lsyncd's own ssh reading the private config.
     */
    config() {
      const lua = (s) => JSON.stringify(s);
      const sshCommand = `${ssh} -F ${server.configFile}`;
      return [
        'settings {',
        '  nodaemon = true,',
        `  logfile = ${lua(at('lsyncd/lsyncd.log'))},`,
        '}',
        ...destinations.map((d) =>
          [
            'sync {',
            '  default.rsyncssh,',
            `  source = ${lua(`${src}/`)},`,
            `  host = ${lua(HOST_ALIAS)},`,
            `  targetdir = ${lua(`${d}/`)},`,
            `  delay = ${delaySeconds},`,
            `  rsync = { binary = ${lua(rsync)}, archive = true, rsh = ${lua(sshCommand)} },`,
            `  ssh = { binary = ${lua(ssh)}, _extra = { "-F", ${lua(server.configFile)} } },`,
            '}',
          ].join('\n'),
        ),
        '',
      ].join('\n');
    },
    async start() {
      rmSync(at('lsyncd'), { recursive: true, force: true });
      mkdirSync(at('lsyncd'));
      writeFileSync(at('lsyncd/lsyncd.conf.lua'), this.config());
      const argv = this.command();
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      this.stdoutTail = [];
      this.stderrTail = [];
      lines(child.stdout, () => {}, this.stdoutTail);
      lines(child.stderr, () => {}, this.stderrTail);
      // Its startup: one full rsync per sync, each logged as finished; then the destinations must mirror the source.
      await waitFor(child, () => this.log().match(/Startup of .* finished/g)?.length >= D && descendants(child.pid).length === 0, STARTUP_TIMEOUT_MS, () => this.explain());
      const want = snapshotTree(src);
      for (const d of destinations) {
        const problems = compareSnapshots(want, snapshotTree(d));
        if (problems.length > 0) throw new Error(`lsyncd's startup sync left ${d} different from the source:\n  ${problems.join('\n  ')}`);
      }
      return child;
    },
    log() {
      try {
        return readFileSync(at('lsyncd/lsyncd.log'), 'utf8');
      } catch {
        return '';
      }
    },
    busy() {
      return descendants(this.child.pid).length > 0;
    },
    position() {
      return this.log().length;
    },
    activity(from, to = this.log().length) {
      const slice = this.log().slice(from, to);
      return {
        runs: (slice.match(/Calling rsync with filter-list|Rsyncing list/g) ?? []).length,
        problems: slice.split('\n').filter((l) => /\bError\b|Failure|Retrying/.test(l)),
      };
    },
    explain() {
      return `lsyncd log (last lines):\n${this.log().trim().split('\n').slice(-20).join('\n')}\nstderr:\n${this.stderrTail.join('\n')}\nstdout:\n${this.stdoutTail.slice(-10).join('\n')}`;
    },
  },
};

/** Writes a landing's file into the staging directory (same filesystem as the source), untimed. */
function stageFile(file) {
  const path = join(stage, file.rel.replaceAll('/', '__'));
  const data = randomBytes(file.seed, file.size);
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
  } finally {
    closeSync(fd);
  }
  return { ...file, staged: path, data: Buffer.from(data.buffer, data.byteOffset, data.length) };
}

/**
 * Polls the destinations for landed files every `pollMs`: a file has arrived at a destination once
 * it is there with its whole content (both tools rename complete files into place, so a partial
 * file is never seen there; the content check makes sure). Records per destination the first
 * time it was seen complete.
 */
class ArrivalPoller {
  constructor() {
    this.pending = [];
    this.timer = undefined;
  }
  add(entry) {
    entry.arrivedAt = new Array(D).fill(null);
    this.pending.push(entry);
    this.timer ??= setTimeout(() => this.tick(), pollMs);
  }
  tick() {
    this.timer = undefined;
    const now = performance.now();
    for (const entry of this.pending) {
      for (let d = 0; d < D; d++) {
        if (entry.arrivedAt[d] !== null) continue;
        const path = join(destinations[d], entry.rel);
        const st = statSync(path, { throwIfNoEntry: false });
        if (!st || st.size !== entry.data.length) continue;
        let got;
        try {
          got = readFileSync(path);
        } catch {
          continue; // replaced between the stat and the read
        }
        if (got.equals(entry.data)) entry.arrivedAt[d] = now;
      }
    }
    this.pending = this.pending.filter((e) => e.arrivedAt.includes(null));
    if (this.pending.length > 0) this.timer = setTimeout(() => this.tick(), pollMs);
  }
  /** Resolves when every entry added so far has arrived everywhere; throws after `timeoutMs` since the last landing. */
  async drained(timeoutMs, lastLandedAt, explain) {
    while (this.pending.length > 0) {
      if (performance.now() - lastLandedAt > timeoutMs) {
        const missing = this.pending.slice(0, 10).map((e) => `${e.rel} (landed ${((performance.now() - e.landedAt) / 1000).toFixed(1)} s ago): missing at ${e.arrivedAt.map((a, d) => (a === null ? destinations[d] : null)).filter(Boolean).join(', ')}`);
        throw new Error(`${this.pending.length} landed file(s) not delivered everywhere within ${timeoutMs / 1000} s:\n  ${missing.join('\n  ')}\n${explain()}`);
      }
      await sleep(20);
    }
  }
}

/** Lands a staged file: one rename into the source. Returns the time right after the rename. */
function land(entry) {
  renameSync(entry.staged, join(src, entry.rel));
  entry.landedAt = performance.now();
  return entry.landedAt;
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
};

/** One tool's whole run from freshly seeded trees: start, landings, burst, idle, stop, verify. */
async function runTool(name) {
  const tool = toolDefs[name];
  seed();
  const explain = () => tool.explain();
  const startedAt = performance.now();
  const child = await tool.start();
  running = child;
  const readyMs = performance.now() - startedAt;
  console.log(`  ${name}: started (pid ${child.pid}), first sync done in ${(readyMs / 1000).toFixed(2)} s`);
  // Quiet the start-up's tail (deltacast's last events, lsyncd's rsyncs) before anything lands.
  for (let quiet = 0; quiet < 1000; quiet = tool.busy() ? 0 : quiet + 50) await sleep(50);
  const activeFromPos = tool.position();

  const poller = new ArrivalPoller();
  const activeFrom = performance.now();
  const cpuActiveStart = processTreeCpuMs(child.pid);
  const landed = [];
  let lastLandedAt = performance.now();
  for (const file of landings) {
    const entry = stageFile(file);
    await sleep(file.waitMs);
    lastLandedAt = land(entry);
    poller.add(entry);
    landed.push(entry);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) during the landings:\n${explain()}`);
  }
  await poller.drained(timeoutSeconds * 1000, lastLandedAt, explain);
  console.log(`  ${name}: ${landed.length} landings delivered to all ${D} destinations`);

  // The burst: staged first (untimed), then renamed in as fast as the loop goes.
  let burstResult = null;
  if (burst.length > 0) {
    await sleep(delaySeconds * 1000 + 1000);
    const entries = burst.map(stageFile);
    const first = performance.now();
    for (const entry of entries) {
      land(entry);
      poller.add(entry);
    }
    const renamedMs = performance.now() - first;
    await poller.drained(timeoutSeconds * 1000, performance.now(), explain);
    const done = Math.max(...entries.flatMap((e) => e.arrivedAt));
    burstResult = { files: entries.length, renameMs: renamedMs, allLiveMs: done - first, firstLiveMs: Math.min(...entries.flatMap((e) => e.arrivedAt)) - first };
    console.log(`  ${name}: burst of ${entries.length} files live everywhere ${(burstResult.allLiveMs / 1000).toFixed(2)} s after the first rename`);
  }

  // Idle: wait until the watcher has nothing left to do, then read its CPU time over the window.
  for (let quiet = 0; quiet < delaySeconds * 1000 + 1000; quiet = tool.busy() ? 0 : quiet + 50) await sleep(50);
  const activeCpuMs = processTreeCpuMs(child.pid) - cpuActiveStart;
  const activeMs = performance.now() - activeFrom;
  const activeActivity = tool.activity(activeFromPos);
  const idleFromPos = tool.position();
  const idleFrom = performance.now();
  const cpuIdleStart = processTreeCpuMs(child.pid);
  const runtimeIdleStart = processTreeRuntime(child.pid);
  const serverIdleStart = processTreeRuntime(sshdPid);
  await sleep(idleSeconds * 1000);
  const cpuIdleEnd = processTreeCpuMs(child.pid);
  const runtimeIdleEnd = processTreeRuntime(child.pid);
  const serverIdleEnd = processTreeRuntime(sshdPid);
  const idleMs = performance.now() - idleFrom;
  const idleActivity = tool.activity(idleFromPos);
  if (cpuIdleEnd === undefined || runtimeIdleEnd === undefined) throw new Error(`${name} exited during the idle window:\n${explain()}`);

  // Stop: deltacast finishes its batch and exits 0 on SIGTERM; lsyncd ends on SIGTERM.
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.kill('SIGTERM');
  const exit = await Promise.race([exited, sleep(30_000).then(() => null)]);
  if (exit === null) throw new Error(`${name} did not exit within 30 s of SIGTERM:\n${explain()}`);
  running = undefined;
  if (name === 'deltacast' && exit.code !== 0) throw new Error(`deltacast watch exited with ${exit.code ?? exit.signal} on SIGTERM (expected 0):\n${explain()}`);

  // Verified after the stop (deltacast's destination locks are gone then): every destination equals the source.
  const want = snapshotTree(src);
  for (const d of destinations) {
    const problems = compareSnapshots(want, snapshotTree(d));
    if (problems.length > 0) throw new Error(`${name}: ${d} differs from the source at the end:\n  ${problems.join('\n  ')}`);
  }

  const idleRuntimeMs = runtimeBetweenMs(runtimeIdleStart, runtimeIdleEnd);
  const serverIdleMs = runtimeBetweenMs(serverIdleStart, serverIdleEnd);
  const latencies = landed.map((e) => Math.max(...e.arrivedAt) - e.landedAt);
  const firsts = landed.map((e) => Math.min(...e.arrivedAt) - e.landedAt);
  const perDestination = destinations.map((_, d) => median(landed.map((e) => e.arrivedAt[d] - e.landedAt)));
  const result = {
    tool: name,
    version: tool.version,
    command: tool.command().join(' '),
    readyMs,
    latency: { medianMs: median(latencies), p95Ms: percentile(latencies, 95), maxMs: Math.max(...latencies), minMs: Math.min(...latencies) },
    firstArrival: { medianMs: median(firsts), p95Ms: percentile(firsts, 95) },
    perDestinationMedianMs: perDestination,
    burst: burstResult,
    runsUnit: tool.runsUnit,
    active: { ms: activeMs, cpuMs: activeCpuMs, runs: activeActivity.runs },
    idle: {
      ms: idleMs,
      // utime + stime (+ children's) in clock ticks, as /proc/PID/stat gives them: 10 ms steps.
      cpuMs: cpuIdleEnd - cpuIdleStart,
      cpuMsPerMinute: ((cpuIdleEnd - cpuIdleStart) * 60_000) / idleMs,
      // The same from the scheduler's per-thread nanoseconds: what an idle watcher's few ms really are.
      runtimeMs: idleRuntimeMs,
      runtimeMsPerMinute: (idleRuntimeMs * 60_000) / idleMs,
      serverRuntimeMs: serverIdleMs,
      serverRuntimeMsPerMinute: (serverIdleMs * 60_000) / idleMs,
      runs: idleActivity.runs,
    },
    problems: [...activeActivity.problems, ...idleActivity.problems].slice(0, 20),
    exit,
    samples: landed.map((e) => ({ file: e.rel, size: e.size, arrivalMs: e.arrivedAt.map((a) => a - e.landedAt) })),
  };
  console.log(
    `  ${name}: latency median ${(result.latency.medianMs / 1000).toFixed(3)} s, p95 ${(result.latency.p95Ms / 1000).toFixed(3)} s; idle ${result.idle.runtimeMs.toFixed(2)} ms CPU in ${(idleMs / 1000).toFixed(1)} s; all ${D} destinations equal the source`,
  );
  return result;
}

const results = [];
for (const name of tools) results.push(await runTool(name));
const verified = results.map((r) => `${r.tool}: every landed file arrived whole at all ${D} destinations; all ${D} destinations equal the source after the stop`);

const byTool = Object.fromEntries(results.map((r) => [r.tool, r]));
const ratios =
  byTool.deltacast && byTool.lsyncd
    ? {
        latencyMedian: byTool.deltacast.latency.medianMs / byTool.lsyncd.latency.medianMs,
        latencyP95: byTool.deltacast.latency.p95Ms / byTool.lsyncd.latency.p95Ms,
        burst: byTool.deltacast.burst && byTool.lsyncd.burst ? byTool.deltacast.burst.allLiveMs / byTool.lsyncd.burst.allLiveMs : null,
        idleCpu: byTool.lsyncd.idle.runtimeMs > 0 ? byTool.deltacast.idle.runtimeMs / byTool.lsyncd.idle.runtimeMs : null,
      }
    : null;

console.log('');
const table = watchTable(results, ratios, burstCount);
console.log(formatTable(table.header, table.rows));
console.log('');
console.log(`latency = from the rename into the source to the file whole on the last of the ${D} destinations (polled every ${pollMs} ms), over ${landingCount} files; delay ${delaySeconds} s for both.`);
console.log('CPU = user + system time of the watcher process and its children (lsyncd: the rsync and ssh it starts), from /proc; active = the landings and the burst.');
console.log(`idle CPU = per thread from /proc/PID/task/TID/schedstat (ns); idle ticks = utime + stime + cutime + cstime from /proc/PID/stat (10 ms steps: ${(600 / idleSeconds).toFixed(0)} ms/min over ${idleSeconds} s).`);
console.log("server CPU = the server side's (sshd sessions: deltacast's kept agents), not the watcher's; the destinations share this machine's cores.");
for (const s of skipped) console.log(`skipped ${s.tool}: ${s.reason}`);
for (const r of results) {
  if (r.problems.length > 0) console.log(`${r.tool} reported problems: ${r.problems.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('; ')}`);
  console.log(`${r.tool}: ${r.active.runs} ${r.runsUnit} for the landings and the burst, ${r.idle.runs} while idle`);
}
console.log(`verified: ${verified.join('; ')}`);

if (opts.json) {
  const report = {
    ...reportHeader('compare-watch', loadAtStart),
    machine,
    node: process.version,
    lsyncd: lsyncdVersion,
    rsync: rsyncVersion,
    ssh: sshVersion,
    remoteCommand,
    files: fileCount,
    treeSize,
    destinations: D,
    delaySeconds,
    landings: landingCount,
    intervalSeconds: interval,
    landSize: LAND_SIZE,
    burst: burstCount,
    idleSeconds,
    pollMs,
    tools: results,
    skipped,
    ratios,
    verified,
  };
  writeFileSync(resolve(opts.json), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results written to ${resolve(opts.json)}`);
}
server.stop();
