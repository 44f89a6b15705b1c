/**
 * rsync's --itemize-changes codes (itemize.ts) on the item events of a sync: each case's lines are
 * checked against what they must say and, where rsync is installed, against `rsync -ai` on a copy
 * of the same two trees. Times differ by whole seconds, as rsync here compares them to the second.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../src/events.js';
import { itemCode } from '../src/itemize.js';
import type { Change } from '../src/plan.js';
import { sync, type TransferOptions } from '../src/sync.js';
import type { SourceEntry } from '../src/tree.js';
import { BASE_MTIME_MS, dir, file, hasRsync, link, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';

const temp = useTempDirs('deltacast-itemize-');
const T = BASE_MTIME_MS;
const EARLIER = T - 3_600_000;
const isRoot = process.getuid?.() === 0;

const SOURCE: TreeSpec = {
  'same.txt': file('unchanged', { mtimeMs: T }),
  'grown.txt': file('longer than it was', { mtimeMs: T }),
  'same-size.txt': file('new!', { mtimeMs: T }),
  'touched.txt': file('same content', { mtimeMs: T }),
  'chmodded.txt': file('same content', { mtimeMs: T, mode: 0o600 }),
  'new.txt': file('new', { mtimeMs: T }),
  'new-dir': dir({ mtimeMs: T }),
  'new-dir/inside.txt': file('in a new directory', { mtimeMs: T }),
  'kept-dir': dir({ mtimeMs: T }),
  'kept-dir/x': file('x', { mtimeMs: T }),
  'retargeted': link('new-target', { mtimeMs: T }),
  'retimed-link': link('same-target', { mtimeMs: T }),
  'new-link': link('same.txt', { mtimeMs: T }),
  'dir-becomes-file': file('was a directory', { mtimeMs: T }),
  'file-becomes-dir': dir({ mtimeMs: T }),
};

const DESTINATION: TreeSpec = {
  'same.txt': file('unchanged', { mtimeMs: T }),
  'grown.txt': file('short', { mtimeMs: EARLIER }),
  'same-size.txt': file('old!', { mtimeMs: EARLIER }),
  'touched.txt': file('same content', { mtimeMs: EARLIER }),
  'chmodded.txt': file('same content', { mtimeMs: T, mode: 0o644 }),
  'kept-dir': dir({ mtimeMs: EARLIER }),
  'kept-dir/x': file('x', { mtimeMs: T }),
  'retargeted': link('old-target', { mtimeMs: T }),
  'retimed-link': link('same-target', { mtimeMs: EARLIER }),
  'dir-becomes-file': dir({ mtimeMs: T }),
  'dir-becomes-file/inside': file('goes', { mtimeMs: T }),
  'file-becomes-dir': file('goes', { mtimeMs: T }),
  'extra.txt': file('only here', { mtimeMs: T }),
  'extra-dir': dir({ mtimeMs: T }),
  'extra-dir/sub': dir({ mtimeMs: T }),
  'extra-dir/sub/deep.txt': file('only here', { mtimeMs: T }),
  'extra-dir/top.txt': file('only here', { mtimeMs: T }),
};

/** rsync -i's line for an item event, as the CLI prints it. */
function line(e: Extract<SyncEvent, { type: 'item' }>): string | undefined {
  if (e.itemized === undefined) return undefined;
  const arrow = e.entryType === 'l' && e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : '';
  return `${e.itemized.padEnd(11)} ${e.path === '' ? '.' : e.path}${e.entryType === 'd' ? '/' : ''}${arrow}`;
}

async function trees(): Promise<{ src: string; dst: string; base: string }> {
  const base = temp();
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  await writeTree(src, SOURCE);
  await writeTree(dst, DESTINATION);
  for (const root of [src, dst]) utimesSync(root, T / 1000, T / 1000);
  return { src, dst, base };
}

/** deltacast's lines, sorted, for a sync (or dry run) of `src/` into `dst`. */
async function deltacastLines(src: string, dst: string, options: Partial<TransferOptions>): Promise<string[]> {
  const lines: string[] = [];
  const summary = await sync({
    source: `${src}/`,
    destination: dst,
    localAgent: 'in-process',
    delete: true,
    ...options,
    onEvent: (e) => {
      if (e.type !== 'item') return;
      const l = line(e);
      if (l !== undefined) lines.push(l);
    },
  });
  expect(summary.errors).toEqual([]);
  return lines.sort();
}

/** rsync -i's lines, sorted, for the same trees (a copy of the destination). */
function rsyncLines(src: string, dst: string, base: string, flags: string[]): string[] | undefined {
  if (!hasRsync) return undefined;
  const copy = join(base, 'rsync-dst');
  // cp -a keeps what the comparison needs: symlinks' own mtimes, owners.
  const cp = spawnSync('cp', ['-a', dst, copy], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`cp -a failed: ${cp.stderr}`);
  const run = spawnSync('rsync', ['-rlptD', '-i', '--delete', ...flags, `${src}/`, `${copy}/`], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`rsync failed: ${run.stderr}`);
  return run.stdout
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

/** What every case shows alike (files sent locally: `>`). */
const COMMON = [
  '*deleting   extra.txt',
  '*deleting   extra-dir/sub/deep.txt',
  '*deleting   extra-dir/sub/',
  '*deleting   extra-dir/top.txt',
  '*deleting   extra-dir/',
  '*deleting   dir-becomes-file/inside',
  '>f+++++++++ new.txt',
  'cd+++++++++ new-dir/',
  '>f+++++++++ new-dir/inside.txt',
  '.d..t...... kept-dir/',
  'cLc........ retargeted -> new-target',
  '.L..t...... retimed-link -> same-target',
  'cL+++++++++ new-link -> same.txt',
  '>f+++++++++ dir-becomes-file',
  'cd+++++++++ file-becomes-dir/',
  '.f...p..... chmodded.txt',
];

describe('--itemize-changes codes, as rsync -i prints them', () => {
  it('size, time, permissions, new entries, symlinks, directories and deletions (the contents of a deleted directory too)', async () => {
    const { src, dst, base } = await trees();
    const expected = [...COMMON, '>f.st...... grown.txt', '>f..t...... same-size.txt', '>f..t...... touched.txt'].sort();
    const rsync = rsyncLines(src, dst, base, []);
    expect(await deltacastLines(src, dst, { dryRun: true })).toEqual(expected);
    expect(await deltacastLines(src, dst, {})).toEqual(expected);
    if (rsync) expect(rsync).toEqual(expected);
    // Nothing left to do: nothing itemized.
    expect(await deltacastLines(src, dst, {})).toEqual([]);
  });

  it('--checksum: `c` for every file sent, a changed time alone is an attribute change', async () => {
    const { src, dst, base } = await trees();
    const expected = [...COMMON, '>fcst...... grown.txt', '>fc.t...... same-size.txt', '.f..t...... touched.txt'].sort();
    const rsync = rsyncLines(src, dst, base, ['-c']);
    expect(await deltacastLines(src, dst, { checksum: true })).toEqual(expected);
    if (rsync) expect(rsync).toEqual(expected);
  });

  it.skipIf(!isRoot)('--owner: `o` and `g` where the owner or group differs (run as root)', async () => {
    const { src, dst, base } = await trees();
    chownSync(join(dst, 'same.txt'), 65534, 0);
    chownSync(join(dst, 'touched.txt'), 0, 65534);
    const expected = [...COMMON, '>f.st...... grown.txt', '>f..t...... same-size.txt', '>f..t..g... touched.txt', '.f....o.... same.txt'].sort();
    const rsync = rsyncLines(src, dst, base, ['-o', '-g']);
    expect(await deltacastLines(src, dst, { owner: true })).toEqual(expected);
    if (rsync) expect(rsync).toEqual(expected);
  });

  it("the root's own mode and mtime are compared and set, as rsync's `./`, even where nothing in it changes", async () => {
    const { src, dst, base } = await trees();
    // The same trees, but for everything that differs under the root.
    const again = await deltacastLines(src, dst, {});
    expect(again.length).toBeGreaterThan(0);
    chmodSync(dst, 0o700);
    utimesSync(dst, EARLIER / 1000, EARLIER / 1000);
    const rsync = rsyncLines(src, dst, base, []);
    expect(await deltacastLines(src, dst, {})).toEqual(['.d..tp..... ./']);
    if (rsync) expect(rsync).toEqual(['.d..tp..... ./']);
    const [a, b] = [statSync(src), statSync(dst)];
    expect([b.mode & 0o7777, b.mtimeMs]).toEqual([a.mode & 0o7777, a.mtimeMs]);
    expect(await deltacastLines(src, dst, {})).toEqual([]);
  });

  it('a destination root the session makes is `cd+++++++++ ./`, listed first, as rsync lists it', async () => {
    const { src, base } = await trees();
    const fresh = join(base, 'fresh', 'dst');
    const lines: string[] = [];
    await sync({ source: `${src}/`, destination: fresh, localAgent: 'in-process', onEvent: (e) => void (e.type === 'item' && lines.push(line(e) ?? '')) });
    expect(lines[0]).toBe('cd+++++++++ ./');
    expect(lines.filter((l) => l.endsWith(' ./'))).toHaveLength(1);
  });

  it('a dry run to a missing destination makes nothing, not even the root, and shows it would be made', async () => {
    const { src, base } = await trees();
    const missing = join(base, 'missing', 'dst');
    const lines: string[] = [];
    const summary = await sync({ source: `${src}/`, destination: missing, localAgent: 'in-process', dryRun: true, onEvent: (e) => void (e.type === 'item' && lines.push(line(e) ?? '')) });
    expect(summary).toMatchObject({ ok: true, dryRun: true, created: 9, errors: [] });
    expect(lines[0]).toBe('cd+++++++++ ./');
    expect(existsSync(join(base, 'missing'))).toBe(false);
  });

  it('a destination on another host is sent to (`<`); attribute changes and creations keep their letter', () => {
    const entry = (over: Partial<SourceEntry>): SourceEntry => ({ path: 'f', local: '/f', type: 'f', size: 5, mtimeMs: T, mode: 0o644, uid: 0, gid: 0, ...over });
    const remote = { path: 'f', type: 'f' as const, size: 3, mtimeMs: EARLIER, mode: 0o600, uid: 0, gid: 0 };
    const code = (change: Change, over: { remote?: boolean; checksum?: boolean } = {}) => itemCode(change, { checksum: false, remote: true, ...over });
    expect(code({ kind: 'create', path: 'f', source: entry({}) })).toBe('<f+++++++++');
    expect(code({ kind: 'update', path: 'f', source: entry({}), remote })).toBe('<f.stp.....');
    expect(code({ kind: 'update', path: 'f', source: entry({}), remote }, { remote: false })).toBe('>f.stp.....');
    expect(code({ kind: 'attrs', path: 'f', source: entry({ size: 3 }), remote })).toBe('.f..tp.....');
    expect(code({ kind: 'mkdir', path: 'd', source: entry({ type: 'd' }) })).toBe('cd+++++++++');
    expect(code({ kind: 'delete', path: 'f', remote, extraneous: true })).toBe('*deleting');
    // The entry replaced by one of another type is not itemized: the new entry's line says it.
    expect(code({ kind: 'delete', path: 'f', remote })).toBeUndefined();
  });
});
