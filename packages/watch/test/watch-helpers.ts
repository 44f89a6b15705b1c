/**
 * Watch-mode test helpers: a running watch that records its events, and a comparison of a
 * destination with the source that allows for the sub-millisecond error of utimes.
 */
import { existsSync } from 'node:fs';
import { snapshotTree, useTempDirs } from '../../transport/test/helpers/tree.js';
const LOCK_NAME = '.deltacast-lock';
import { watch, type Watch, type WatchEvent, type WatchOptions } from '../src/index.js';
import { waitFor } from './tree-watcher-helpers.js';

export { useTempDirs, waitFor };

export interface Running {
  watch: Watch;
  events: WatchEvent[];
  of<T extends WatchEvent['type']>(type: T): Extract<WatchEvent, { type: T }>[];
}

/** Starts a watch with short timings (overridable) and in-process local agents. */
export async function startWatch(options: WatchOptions): Promise<Running> {
  const events: WatchEvent[] = [];
  const handle = await watch({
    delay: 200,
    settle: 300,
    retryMin: 200,
    retryMax: 1000,
    localAgent: 'in-process',
    ...options,
    onEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
  });
  return {
    watch: handle,
    events,
    of: <T extends WatchEvent['type']>(type: T) => events.filter((e): e is Extract<WatchEvent, { type: T }> => e.type === type),
  };
}

/**
 * Differences between the source and a destination (roots included): types, modes, sizes, contents,
 * link targets, and mtimes to within a millisecond (utimes may land a few hundred nanoseconds early).
 */
export async function mirrorDiff(source: string, destination: string): Promise<string[]> {
  if (!existsSync(destination)) return [`${destination} does not exist`];
  const expected = await snapshotTree(source, { includeRoot: true });
  const actual = await snapshotTree(destination, { includeRoot: true });
  const lines: string[] = [];
  for (const [path, e] of expected) {
    const a = actual.get(path);
    if (!a) {
      lines.push(`missing: ${path}`);
      continue;
    }
    for (const key of ['type', 'mode', 'size', 'sha256', 'linkTarget'] as const) {
      if (e[key] !== a[key]) lines.push(`${path}: ${key} ${String(a[key])}, expected ${String(e[key])}`);
    }
    if (Math.abs(e.mtimeMs - a.mtimeMs) > 1) lines.push(`${path}: mtime ${a.mtimeMs}, expected ${e.mtimeMs}`);
  }
  // The lock a watching session holds is the only file allowed beside the mirror.
  for (const path of actual.keys()) if (!expected.has(path) && path !== LOCK_NAME) lines.push(`extra: ${path}`);
  return lines;
}

/** Waits until the watch is idle and every destination mirrors the source. */
export async function waitMirrored(running: Running, source: string, destinations: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await running.watch.idle();
    // A batch may start while the trees are read (a file renamed away mid-walk): that is "not yet".
    const diffOf = (d: string) => mirrorDiff(source, d).catch((error: Error) => [`unreadable: ${error.message}`]);
    const diffs = (await Promise.all(destinations.map(async (d) => (await diffOf(d)).map((line) => `${d}: ${line}`)))).flat();
    const allUp = running.watch.status().destinations.every((d) => d.state === 'up');
    if (diffs.length === 0 && allUp) return;
    if (Date.now() > deadline) throw new Error(`destinations do not mirror the source:\n${diffs.slice(0, 20).join('\n')}\n${JSON.stringify(running.watch.status())}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
