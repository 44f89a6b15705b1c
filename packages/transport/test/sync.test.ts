import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, lchown, lstat, mkdir, readFile, rename, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SyncEvent } from '../src/events.js';
import { PathFilter } from '../src/filter.js';
import { childProcessAgent } from '../src/local.js';
import { syncTree } from '../src/sync.js';
import { scanSource } from '../src/tree.js';
import {
  BASE_MTIME_MS,
  diffTrees,
  dir,
  file,
  hasRsync,
  link,
  pseudoRandom,
  rsyncDifferences,
  runSync,
  snapshotTree,
  useTempDirs,
  writeTree,
  type AgentKind,
  type TreeSpec,
} from './helpers/tree.js';

const MiB = 1024 * 1024;
const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status === 0;
const tempDir = useTempDirs();

/** rsync's view of the two trees; skipped (with a note, once) where rsync is missing. */
function expectRsyncAgrees(src: string, dst: string): void {
  if (!hasRsync) {
    console.warn('rsync is not installed: skipping the `rsync -ani --delete` cross-check');
    return;
  }
  expect(rsyncDifferences(src, dst)).toBe('');
}

const quiet = {
  created: 0,
  updated: 0,
  deleted: 0,
  directories: 0,
  symlinks: 0,
  attributes: 0,
  literalBytes: 0,
  matchedBytes: 0,
  sentBytes: 0,
  totalBytes: 0,
};

function siteSpec(): TreeSpec {
  return {
    'empty.txt': file(''),
    // A half-millisecond mtime: a sync keeps mtimes to the millisecond.
    'hello.txt': file('hello\n', { mode: 0o600, mtimeMs: BASE_MTIME_MS + 250.5 }),
    'bin/run.sh': file('#!/bin/sh\necho hi\n', { mode: 0o755 }),
    'data/medium.bin': file(pseudoRandom(300_000, 2), { mode: 0o640 }),
    'data/big.bin': file(pseudoRandom(2 * MiB, 3)),
    'data/nested/deep/leaf.txt': file('leaf'),
    'empty-dir': dir({ mode: 0o750 }),
    private: dir({ mode: 0o700, mtimeMs: BASE_MTIME_MS - 86_400_000 }),
    'private/secret': file('s', { mode: 0o400 }),
    'links/rel': link('../hello.txt'),
    'links/dangling': link('nowhere'),
    'links/abs': link('/etc/hostname'),
    'links/dir': link('../data', { mtimeMs: BASE_MTIME_MS + 5000 }),
  };
}

describe.each<AgentKind>(['in-process', 'child'])('sync to a %s agent', (kind) => {
  let src: string;
  let dst: string;

  beforeAll(async () => {
    src = join(tempDir(), 'site');
    dst = join(tempDir(), 'missing/dst');
    await writeTree(src, siteSpec());
  });

  it('copies everything the first time: content, modes, mtimes, symlinks as links, empty dirs', async () => {
    const summary = await runSync(`${src}/`, dst, {}, kind);
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, dryRun: false, created: 7, updated: 0, deleted: 0, directories: 7, symlinks: 4, unchanged: 0 });
    expect(summary.totalBytes).toBe(6 + 18 + 300_000 + 2 * MiB + 4 + 1);
    expect(summary.literalBytes).toBe(summary.totalBytes);
    expect(await diffTrees(src, dst)).toEqual([]);
    expect((await stat(join(dst, 'hello.txt'))).mtimeMs).toBeCloseTo(BASE_MTIME_MS + 250.5, 1);
    expectRsyncAgrees(src, dst);
  });

  it('changes nothing and sends no data the second time', async () => {
    const events: SyncEvent[] = [];
    const summary = await runSync(`${src}/`, dst, { delete: true, onEvent: (e) => events.push(e) }, kind);
    expect(summary).toMatchObject({ ok: true, ...quiet, unchanged: 11 });
    expect(events.map((e) => e.type)).toEqual(['start', 'summary']);
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('after edits, renames and deletions, makes the destination identical again, sending a small edit as a delta', async () => {
    const big = await readFile(join(src, 'data/big.bin'));
    big.set(new TextEncoder().encode('a small edit in the middle of a big file'), MiB);
    await writeFile(join(src, 'data/big.bin'), big);
    await rename(join(src, 'data/medium.bin'), join(src, 'data/medium-renamed.bin'));
    await unlink(join(src, 'hello.txt'));
    await rm(join(src, 'data/nested'), { recursive: true });
    await chmod(join(src, 'bin/run.sh'), 0o700);
    await writeTree(src, { 'new/file.txt': file('new file') });
    await unlink(join(src, 'links/rel'));
    await symlink('../empty.txt', join(src, 'links/rel'));

    const events: SyncEvent[] = [];
    const summary = await runSync(`${src}/`, dst, { delete: true, onEvent: (e) => events.push(e) }, kind);
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, created: 2, updated: 1, deleted: 3, directories: 1, symlinks: 1, attributes: 1 });
    expect(await diffTrees(src, dst)).toEqual([]);
    expectRsyncAgrees(src, dst);

    const bigFile = events.find((e) => e.type === 'file' && e.path === 'data/big.bin');
    expect(bigFile).toMatchObject({ kind: 'update', size: 2 * MiB });
    if (bigFile?.type !== 'file') throw new Error('no file event for data/big.bin');
    expect(bigFile.matchedBytes).toBeGreaterThan(2 * MiB - 64 * 1024);
    expect(bigFile.literalBytes).toBeLessThan(64 * 1024);
    expect(bigFile.sentBytes).toBeLessThan(64 * 1024);
    const deletes = events.filter((e) => e.type === 'item' && e.kind === 'delete').map((e) => (e as { path: string }).path);
    // data/nested goes with what is under it, each itemized.
    expect(deletes.sort()).toEqual(['data/medium.bin', 'data/nested', 'data/nested/deep', 'data/nested/deep/leaf.txt', 'hello.txt']);
  });
});

describe('sync', () => {
  it('sends "dir" as dir itself and "dir/" as its contents, deleting only within what is sent', async () => {
    const src = join(tempDir(), 'site');
    await writeTree(src, { 'index.html': file('<p>hi</p>'), 'css/site.css': file('p {}') });
    const dst = tempDir();
    await writeTree(dst, { other: file('not ours'), 'site/extra': file('stale') });

    const itself = await runSync(src, dst, { delete: true });
    expect(itself).toMatchObject({ ok: true, created: 2, deleted: 1 });
    expect(await diffTrees(src, join(dst, 'site'))).toEqual([]);
    expect(await readFile(join(dst, 'other'), 'utf8')).toBe('not ours');

    const contents = await runSync(`${src}/`, dst, { delete: true });
    expect(contents).toMatchObject({ ok: true, created: 2, deleted: 2 });
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('sends a single file', async () => {
    const src = tempDir();
    await writeTree(src, { 'one.txt': file('one', { mode: 0o604 }), 'two.txt': file('two') });
    const dst = tempDir();
    await writeTree(dst, { stale: file('x') });
    expect(await runSync(join(src, 'one.txt'), dst, { delete: true })).toMatchObject({ ok: true, created: 1, deleted: 0 });
    const snap = await snapshotTree(dst);
    expect([...snap.keys()].sort()).toEqual(['one.txt', 'stale']);
    expect(snap.get('one.txt')).toMatchObject({ mode: 0o604, mtimeMs: BASE_MTIME_MS });
  });

  it('neither copies nor deletes excluded paths (--exclude, --exclude-from, first match wins)', async () => {
    const root = tempDir();
    const src = join(root, 'src');
    await writeTree(src, {
      'main.txt': file('main'),
      'a.log': file('log'),
      'sub/b.log': file('log'),
      'keep.tmp': file('kept'),
      'x.tmp': file('dropped'),
      'cache/c': file('cache'),
    });
    const rules = join(root, 'rules');
    await writeFile(rules, '# temp files but one\n+ keep.tmp\n*.tmp\n');
    const dst = join(root, 'dst');
    await writeTree(dst, { 'old.log': file('old log'), 'cache/stale': file('stale cache'), 'gone.txt': file('gone') });

    const summary = await runSync(`${src}/`, dst, {
      delete: true,
      filters: [
        { action: 'exclude', pattern: '*.log' },
        { action: 'exclude', pattern: 'cache/' },
      ],
      excludeFrom: [rules],
    });
    expect(summary).toMatchObject({ ok: true, created: 2, deleted: 1 });
    const paths = [...(await snapshotTree(dst)).keys()].sort();
    expect(paths).toEqual(['cache', 'cache/stale', 'keep.tmp', 'main.txt', 'old.log', 'sub']);
  });

  it('with checksum, catches a same-size, same-mtime change that the quick check misses', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { 'f.txt': file('aaaa'), 'g.txt': file('same') });
    await runSync(`${src}/`, dst);
    await writeFile(join(src, 'f.txt'), 'bbbb');
    await utimes(join(src, 'f.txt'), BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);

    expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, updated: 0, unchanged: 2 });
    expect(await readFile(join(dst, 'f.txt'), 'utf8')).toBe('aaaa');

    expect(await runSync(`${src}/`, dst, { checksum: true })).toMatchObject({ ok: true, updated: 1, unchanged: 1 });
    expect(await readFile(join(dst, 'f.txt'), 'utf8')).toBe('bbbb');
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('with dryRun, reports the plan and changes nothing', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { 'keep.txt': file('keep'), 'edit.txt': file('v1'), 'drop.txt': file('drop'), 'sub/x': file('x') });
    await runSync(`${src}/`, dst);
    await writeTree(src, { 'edit.txt': file('v2 longer', { mtimeMs: BASE_MTIME_MS + 1000 }), 'new/n.txt': file('n') });
    await unlink(join(src, 'drop.txt'));
    await chmod(join(src, 'keep.txt'), 0o600);
    const before = await snapshotTree(dst, { includeRoot: true });

    const events: SyncEvent[] = [];
    const summary = await runSync(`${src}/`, dst, { delete: true, dryRun: true, onEvent: (e) => events.push(e) });
    expect(summary).toMatchObject({ ok: true, dryRun: true, created: 1, updated: 1, deleted: 1, directories: 1, attributes: 1, sentBytes: 0 });
    // Directories' own attributes (the root's mtime, as the second of the edits decides) left out.
    const items = events.flatMap((e) => (e.type === 'item' && !(e.kind === 'attrs' && e.entryType === 'd') ? [`${e.kind} ${e.path}`] : []));
    expect(items.sort()).toEqual(['attrs keep.txt', 'create new/n.txt', 'delete drop.txt', 'mkdir new', 'update edit.txt']);
    expect(events[0]).toMatchObject({ type: 'start', files: 2, dryRun: true });
    expect(await snapshotTree(dst, { includeRoot: true })).toEqual(before);
  });

  it('with compress, gives the same tree and sends fewer bytes for compressible data', async () => {
    const src = tempDir();
    const dst = tempDir();
    const text = 'the quick brown fox jumps over the lazy dog\n'.repeat(25_000);
    await writeTree(src, { 'text.txt': file(text), 'random.bin': file(pseudoRandom(100_000, 4)) });
    const first = await runSync(`${src}/`, dst, { compress: true });
    expect(first).toMatchObject({ ok: true, created: 2 });
    expect(first.sentBytes).toBeLessThan(text.length / 10 + 110_000);
    expect(await diffTrees(src, dst)).toEqual([]);

    await writeTree(src, { 'text.txt': file(`${text}one more line\n`, { mtimeMs: BASE_MTIME_MS + 1000 }) });
    const second = await runSync(`${src}/`, dst, { compress: true });
    expect(second).toMatchObject({ ok: true, updated: 1 });
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('replaces entries whose type changed: file -> dir, dir -> symlink, symlink -> file, dir -> file', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { x: file('x'), 'y/inner': file('i'), z: link('x'), 'w/deep/er': file('e') });
    await runSync(`${src}/`, dst);
    await rm(join(src, 'x'));
    await rm(join(src, 'y'), { recursive: true });
    await rm(join(src, 'z'));
    await rm(join(src, 'w'), { recursive: true });
    await writeTree(src, { 'x/child': file('c'), y: link('x'), z: file('now a file'), w: file('w') });

    const summary = await runSync(`${src}/`, dst);
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, deleted: 4 });
    expect(await diffTrees(src, dst)).toEqual([]);
    expectRsyncAgrees(src, dst);
  });

  it.skipIf(process.getuid?.() !== 0)('with owner (as root), keeps uid and gid; without it, files belong to the agent user', async () => {
    const src = tempDir();
    await writeTree(src, { 'owned/f.txt': file('f'), 'owned/l': link('f.txt'), 'plain.txt': file('p') });
    await lchown(join(src, 'owned/f.txt'), 1234, 5678);
    await lchown(join(src, 'owned/l'), 2345, 6789);
    await lchown(join(src, 'owned'), 3456, 7890);

    const withOwner = tempDir();
    expect(await runSync(`${src}/`, withOwner, { owner: true })).toMatchObject({ ok: true });
    for (const [path, uid, gid] of [['owned/f.txt', 1234, 5678], ['owned/l', 2345, 6789], ['owned', 3456, 7890], ['plain.txt', 0, 0]] as const) {
      expect(await lstat(join(withOwner, path))).toMatchObject({ uid, gid });
    }
    expectRsyncAgrees(src, withOwner);

    const without = tempDir();
    expect(await runSync(`${src}/`, without)).toMatchObject({ ok: true });
    expect(await lstat(join(without, 'owned/f.txt'))).toMatchObject({ uid: 0, gid: 0 });
  });

  it.skipIf(process.getuid?.() !== 0)('with owner (as root), an owner changed at the destination alone is put back, data unsent', async () => {
    const src = tempDir();
    await writeTree(src, { 'd/f.txt': file('content'), 'd/l': link('f.txt'), 'g.txt': file('g') });
    await lchown(join(src, 'd/f.txt'), 1234, 5678);
    await lchown(join(src, 'd/l'), 2345, 6789);
    await lchown(join(src, 'd'), 3456, 7890);
    const dst = tempDir();
    expect(await runSync(`${src}/`, dst, { owner: true })).toMatchObject({ ok: true });
    // Someone changes owners at the destination; content, modes and times stay.
    for (const path of ['d/f.txt', 'd/l', 'd', 'g.txt']) await lchown(join(dst, path), 4242, 4343);
    const times = (await lstat(join(dst, 'd/f.txt'))).mtimeMs;

    const without = await runSync(`${src}/`, dst);
    expect(without).toMatchObject({ ok: true, attributes: 0, symlinks: 0, updated: 0 });
    expect(await lstat(join(dst, 'g.txt'))).toMatchObject({ uid: 4242, gid: 4343 });

    const fixed = await runSync(`${src}/`, dst, { owner: true });
    expect(fixed).toMatchObject({ ok: true, updated: 0, created: 0, sentBytes: 0, attributes: 2, symlinks: 1 });
    for (const [path, uid, gid] of [['d/f.txt', 1234, 5678], ['d/l', 2345, 6789], ['d', 3456, 7890], ['g.txt', 0, 0]] as const) {
      expect(await lstat(join(dst, path))).toMatchObject({ uid, gid });
    }
    expect((await lstat(join(dst, 'd/f.txt'))).mtimeMs).toBe(times);
    expectRsyncAgrees(src, dst);
    // Nothing left to do.
    expect(await runSync(`${src}/`, dst, { owner: true })).toMatchObject({ ok: true, attributes: 0, symlinks: 0, updated: 0, created: 0 });
  });

  it.skipIf(process.getuid?.() !== 0 || !hasSetpriv)('an agent that is not root ignores owner: files arrive, its own', async () => {
    const src = tempDir();
    await writeTree(src, { 'a.txt': file('a'), 'd/b.txt': file('b') });
    await lchown(join(src, 'a.txt'), 1234, 5678);
    const parent = tempDir();
    await chmod(parent, 0o755); // made 0700 for root
    const dst = join(parent, 'dst');
    await mkdir(dst);
    await chown(dst, 65534, 65534);
    // The built agent bundle, run as nobody.
    const bundle = join(import.meta.dirname, '../dist/agent.bundle.mjs');
    const agent = childProcessAgent(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bundle]);
    const summary = await syncTree(() => scanSource(`${src}/`), { name: dst, streams: agent, root: dst }, new PathFilter([]), { owner: true });
    await agent.exited;
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, created: 2 });
    expect(await lstat(join(dst, 'a.txt'))).toMatchObject({ uid: 65534, gid: 65534 });
  });

  it('creates the destination root and gives it the source directory mode and mtime', async () => {
    const src = tempDir();
    await writeTree(src, { f: file('f') });
    await chmod(src, 0o711);
    await utimes(src, BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
    const dst = join(tempDir(), 'a/b/c');
    expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true });
    const st = await stat(dst);
    expect(st.mode & 0o7777).toBe(0o711);
    expect(st.mtimeMs).toBe(BASE_MTIME_MS);
  });

  it('reports a destination it cannot open as an error', async () => {
    const root = tempDir();
    await writeFile(join(root, 'a-file'), 'x');
    const src = tempDir();
    await mkdir(join(src, 'd'));
    const error = await runSync(`${src}/`, join(root, 'a-file/below')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOTDIR' });
  });

  // A source mtime on an exact millisecond (touch -d @S.123, zip or Java tools) is set at the
  // destination through utimes(seconds as a double), which stores .122999000; the plan floors both
  // to milliseconds (123 vs 122), so the file is sent again on every run.
  it('leaves a file whose mtime is an exact millisecond alone on the second run', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeFile(join(src, 'f'), 'content');
    execFileSync('touch', ['-m', '-d', '@1700000000.123', join(src, 'f')]);
    expect((await stat(join(src, 'f'))).mtimeMs).toBe(1_700_000_000_123);
    expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, created: 1 });
    expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, updated: 0, unchanged: 1 });
  });
});
