/**
 * Trees on disk for the transport tests: build one from a spec, snapshot it (type, mode, mtime to the
 * millisecond, size, SHA-256, link target), diff two snapshots, find leftover temp files, ask `rsync -ani`
 * whether it sees any difference, and run a sync against an in-process or child-process agent.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { inProcessAgent, childProcessAgent } from '../../src/local.js';
import { buildFilter, scanSource, syncTree, type TransferOptions } from '../../src/sync.js';
import type { SyncSummary } from '../../src/events.js';
import type { ByteStreams } from '../../src/wire.js';

/** A fixed, whole-second mtime: rsync's default quick check compares whole seconds only. */
export const BASE_MTIME_MS = 1_700_000_000_000;

export interface FileSpec {
  kind: 'file';
  data: Uint8Array;
  mode: number;
  mtimeMs: number;
}
export interface DirSpec {
  kind: 'dir';
  mode: number;
  mtimeMs: number;
}
export interface LinkSpec {
  kind: 'link';
  target: string;
  mtimeMs: number;
}
export type EntrySpec = FileSpec | DirSpec | LinkSpec;
/** Paths are '/'-separated and relative; parents missing from the spec are created as plain dirs. */
export type TreeSpec = Record<string, EntrySpec | string | Uint8Array>;

export function file(data: string | Uint8Array, options: { mode?: number; mtimeMs?: number } = {}): FileSpec {
  return {
    kind: 'file',
    data: typeof data === 'string' ? new TextEncoder().encode(data) : data,
    mode: options.mode ?? 0o644,
    mtimeMs: options.mtimeMs ?? BASE_MTIME_MS,
  };
}

export function dir(options: { mode?: number; mtimeMs?: number } = {}): DirSpec {
  return { kind: 'dir', mode: options.mode ?? 0o755, mtimeMs: options.mtimeMs ?? BASE_MTIME_MS };
}

export function link(target: string, options: { mtimeMs?: number } = {}): LinkSpec {
  return { kind: 'link', target, mtimeMs: options.mtimeMs ?? BASE_MTIME_MS };
}

/** Deterministic pseudo-random bytes (xorshift32), so tests need no stored fixtures. */
export function pseudoRandom(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 24;
  }
  return out;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes `spec` under `root` (which may exist). Mtimes are set last and deepest first, since creating
 * entries inside a directory moves its mtime.
 */
export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  await mkdir(root, { recursive: true });
  const entries = Object.entries(spec)
    .map(([path, e]) => [path, typeof e === 'string' || e instanceof Uint8Array ? file(e) : e] as const)
    .sort(([a], [b]) => depthOf(a) - depthOf(b));
  for (const [path, e] of entries) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (e.kind === 'dir') await mkdir(full, { recursive: true });
    else if (e.kind === 'file') await writeFile(full, e.data);
    else await symlink(e.target, full);
  }
  for (const [path, e] of [...entries].reverse()) {
    const full = join(root, path);
    if (e.kind === 'link') {
      await lutimes(full, e.mtimeMs / 1000, e.mtimeMs / 1000);
      continue;
    }
    await chmod(full, e.mode);
    await utimes(full, e.mtimeMs / 1000, e.mtimeMs / 1000);
  }
  await pinNaturalTimes(root);
}

/** Mtimes at or after this were made by the filesystem during the run, not chosen by a test. */
const RUN_START_MS = Date.now() - 60_000;

/**
 * Moves the mtimes the filesystem chose during the run (under `path`, itself included) down to whole
 * seconds. A natural mtime a few hundred nanoseconds past a millisecond comes back one millisecond
 * early from the agent's utimes (the it.fails in sync.test.ts), which would make tree diffs flaky;
 * times the tests choose are left as they are.
 */
export async function pinNaturalTimes(path: string): Promise<void> {
  const st = await lstat(path);
  if (st.isDirectory()) for (const name of await readdir(path)) await pinNaturalTimes(join(path, name));
  if (st.mtimeMs < RUN_START_MS || st.mtimeMs % 1000 === 0) return;
  const seconds = Math.floor(st.mtimeMs / 1000);
  if (st.isSymbolicLink()) await lutimes(path, seconds, seconds);
  else await utimes(path, seconds, seconds);
}

function depthOf(path: string): number {
  return path.split('/').length;
}

export interface EntrySnapshot {
  type: 'f' | 'd' | 'l';
  mode: number;
  /** Milliseconds, floored: the precision a sync promises. */
  mtimeMs: number;
  size: number;
  sha256?: string;
  linkTarget?: string;
}

/** Every entry under `root` ('' is the root itself), keyed by relative '/'-separated path. */
export async function snapshotTree(root: string, options: { includeRoot?: boolean } = {}): Promise<Map<string, EntrySnapshot>> {
  const out = new Map<string, EntrySnapshot>();
  const visit = async (full: string, path: string): Promise<void> => {
    const st = await lstat(full);
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
    const snap: EntrySnapshot = { type, mode: st.mode & 0o7777, mtimeMs: Math.floor(st.mtimeMs), size: type === 'f' ? st.size : 0 };
    if (type === 'f') snap.sha256 = sha256(await readFile(full));
    if (type === 'l') {
      snap.linkTarget = await readlink(full);
      snap.mode = 0; // a link's own mode is not synced (Linux has no lchmod)
    }
    if (path !== '' || options.includeRoot) out.set(path, snap);
    if (type === 'd') {
      for (const name of (await readdir(full)).sort()) await visit(join(full, name), path === '' ? name : `${path}/${name}`);
    }
  };
  await visit(root, '');
  return out;
}

/** Human-readable differences between two snapshots; [] when they are the same. */
export function diffSnapshots(expected: Map<string, EntrySnapshot>, actual: Map<string, EntrySnapshot>): string[] {
  const lines: string[] = [];
  for (const [path, e] of expected) {
    const a = actual.get(path);
    if (!a) {
      lines.push(`missing: ${JSON.stringify(path)}`);
      continue;
    }
    for (const key of ['type', 'mode', 'mtimeMs', 'size', 'sha256', 'linkTarget'] as const) {
      if (e[key] !== a[key]) lines.push(`${JSON.stringify(path)}: ${key} ${String(a[key])}, expected ${String(e[key])}`);
    }
  }
  for (const path of actual.keys()) if (!expected.has(path)) lines.push(`extra: ${JSON.stringify(path)}`);
  return lines;
}

/** Differences between two trees on disk, roots included (their mode and mtime are synced too). */
export async function diffTrees(expectedRoot: string, actualRoot: string, options: { includeRoot?: boolean } = {}): Promise<string[]> {
  const includeRoot = options.includeRoot ?? true;
  return diffSnapshots(await snapshotTree(expectedRoot, { includeRoot }), await snapshotTree(actualRoot, { includeRoot }));
}

/** Temp or partial files a transfer left under `root`. */
export async function leftovers(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dirPath: string, rel: string): Promise<void> => {
    for (const entry of await readdir(dirPath, { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (/\.dctmp-|\.dcpartial$/.test(entry.name)) found.push(path);
      if (entry.isDirectory()) await walk(join(dirPath, entry.name), path);
    }
  };
  await walk(root, '');
  return found;
}

export const hasRsync = spawnSync('sh', ['-c', 'command -v rsync'], { stdio: 'ignore' }).status === 0;

/**
 * What `rsync -ani --delete src/ dst/` would still do (one itemized line per difference); '' means rsync
 * agrees the trees are identical (content, mode, mtime to the second, links, owners).
 */
export function rsyncDifferences(src: string, dst: string): string {
  const run = spawnSync('rsync', ['-ani', '--delete', `${src}/`, `${dst}/`], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`rsync failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}

/** Temporary directories removed after the file's tests. */
export function useTempDirs(prefix = 'deltacast-transport-'): () => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    made.push(d);
    return d;
  };
}

/** The built agent entry point; child-process agents run it with plain node. */
export const AGENT_MAIN = fileURLToPath(new URL('../../dist/agent-main.js', import.meta.url));

export function requireBuiltAgent(): string {
  if (!existsSync(AGENT_MAIN)) {
    throw new Error(`${AGENT_MAIN} is missing: child-process agent tests need \`pnpm --filter @deltacast/transport build\` first`);
  }
  return AGENT_MAIN;
}

export type AgentKind = 'in-process' | 'child';

export function openAgent(kind: AgentKind): ByteStreams & { done?: Promise<void> } {
  return kind === 'in-process' ? inProcessAgent() : childProcessAgent([process.execPath, requireBuiltAgent()]);
}

/** A child-process agent whose process the test controls (to kill it mid-transfer). */
export function spawnAgent(): { child: ChildProcessWithoutNullStreams; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [requireBuiltAgent()], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited };
}

/**
 * scanSource + buildFilter + syncTree, the way `sync()` runs them, against a fresh agent. Natural
 * mtimes in the source are pinned to whole seconds first (see pinNaturalTimes).
 */
export async function runSync(
  source: string,
  root: string,
  options: TransferOptions = {},
  agent: AgentKind | (ByteStreams & { done?: Promise<void> }) = 'in-process',
): Promise<SyncSummary> {
  await pinNaturalTimes(source);
  const filter = await buildFilter(options);
  const tree = await scanSource(source, filter);
  const streams = typeof agent === 'string' ? openAgent(agent) : agent;
  try {
    return await syncTree(tree, { name: root, streams, root }, filter, options);
  } finally {
    streams.close?.();
    await streams.done?.catch(() => {});
  }
}

/** The paths of `root`'s regular files grouped by inode: each group sorted, the groups sorted. */
export function linkGroups(root: string): string[][] {
  const byInode = new Map<string, string[]>();
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const path = prefix ? `${prefix}/${name}` : name;
      const st = lstatSync(full);
      if (st.isDirectory()) walk(full, path);
      else if (st.isFile()) byInode.set(`${st.dev}:${st.ino}`, [...(byInode.get(`${st.dev}:${st.ino}`) ?? []), path]);
    }
  };
  walk(root, '');
  return [...byInode.values()].map((g) => g.sort()).sort((a, b) => a[0].localeCompare(b[0]));
}
