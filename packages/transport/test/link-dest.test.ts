/**
 * --link-dest (link-dest.ts): new files hard-linked from a link-dest directory when it holds them as
 * the source has them, the rest sent; checked against rsync --link-dest on the same trees; the
 * request's checks, and the limits an agent puts on the directories a peer may name.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { ProtocolError } from '../src/errors.js';
import { decodeLinkDest, encodeLinkDest } from '../src/link-dest.js';
import { inProcessAgent } from '../src/local.js';
import { BASE_MTIME_MS, diffTrees, file, hasRsync, runSync, useTempDirs, writeTree } from './helpers/tree.js';

const tempDir = useTempDirs('deltacast-link-dest-');
const T = BASE_MTIME_MS;

/** A source, and yesterday's snapshot of it: same.txt as it is, changed.txt older, mode.txt with another mode. */
async function snapshots(): Promise<{ base: string; src: string; prev: string }> {
  const base = tempDir();
  const src = join(base, 'src');
  await writeTree(src, {
    'same.txt': file('unchanged\n', { mtimeMs: T }),
    'sub/same-deep.bin': file(Buffer.alloc(50_000, 3), { mtimeMs: T }),
    'changed.txt': file('today\n', { mtimeMs: T + 86_400_000 }),
    'mode.txt': file('same bytes\n', { mode: 0o600, mtimeMs: T }),
    'new.txt': file('new\n', { mtimeMs: T }),
  });
  const prev = join(base, 'prev');
  cpSync(src, prev, { recursive: true, preserveTimestamps: true });
  writeFileSync(join(prev, 'changed.txt'), 'yesterday\n');
  utimesSync(join(prev, 'changed.txt'), T / 1000, T / 1000);
  chmodSync(join(prev, 'mode.txt'), 0o644);
  writeFileSync(join(prev, 'new.txt'), 'not the same\n'); // same name, other size
  return { base, src, prev };
}

const inode = (path: string) => statSync(path).ino;

describe('--link-dest', () => {
  it('links the new files a link-dest directory holds as they are, sends the rest, and matches rsync', async () => {
    const { base, src, prev } = await snapshots();
    const dest = join(base, 'today');
    const summary = await runSync(`${src}/`, dest, { linkDest: ['../prev'] });
    expect(summary).toMatchObject({ ok: true, linked: 2, created: 3 });
    expect(await diffTrees(src, dest)).toEqual([]);
    expect(inode(join(dest, 'same.txt'))).toBe(inode(join(prev, 'same.txt')));
    expect(inode(join(dest, 'sub/same-deep.bin'))).toBe(inode(join(prev, 'sub/same-deep.bin')));
    for (const name of ['changed.txt', 'mode.txt', 'new.txt']) expect(inode(join(dest, name))).not.toBe(inode(join(prev, name)));
    // Yesterday's snapshot is as it was.
    expect(readFileSync(join(prev, 'changed.txt'), 'utf8')).toBe('yesterday\n');
    expect(statSync(join(prev, 'mode.txt')).mode & 0o777).toBe(0o644);

    if (hasRsync) {
      const theirs = join(base, 'rsync-today');
      expect(spawnSync('rsync', ['-a', '--link-dest=../prev', `${src}/`, `${theirs}/`]).status).toBe(0);
      for (const name of ['same.txt', 'sub/same-deep.bin', 'changed.txt', 'mode.txt', 'new.txt']) {
        expect(inode(join(theirs, name)) === inode(join(prev, name)), name).toBe(inode(join(dest, name)) === inode(join(prev, name)));
      }
    }
  });

  it('tries the directories in order, the first match winning; a missing one is passed over', async () => {
    const { base, src, prev } = await snapshots();
    const older = join(base, 'older');
    cpSync(prev, older, { recursive: true, preserveTimestamps: true });
    writeFileSync(join(older, 'changed.txt'), 'today\n');
    utimesSync(join(older, 'changed.txt'), (T + 86_400_000) / 1000, (T + 86_400_000) / 1000);
    const dest = join(base, 'today');
    const summary = await runSync(`${src}/`, dest, { linkDest: [join(base, 'missing'), '../prev', '../older'] });
    expect(summary).toMatchObject({ ok: true, linked: 3 });
    expect(inode(join(dest, 'same.txt'))).toBe(inode(join(prev, 'same.txt')));
    expect(inode(join(dest, 'changed.txt'))).toBe(inode(join(older, 'changed.txt')));
  });

  it('sends a new file that the directory holds in another version as a delta against that copy, leaving no partial', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    const old = Buffer.from(Array.from({ length: 400_000 }, (_, i) => (i * 7919) % 251));
    const edited = Buffer.from(old);
    edited.write('an edit in the middle', 200_000);
    await writeTree(src, { 'db.bin': file(edited, { mtimeMs: T + 86_400_000 }) });
    const prev = join(base, 'prev');
    await writeTree(prev, { 'db.bin': file(old, { mtimeMs: T }) });
    for (const option of [{ linkDest: ['../prev'] }, { copyDest: ['../prev'] }]) {
      const dest = join(base, `today-${Object.keys(option)[0]}`);
      const events: { type: string; literalBytes?: number; matchedBytes?: number }[] = [];
      const summary = await runSync(`${src}/`, dest, { ...option, onEvent: (e) => events.push(e) });
      expect(summary).toMatchObject({ ok: true, created: 1, linked: 0, copied: 0 });
      expect(summary.matchedBytes).toBeGreaterThan(390_000);
      expect(summary.literalBytes).toBeLessThan(10_000);
      expect(await diffTrees(src, dest)).toEqual([]);
      expect(readdirSync(dest)).toEqual(['db.bin']); // the basis copy is gone
      expect(readFileSync(join(prev, 'db.bin')).equals(old)).toBe(true);
    }
  });

  it('a dry run counts what it would link and makes nothing', async () => {
    const { base, src } = await snapshots();
    const dest = join(base, 'today');
    const summary = await runSync(`${src}/`, dest, { linkDest: ['../prev'], dryRun: true });
    expect(summary).toMatchObject({ ok: true, dryRun: true, linked: 2, created: 3 });
    expect(() => statSync(dest)).toThrow();
  });

  it("leaves a file the destination already has to the quick check (it is no new file)", async () => {
    const { base, src } = await snapshots();
    const dest = join(base, 'today');
    mkdirSync(dest);
    writeFileSync(join(dest, 'same.txt'), 'stale\n');
    const summary = await runSync(`${src}/`, dest, { linkDest: ['../prev'] });
    expect(summary).toMatchObject({ ok: true, linked: 1, updated: 1 });
    expect(readFileSync(join(dest, 'same.txt'), 'utf8')).toBe('unchanged\n');
  });
});

describe('--copy-dest and --compare-dest', () => {
  it('--copy-dest copies the matches (a file of its own, the source\'s mtime), sends the rest, and matches rsync', async () => {
    const { base, src, prev } = await snapshots();
    const dest = join(base, 'today');
    const summary = await runSync(`${src}/`, dest, { copyDest: ['../prev'] });
    expect(summary).toMatchObject({ ok: true, copied: 2, linked: 0, created: 3 });
    expect(await diffTrees(src, dest)).toEqual([]);
    expect(inode(join(dest, 'same.txt'))).not.toBe(inode(join(prev, 'same.txt')));
    expect(statSync(join(prev, 'same.txt')).nlink).toBe(1);
    if (hasRsync) {
      const theirs = join(base, 'rsync-today');
      expect(spawnSync('rsync', ['-a', '--copy-dest=../prev', `${src}/`, `${theirs}/`]).status).toBe(0);
      // The same files (rsync leaves a directory's time alone within the second: times are checked against the source above).
      const files = (root: string) => spawnSync('find', ['.', '-type', 'f'], { cwd: root, encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
      expect(files(dest)).toEqual(files(theirs));
      for (const name of files(dest)) expect(readFileSync(join(dest, name)).equals(readFileSync(join(theirs, name)))).toBe(true);
    }
  });

  it('--compare-dest leaves out what the directory holds as it is, as rsync does', async () => {
    const { base, src } = await snapshots();
    const dest = join(base, 'diff');
    const summary = await runSync(`${src}/`, dest, { compareDest: ['../prev'] });
    expect(summary).toMatchObject({ ok: true, skipped: 2, created: 3, linked: 0, copied: 0 });
    const ours = spawnSync('find', ['.', '-type', 'f'], { cwd: dest, encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort();
    expect(ours).toEqual(['./changed.txt', './mode.txt', './new.txt']);
    if (hasRsync) {
      const theirs = join(base, 'rsync-diff');
      expect(spawnSync('rsync', ['-a', '--compare-dest=../prev', `${src}/`, `${theirs}/`]).status).toBe(0);
      expect(spawnSync('find', ['.', '-type', 'f'], { cwd: theirs, encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort()).toEqual(ours);
    }
  });

  it('takes one kind a run (INVALID_OPTION), as rsync', async () => {
    const { base, src } = await snapshots();
    await expect(runSync(`${src}/`, join(base, 'x'), { linkDest: ['../prev'], compareDest: ['../prev'] })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('the link-dest request', () => {
  const entry = ['a.txt', 3, T, 0o644, 0, 0];

  it('is checked field by field', () => {
    expect(decodeLinkDest({ t: 'link-dest', dirs: ['../prev'], f: encodeLinkDest([{ path: 'a.txt', size: 3, mtime: T, mode: 0o644, uid: 0, gid: 0 }]) })).toEqual({
      dirs: ['../prev'],
      how: 'link',
      entries: [{ path: 'a.txt', size: 3, mtime: T, mode: 0o644, uid: 0, gid: 0 }],
    });
    expect(decodeLinkDest({ t: 'link-dest', dirs: ['d'], how: 'copy', f: [entry] }).how).toBe('copy');
    expect(() => decodeLinkDest({ t: 'link-dest', dirs: ['d'], how: 'move', f: [entry] })).toThrow(ProtocolError);
    for (const bad of [
      { dirs: [], f: [entry] },
      { dirs: Array.from({ length: 21 }, () => 'd'), f: [entry] },
      { dirs: [''], f: [entry] },
      { dirs: ['d'], f: [] },
      { dirs: ['d'], f: [['a.txt', -1, T, 0o644, 0, 0]] },
      { dirs: ['d'], f: [['a.txt', 3, T, 0o10000, 0, 0]] },
      { dirs: ['d'], f: [['', 3, T, 0o644, 0, 0]] },
      { dirs: ['d'], f: [['a.txt', 3, T, 0o644, 0]] },
    ]) {
      expect(() => decodeLinkDest({ t: 'link-dest', ...bad })).toThrow(ProtocolError);
    }
  });

  it('an agent with --root refuses a directory outside it; one serving a pull, any it was not given', async () => {
    const { base, src, prev } = await snapshots();
    const served = join(base, 'served');
    mkdirSync(join(served, 'today'), { recursive: true });
    const limited = inProcessAgent({ allowedRoot: served });
    const client = await AgentClient.connect(limited, { root: 'today' });
    await expect(client.linkDest(['../../prev'], 'link', encodeLinkDest([{ path: 'same.txt', size: 10, mtime: T, mode: 0o644, uid: 0, gid: 0 }]), 1, true)).rejects.toMatchObject({ code: 'PATH_ESCAPE' });
    await client.close();

    const dest = join(base, 'pulled');
    const pulling = inProcessAgent({ root: dest, linkDestDirs: ['../prev'] });
    const peer = await AgentClient.connect(pulling, { root: '.' });
    const one = encodeLinkDest([{ path: 'same.txt', size: 10, mtime: T, mode: 0o644, uid: 0, gid: 0 }]);
    await expect(peer.linkDest([src], 'link', one, 1, true)).rejects.toMatchObject({ code: 'PATH_ESCAPE' });
    expect((await peer.linkDest(['../prev'], 'link', one, 1, true))[0]).toEqual({ ok: true, size: 1 });
    await peer.close();
    expect(statSync(join(prev, 'same.txt')).nlink).toBe(1);
  });
});
