/**
 * -x, --one-file-system (tree.ts ScanOptions.oneFileSystem): a mount point inside the source is sent
 * as an empty directory whose contents at the destination are kept, or with -xx left out. The plan's
 * part is checked directly; the scan's on a tmpfs mounted inside the source, where this process may
 * mount one (as root, with the capability), against rsync -ax where rsync is installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoteEntry } from '../src/agent-client.js';
import { PathFilter } from '../src/filter.js';
import { planChanges } from '../src/plan.js';
import { sync } from '../src/sync.js';
import { scanSource, type SourceEntry, type SourceTree } from '../src/tree.js';
import { BASE_MTIME_MS, diffTrees, hasRsync, snapshotTree, useTempDirs } from './helpers/tree.js';

const temp = useTempDirs('deltacast-onefs-');
const T = BASE_MTIME_MS;

describe('the plan keeps what lies under a directory listed without contents', () => {
  it('extraneous entries under it are not deleted; elsewhere they are', () => {
    const entry = (path: string, type: 'f' | 'd', extra: Partial<SourceEntry> = {}): SourceEntry => ({ path, local: `/src/${path}`, type, size: 0, mtimeMs: T, mode: 0o755, uid: 0, gid: 0, ...extra });
    const tree: SourceTree = { base: '/src', root: entry('', 'd'), entries: [entry('m', 'd', { noContent: true }), entry('a', 'f')], skipped: [], errors: [] };
    const remote = (path: string, type: 'f' | 'd'): RemoteEntry => ({ path, type, size: 0, mtimeMs: T, mode: 0o755, uid: 0, gid: 0 });
    const plan = planChanges(tree, [remote('m', 'd'), remote('m/old', 'f'), remote('m/sub', 'd'), remote('stale', 'f')], new PathFilter([]), { delete: true });
    expect(plan.deletes.map((c) => c.path)).toEqual(['stale']);
  });
});

/** Whether a tmpfs can be mounted here (root with CAP_SYS_ADMIN); checked once. */
function canMount(): boolean {
  const probe = temp();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' }).status === 0;
  if (mounted) spawnSync('umount', [probe]);
  return mounted;
}
const mountable = process.platform === 'linux' && process.getuid?.() === 0 && canMount();

describe.skipIf(!mountable)(`a mount point in the source ${mountable ? '' : '(skipped: this process cannot mount a tmpfs: not root, or no CAP_SYS_ADMIN)'}`, () => {
  let src: string;
  const mounts: string[] = [];

  beforeAll(() => {
    src = join(temp(), 'src');
    mkdirSync(join(src, 'mnt'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a\n');
    const status = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(src, 'mnt')]).status;
    expect(status).toBe(0);
    mounts.push(join(src, 'mnt'));
    writeFileSync(join(src, 'mnt/inside.txt'), 'on another file system\n');
    // Times in the past: rsync sets a directory's time only where it differs by a second or more.
    for (const path of ['mnt/inside.txt', 'a.txt', 'mnt', '']) utimesSync(join(src, path), T / 1000, T / 1000);
  });

  afterAll(() => {
    for (const m of mounts) spawnSync('umount', [m]);
  });

  /** A destination holding mnt/old.txt and stale.txt. */
  function destination(): string {
    const dst = join(temp(), 'dst');
    mkdirSync(join(dst, 'mnt'), { recursive: true });
    writeFileSync(join(dst, 'mnt/old.txt'), 'kept\n');
    writeFileSync(join(dst, 'stale.txt'), 'deleted\n');
    for (const path of ['mnt/old.txt', 'stale.txt', 'mnt', '']) utimesSync(join(dst, path), (T - 5000) / 1000, (T - 5000) / 1000);
    return dst;
  }

  it('-x: the mount point arrives empty, what the destination has under it stays; the same as rsync -ax', async () => {
    const tree = await scanSource(`${src}/`, new PathFilter([]), { oneFileSystem: 1 });
    expect(tree.entries.map((e) => [e.path, e.noContent ?? false])).toEqual([
      ['a.txt', false],
      ['mnt', true],
    ]);
    const dst = destination();
    const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, oneFileSystem: 1 });
    expect(summary.errors).toEqual([]);
    const entries = await snapshotTree(dst);
    expect(entries.has('mnt/inside.txt')).toBe(false);
    expect(entries.has('mnt/old.txt')).toBe(true);
    expect(entries.has('stale.txt')).toBe(false);
    if (hasRsync) {
      const expected = destination();
      expect(spawnSync('rsync', ['-ax', '--delete', `${src}/`, `${expected}/`]).status).toBe(0);
      expect(await diffTrees(expected, dst)).toEqual([]);
    }
  });

  it('-xx: the mount point is left out; without -x it is crossed', async () => {
    const omitted = await scanSource(`${src}/`, new PathFilter([]), { oneFileSystem: 2 });
    expect(omitted.entries.map((e) => e.path)).toEqual(['a.txt']);
    const crossed = await scanSource(`${src}/`);
    expect(crossed.entries.map((e) => e.path)).toEqual(['a.txt', 'mnt', 'mnt/inside.txt']);
  });
});
