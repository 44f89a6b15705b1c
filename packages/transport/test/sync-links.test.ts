/**
 * Symlinks in the source as rsync's -L, --copy-unsafe-links and --safe-links treat them (tree.ts
 * ScanOptions.links), and what the scan leaves out reported (skip events, failed paths); checked
 * against rsync's own result where rsync is installed.
 */
import { spawnSync } from 'node:child_process';
import { lutimesSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../src/events.js';
import { sync, type TransferOptions } from '../src/sync.js';
import { scanSource, unsafeSymlink } from '../src/tree.js';
import { BASE_MTIME_MS, diffTrees, hasRsync, snapshotTree, useTempDirs } from './helpers/tree.js';

const temp = useTempDirs('deltacast-links-');

describe('unsafeSymlink, as rsync counts it', () => {
  it.each([
    ['x', 'a', 0, false],
    ['../x', 'a', 0, true],
    ['../x', 'd/a', 0, false],
    ['../../x', 'd/a', 0, true],
    ['d/../../x', 'a', 0, true],
    ['./d/./x', 'a', 0, false],
    ['/etc/passwd', 'd/a', 0, true],
    ['', 'a', 0, true],
    // The source's own name leads the paths: "src/a" is at the top.
    ['../x', 'src/a', 1, true],
    ['x/..', 'src/a', 1, false],
  ])('%j from %j (top depth %d): unsafe %s', (target, path, topDepth, unsafe) => {
    expect(unsafeSymlink(target, path, topDepth)).toBe(unsafe);
  });
});

/** base/src with: real/f, rel -> real, file-link -> real/f, abs -> base/outside, up -> ../outside, dangling. */
function tree(): { base: string; src: string } {
  const base = temp();
  const src = join(base, 'src');
  mkdirSync(join(src, 'real'), { recursive: true });
  writeFileSync(join(src, 'real/f'), 'inside\n');
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(base, 'outside/o'), 'outside\n');
  symlinkSync('real', join(src, 'rel'));
  symlinkSync('real/f', join(src, 'file-link'));
  symlinkSync(join(base, 'outside'), join(src, 'abs'));
  symlinkSync('../outside', join(src, 'up'));
  // Times in the past, set on everything: rsync sets a directory's or a link's time only where it
  // differs by a second or more, so natural ones made just now would differ from it by the run.
  const t = BASE_MTIME_MS / 1000;
  for (const path of ['real/f', 'rel', 'file-link', 'abs', 'up']) lutimesSync(join(src, path), t, t);
  for (const path of [join(src, 'real'), src, join(base, 'outside/o'), join(base, 'outside')]) utimesSync(path, t, t);
  return { base, src };
}

async function run(links: TransferOptions['links'], rsyncFlag: string | undefined) {
  const { base, src } = tree();
  const dst = join(base, 'dst');
  const events: SyncEvent[] = [];
  const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', links, onEvent: (e) => events.push(e) });
  if (hasRsync) {
    const expected = join(base, 'rsync-dst');
    const made = spawnSync('rsync', ['-a', ...(rsyncFlag ? [rsyncFlag] : []), `${src}/`, `${expected}/`], { encoding: 'utf8' });
    expect(made.status).toBe(0);
    expect(await diffTrees(expected, dst)).toEqual([]);
  }
  return { summary, events, entries: await snapshotTree(dst), src, base };
}

describe('symlinks in the source', () => {
  it('keep (default): every link is sent as a link', async () => {
    const { summary, entries } = await run(undefined, undefined);
    expect(summary.errors).toEqual([]);
    expect(entries.get('abs')).toMatchObject({ type: 'l' });
    expect(entries.get('rel')).toMatchObject({ type: 'l', linkTarget: 'real' });
  });

  it('copy (-L): what they point to, directories walked', async () => {
    const { summary, entries } = await run('copy', '-L');
    expect(summary.errors).toEqual([]);
    expect(entries.get('rel')?.type).toBe('d');
    expect(entries.get('rel/f')?.type).toBe('f');
    expect(entries.get('file-link')?.type).toBe('f');
    expect(entries.get('abs/o')?.type).toBe('f');
    expect(entries.get('up/o')?.type).toBe('f');
  });

  it('copy-unsafe (--copy-unsafe-links): only links that lead outside', async () => {
    const { entries } = await run('copy-unsafe', '--copy-unsafe-links');
    expect(entries.get('rel')).toMatchObject({ type: 'l', linkTarget: 'real' });
    expect(entries.get('abs')?.type).toBe('d');
    expect(entries.get('up/o')?.type).toBe('f');
  });

  it('safe (--safe-links): links that lead outside are left out and reported as skipped', async () => {
    const { entries, events, summary } = await run('safe', '--safe-links');
    expect(entries.has('abs')).toBe(false);
    expect(entries.has('up')).toBe(false);
    expect(entries.get('rel')?.type).toBe('l');
    expect(summary.ok).toBe(true);
    const skips = events.filter((e) => e.type === 'skip').map((e) => (e as { path: string }).path);
    expect(skips.sort()).toEqual(['abs', 'up']);
  });

  it('-L: a dangling link fails its path (NO_REFERENT) and a link to an enclosing directory is not walked (SYMLINK_LOOP); the rest arrives', async () => {
    const { base, src } = tree();
    symlinkSync('nowhere', join(src, 'dangling'));
    symlinkSync('..', join(src, 'real', 'loop'));
    const dst = join(base, 'dst');
    const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', links: 'copy' });
    expect(summary.ok).toBe(false);
    expect(summary.errors.map((e) => [e.path, e.code]).sort()).toEqual([
      ['dangling', 'NO_REFERENT'],
      ['real/loop', 'SYMLINK_LOOP'],
      ['rel/loop', 'SYMLINK_LOOP'],
    ]);
    const entries = await snapshotTree(dst);
    expect(entries.get('real/f')?.type).toBe('f');
    expect(entries.get('abs/o')?.type).toBe('f');
    expect(entries.has('dangling')).toBe(false);
  });

  it('a fifo is left out and reported as skipped, not silently', async () => {
    const { base, src } = tree();
    const made = spawnSync('mkfifo', [join(src, 'pipe')]);
    if (made.status !== 0) return; // no mkfifo here: nothing to check
    const tree2 = await scanSource(`${src}/`);
    expect(tree2.skipped).toEqual([{ path: 'pipe', reason: 'not a regular file, directory or symlink' }]);
    const events: SyncEvent[] = [];
    await sync({ source: `${src}/`, destination: join(base, 'dst'), localAgent: 'in-process', onEvent: (e) => events.push(e) });
    expect(events.filter((e) => e.type === 'skip')).toEqual([{ type: 'skip', destination: join(base, 'dst'), path: 'pipe', reason: 'not a regular file, directory or symlink' }]);
  });
});
