/**
 * --backup, --backup-dir and --suffix (src/backup.ts): what a run replaces or deletes is kept, and
 * backups survive later runs with --delete; checked against `rsync -a --delete -b` where rsync is
 * installed. Small files (batches) and a large one (a put of its own) both go through the agent.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupPath, checkBackup, isBackup } from '../src/backup.js';
import { PassThrough } from 'node:stream';
import { PathFilter } from '../src/filter.js';
import { PROTOCOL_VERSION } from '../src/messages.js';
import { sync, syncTree } from '../src/sync.js';
import { scanSource } from '../src/tree.js';
import { FrameSession } from '../src/wire.js';
import { fanout } from '../../fanout/src/fanout.js';
import { BASE_MTIME_MS, diffTrees, dir, file, hasRsync, link, pseudoRandom, snapshotTree, useTempDirs, writeTree } from './helpers/tree.js';

const temp = useTempDirs('deltacast-backup-');
const T = BASE_MTIME_MS;
const OLD = T - 3_600_000;
const BIG = 300 * 1024; // over the batch limit: put alone

describe('backup options', () => {
  it('suffix ~ by default, none with a directory; paths and protection', () => {
    expect(checkBackup({})).toEqual({ dir: undefined, suffix: '~' });
    expect(checkBackup({ dir: 'bak/' })).toEqual({ dir: 'bak', suffix: '' });
    expect(backupPath(checkBackup({}), 'd/f')).toBe('d/f~');
    expect(backupPath(checkBackup({ dir: 'bak', suffix: '.1' }), 'd/f')).toBe('bak/d/f.1');
    expect(isBackup(checkBackup({}), 'd/f~')).toBe(true);
    expect(isBackup(checkBackup({}), 'd/f')).toBe(false);
    expect(isBackup(checkBackup({ dir: 'bak' }), 'bak')).toBe(true);
    expect(isBackup(checkBackup({ dir: 'bak' }), 'bak/x')).toBe(true);
    expect(isBackup(checkBackup({ dir: 'bak' }), 'bakery')).toBe(false);
  });

  it.each([
    [{ dir: '../outside' }, 'PATH_ESCAPE'],
    [{ dir: '/abs' }, 'PATH_ABSOLUTE'],
    [{ suffix: '' }, 'INVALID_OPTION'],
    [{ suffix: 'a/b' }, 'INVALID_OPTION'],
  ])('refuses %j (%s)', (options, code) => {
    expect(() => checkBackup(options)).toThrow(expect.objectContaining({ code }));
  });
});

const SOURCE = {
  'small.txt': file('new small', { mtimeMs: T }),
  'big.bin': file(pseudoRandom(BIG, 1), { mtimeMs: T }),
  'd/inner.txt': file('new inner', { mtimeMs: T }),
  d: dir({ mtimeMs: T }),
  link: link('small.txt', { mtimeMs: T }),
  'same.txt': file('unchanged', { mtimeMs: T }),
};
const DESTINATION = {
  'small.txt': file('old small', { mtimeMs: OLD }),
  'big.bin': file(pseudoRandom(BIG, 2), { mtimeMs: OLD }),
  'd/inner.txt': file('old inner', { mtimeMs: OLD }),
  d: dir({ mtimeMs: OLD }),
  link: link('old-target', { mtimeMs: OLD }),
  'same.txt': file('unchanged', { mtimeMs: T }),
  'extra.txt': file('deleted by the run', { mtimeMs: OLD }),
  'gone/x.txt': file('in a deleted directory', { mtimeMs: OLD }),
  gone: dir({ mtimeMs: OLD }),
};

async function trees(): Promise<{ base: string; src: string; dst: string }> {
  const base = temp();
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  await writeTree(src, SOURCE);
  await writeTree(dst, DESTINATION);
  return { base, src, dst };
}

/** The destination as `rsync -a --delete FLAGS` leaves it (undefined without rsync). */
async function rsyncResult(base: string, src: string, flags: string[]): Promise<string | undefined> {
  if (!hasRsync) return undefined;
  const dst = join(base, 'rsync-dst');
  await writeTree(dst, DESTINATION);
  const run = spawnSync('rsync', ['-a', '--delete', ...flags, `${src}/`, `${dst}/`], { encoding: 'utf8' });
  expect([0, 23]).toContain(run.status); // 23: rsync, too, cannot delete a directory that keeps a backup
  return dst;
}

describe('sync with backups', () => {
  it('-b: replaced and deleted files are kept as PATH~, beside them; the same as rsync -b', async () => {
    const { base, src, dst } = await trees();
    const expected = await rsyncResult(base, src, ['-b']);
    const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, backup: {} });
    expect(summary.errors).toEqual([]);
    const text = (path: string) => readFileSync(join(dst, path), 'utf8');
    expect(text('small.txt~')).toBe('old small');
    expect(readFileSync(join(dst, 'big.bin~')).equals(Buffer.from(pseudoRandom(BIG, 2)))).toBe(true);
    expect(text('d/inner.txt~')).toBe('old inner');
    expect(text('extra.txt~')).toBe('deleted by the run');
    expect(text('gone/x.txt~')).toBe('in a deleted directory');
    const entries = await snapshotTree(dst);
    expect(entries.get('link~')).toMatchObject({ type: 'l', linkTarget: 'old-target' });
    expect(entries.has('same.txt~')).toBe(false);
    expect(entries.has('extra.txt')).toBe(false);
    if (expected) {
      // Directory times aside: rsync leaves a directory it made a backup in with the time of that
      // change; deltacast sets directory times last, to the source's.
      const dirs = new Set(['""', ...[...entries].filter(([, e]) => e.type === 'd').map(([p]) => JSON.stringify(p))]);
      const differences = (await diffTrees(expected, dst)).filter((d) => !(dirs.has(d.slice(0, d.indexOf(':'))) && d.includes(': mtimeMs ')));
      expect(differences).toEqual([]);
    }

    // Backups are protected from --delete, and the next change replaces a backup.
    await writeTree(src, { 'small.txt': file('newer small', { mtimeMs: T + 1000 }) });
    const again = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, backup: {} });
    expect(again.errors).toEqual([]);
    expect(text('small.txt~')).toBe('new small');
    expect(text('extra.txt~')).toBe('deleted by the run');
  });

  it('--backup-dir: kept under the directory with their paths; the same as rsync --backup-dir', async () => {
    const { base, src, dst } = await trees();
    const expected = await rsyncResult(base, src, ['--backup-dir=bak']);
    const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, backup: { dir: 'bak' } });
    expect(summary.errors).toEqual([]);
    const text = (path: string) => readFileSync(join(dst, path), 'utf8');
    expect(text('bak/small.txt')).toBe('old small');
    expect(text('bak/d/inner.txt')).toBe('old inner');
    expect(text('bak/gone/x.txt')).toBe('in a deleted directory');
    const entries = await snapshotTree(dst);
    expect(entries.has('gone')).toBe(false);
    if (expected) {
      // rsync makes the backup directories with its own times; compare what they hold.
      const ours = [...entries.entries()].filter(([p]) => !p.startsWith('bak')).map(([p, e]) => [p, e.type]);
      const theirs = [...(await snapshotTree(expected)).entries()].filter(([p]) => !p.startsWith('bak')).map(([p, e]) => [p, e.type]);
      expect(ours).toEqual(theirs);
      for (const path of ['bak/small.txt', 'bak/d/inner.txt', 'bak/gone/x.txt', 'bak/extra.txt']) {
        expect(readFileSync(join(dst, path)).equals(readFileSync(join(expected, path)))).toBe(true);
      }
    }
    // The backup directory is never deleted as extraneous.
    const again = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, backup: { dir: 'bak' } });
    expect(again.deleted).toBe(0);
    expect(text('bak/extra.txt')).toBe('deleted by the run');
  });

  it('fails a destination whose agent keeps no backups (UNSUPPORTED) rather than change it unkept', async () => {
    const { src, dst } = await trees();
    // An agent of an earlier version: its hello lists no `backup`.
    const toAgent = new PassThrough();
    const fromAgent = new PassThrough();
    const session = new FrameSession({ readable: toAgent, writable: fromAgent });
    const asked: string[] = [];
    session.onFrame((f) => {
      asked.push(f.header.t);
      if (f.header.t === 'hello') void session.send({ t: 'hello', v: PROTOCOL_VERSION, caps: ['native-delta', 'batch'], root: dst, version: 'older', uid: 0 });
    });
    const target = { name: 'older:/srv', streams: { readable: fromAgent, writable: toAgent, close: () => fromAgent.end() }, root: dst };
    await expect(syncTree(() => scanSource(`${src}/`), target, new PathFilter([]), { backup: {} })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    expect(asked).toEqual(['hello']);
  });

  it('is refused with staged commits and releases, before anything is touched', async () => {
    const { src, dst } = await trees();
    for (const staged of [{ atomic: 'tree' as const }, { commit: 'all-or-none' as const }, { release: true }]) {
      await expect(fanout({ source: `${src}/`, destinations: [dst], localAgent: 'in-process', backup: {}, ...staged })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
    expect(readFileSync(join(dst, 'small.txt'), 'utf8')).toBe('old small');
  });
});
