/**
 * CPU time of running processes from /proc (Linux), for benchmarks that measure a long-running
 * process (a watcher) over a window instead of waiting for it to exit.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { runChecked } from './run.mjs';

let clockTicks;
/** Clock ticks per second of /proc/PID/stat's times (getconf CLK_TCK, 100 on Linux). */
export function clockTicksPerSecond() {
  clockTicks ??= Number(runChecked(['getconf', 'CLK_TCK']).stdout);
  return clockTicks;
}

/** { ppid, ticks: utime + stime + cutime + cstime } of one process, or undefined once it is gone. */
function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces): state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/** Every process: its stat (ppid, ticks) by pid, and its children by parent pid. */
function processTable() {
  const stats = new Map();
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (!stat) continue;
    const pid = Number(name);
    stats.set(pid, stat);
    if (!children.has(stat.ppid)) children.set(stat.ppid, []);
    children.get(stat.ppid).push(pid);
  }
  return { stats, children };
}

/** `pid` and the pids of its live descendants (children, grandchildren, ...), from one processTable(). */
function treeOf(pid, children) {
  const out = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    out.push(p);
    for (const child of children.get(p) ?? []) stack.push(child);
  }
  return out;
}

/**
 * CPU time (ms, user + system) used so far by process `pid` and every descendant: each one's own
 * time plus that of the children it has reaped (cutime + cstime). The difference of two readings is
 * the tree's CPU time in between, also when descendants start or end in between: a child that
 * ends moves its time into its parent's cutime, which is counted too. Resolution: one clock tick
 * (10 ms) per process. Returns undefined when `pid` is gone.
 */
export function processTreeCpuMs(pid) {
  const { stats, children } = processTable();
  if (!stats.has(pid)) return undefined;
  const ticks = treeOf(pid, children).reduce((sum, p) => sum + stats.get(p).ticks, 0);
  return (ticks * 1000) / clockTicksPerSecond();
}

/** The pids of the live descendants of `pid` (children, grandchildren, ...). */
export function descendants(pid) {
  return treeOf(pid, processTable().children).slice(1);
}

/**
 * A finer reading of the same CPU time, for idle windows where a clock tick (10 ms) is too coarse:
 * the nanoseconds on a CPU of every live thread of `pid` and its descendants (first field of
 * /proc/PID/task/TID/schedstat, kept by the scheduler), plus the reaped children's time in ticks.
 * Compare two readings with runtimeBetweenMs(). Undefined when `pid` is gone.
 */
export function processTreeRuntime(pid) {
  if (!existsSync(`/proc/${pid}`)) return undefined;
  const threads = new Map();
  let reapedTicks = 0;
  for (const p of [pid, ...descendants(pid)]) {
    let tids;
    try {
      tids = readdirSync(`/proc/${p}/task`);
      const text = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      reapedTicks += Number(f[13]) + Number(f[14]);
    } catch {
      continue; // ended meanwhile
    }
    for (const tid of tids) {
      try {
        threads.set(`${p}/${tid}`, Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return { threads, reapedTicks };
}

/**
 * CPU time (ms) between two processTreeRuntime() readings: what each thread alive at the end ran
 * since the first reading (all of it for a new one), plus what children reaped in between ran.
 * Exact while no thread or process ends in between; one that does loses its share since the first
 * reading (its reaped time is counted in ticks, over its whole life).
 */
export function runtimeBetweenMs(before, after) {
  let ns = 0;
  for (const [tid, value] of after.threads) ns += value - (before.threads.get(tid) ?? 0);
  return ns / 1e6 + ((after.reapedTicks - before.reapedTicks) * 1000) / clockTicksPerSecond();
}
