import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TreeWatcher } from '../src/tree-watcher.js';
import { Harness, waitFor } from './tree-watcher-helpers.js';

const run = promisify(execFile);
const harnesses: Harness[] = [];
const extraDirs: string[] = [];

function harness(): Harness {
  const h = new Harness(Harness.tempDir());
  harnesses.push(h);
  return h;
}

afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
  for (const dir of extraDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('TreeWatcher: start and files', () => {
  it('watches each directory once and reports created, modified and deleted files', async () => {
    const h = harness();
    mkdirSync(h.path('a/b'), { recursive: true });
    mkdirSync(h.path('c'));
    writeFileSync(h.path('a/b/old'), 'x');
    await h.start();
    h.expectWatched(4); // root, a, a/b, c
    expect(h.signals).toEqual([]);

    writeFileSync(h.path('a/b/new'), 'hello');
    await h.waitChange('a/b/new');
    writeFileSync(h.path('a/b/old'), 'changed');
    await h.waitChange('a/b/old');
    unlinkSync(h.path('a/b/new'));
    const before = h.signals.length;
    await waitFor(() => h.signals.slice(before).some((s) => s.type === 'change' && s.path === 'a/b/new'), 'delete');
    expect(h.rescans()).toEqual([]);
  });

  it('rejects when the root is not a directory', async () => {
    const h = harness();
    writeFileSync(h.path('file'), 'x');
    const w = new TreeWatcher({ root: h.path('file') }, () => {});
    await expect(w.start()).rejects.toThrow(/not a directory/);
    w.close();
    await expect(new TreeWatcher({ root: h.path('missing') }, () => {}).start()).rejects.toThrow(/ENOENT/);
  });

  it('sends nothing after close, which is idempotent and drops every watch', async () => {
    const h = harness();
    mkdirSync(h.path('a'));
    const w = await h.start();
    h.expectWatched(2);
    w.close();
    w.close();
    h.expectWatched(0);
    writeFileSync(h.path('a/f'), 'x');
    mkdirSync(h.path('b'));
    // A second watcher on the same tree sees these events: once it has, the closed one would have too.
    const other = new Harness(h.dir);
    const w2 = await other.start();
    writeFileSync(h.path('a/g'), 'x');
    await other.waitChange('a/g');
    w2.close();
    expect(h.signals).toEqual([]);
  });
});

describe('TreeWatcher: directories', () => {
  it('watches a new directory, then scans it: files created before its watch are covered', async () => {
    const h = harness();
    await h.start();
    // All of this happens before the watcher can react to the first IN_CREATE.
    mkdirSync(h.path('new/x/y'), { recursive: true });
    writeFileSync(h.path('new/x/y/early'), 'x');
    writeFileSync(h.path('new/early'), 'x');
    await h.waitChange('new');
    h.expectWatched(4);
    expect(h.covers('new/x/y/early')).toBe(true);
    writeFileSync(h.path('new/x/y/late'), 'x');
    await h.waitChange('new/x/y/late');
  });

  it('covers every file when directories and files are created as fast as a shell can', async () => {
    const h = harness();
    await h.start();
    const script = 'for d in 1 2 3 4 5 6 7 8 9 10; do mkdir -p d$d/e/f; for f in 1 2 3 4 5; do echo x > d$d/e/f/$f; echo x > d$d/$f; done; done';
    await run('sh', ['-c', script], { cwd: h.dir });
    const files: string[] = [];
    for (let d = 1; d <= 10; d++) for (let f = 1; f <= 5; f++) files.push(`d${d}/e/f/${f}`, `d${d}/${f}`);
    await waitFor(() => files.every((f) => h.covers(f)), () => `coverage of ${files.filter((f) => !h.covers(f))}`);
    await h.waitWatched(31);
  });

  it('drops the watches of a removed directory and reports it', async () => {
    const h = harness();
    mkdirSync(h.path('a/b/c'), { recursive: true });
    writeFileSync(h.path('a/b/c/f'), 'x');
    await h.start();
    h.expectWatched(4);
    rmSync(h.path('a'), { recursive: true });
    await h.waitChange('a');
    await h.waitWatched(1);
  });

  it('reports both paths of a rename, and follows a renamed directory under its new name', async () => {
    const h = harness();
    mkdirSync(h.path('a/sub'), { recursive: true });
    mkdirSync(h.path('b'));
    writeFileSync(h.path('a/file'), 'x');
    await h.start();
    renameSync(h.path('a/file'), h.path('b/renamed'));
    await h.waitChange('a/file');
    await h.waitChange('b/renamed');

    renameSync(h.path('a'), h.path('b/moved'));
    await h.waitChange('a');
    await h.waitChange('b/moved');
    await h.waitWatched(4);
    const before = h.signals.length;
    writeFileSync(h.path('b/moved/sub/f'), 'x');
    await waitFor(
      () => h.signals.slice(before).some((s) => s.type === 'change' && s.path === 'b/moved/sub/f'),
      'the file under the new name',
    );
    expect(h.signals.slice(before).some((s) => s.type === 'change' && s.path.startsWith('a/'))).toBe(false);
  });

  it('drops directories moved out of the tree and watches those moved in', async () => {
    const h = harness();
    const outside = Harness.tempDir();
    extraDirs.push(outside);
    mkdirSync(h.path('leaving/deep'), { recursive: true });
    mkdirSync(`${outside}/arriving/deep`, { recursive: true });
    writeFileSync(`${outside}/arriving/deep/f`, 'x');
    await h.start();
    h.expectWatched(3);
    renameSync(h.path('leaving'), `${outside}/left`);
    await h.waitChange('leaving');
    await h.waitWatched(1);
    renameSync(`${outside}/arriving`, h.path('arrived'));
    await h.waitChange('arrived');
    await h.waitWatched(3);
    writeFileSync(h.path('arrived/deep/g'), 'x');
    await h.waitChange('arrived/deep/g');
    // The directory that left is no longer watched: a change there reaches nobody.
    writeFileSync(`${outside}/left/deep/f`, 'x');
    await h.sentinel();
    expect(h.changes().filter((p) => p.startsWith("left") || p.startsWith("leaving/"))).toEqual([]);
  });

  it('never follows symlinks: a link to a directory is a change of the link', async () => {
    const h = harness();
    const outside = Harness.tempDir();
    extraDirs.push(outside);
    mkdirSync(h.path('real'));
    await h.start();
    symlinkSync(outside, h.path('link-out'));
    symlinkSync('real', h.path('link-in'));
    await h.waitChange('link-out');
    await h.waitChange('link-in');
    await h.sentinel();
    h.expectWatched(2);
    writeFileSync(`${outside}/f`, 'x');
    await h.sentinel();
    expect(h.changes().some((p) => p.startsWith('link-out/'))).toBe(false);
  });

  it('replacing a watched directory by a file, or a file by a directory, is followed', async () => {
    const h = harness();
    mkdirSync(h.path('d'));
    writeFileSync(h.path('f'), 'x');
    const w = await h.start();
    rmSync(h.path('d'), { recursive: true });
    writeFileSync(h.path('d'), 'now a file');
    unlinkSync(h.path('f'));
    mkdirSync(h.path('f'));
    await waitFor(
      () => w.watchedDirectories === 2 && h.changed('d') && h.changed('f'),
      () => `the swap: 2 watches (have ${w.watchedDirectories}) and changes of d and f (${h.received()})`,
    );
    writeFileSync(h.path('f/inner'), 'x');
    await h.waitChange('f/inner');
  });
});

describe('TreeWatcher: excludes', () => {
  it('does not watch excluded directories nor report excluded paths', async () => {
    const h = harness();
    mkdirSync(h.path('node_modules/pkg'), { recursive: true });
    mkdirSync(h.path('src'));
    const excludes = (path: string, isDirectory: boolean) =>
      (isDirectory && /(^|\/)(node_modules|cache)$/.test(path)) || path.endsWith('.tmp');
    await h.start({ excludes });
    h.expectWatched(2); // root, src
    expect(h.excludeCalls).toContain('node_modules/');

    writeFileSync(h.path('src/x.tmp'), 'x');
    mkdirSync(h.path('src/cache'));
    writeFileSync(h.path('src/kept'), 'x');
    await h.waitChange('src/kept');
    // The decisions are taken as the events are looked at; once both were asked, nothing can follow.
    await waitFor(() => h.excludeCalls.includes('src/x.tmp') && h.excludeCalls.includes('src/cache/'), 'exclude checks');
    await h.sentinel();
    writeFileSync(h.path('src/cache/inside'), 'x');
    rmSync(h.path('src/cache'), { recursive: true });
    await h.sentinel();
    h.expectWatched(2);
    expect(h.changes().filter((p) => p.includes('tmp') || p.includes('cache') || p.includes('node_modules'))).toEqual([]);
  });
});

describe('TreeWatcher: bursts and overflow', () => {
  it('sends one rescan for a burst above the threshold in one turn, and still watches new directories', async () => {
    const h = harness();
    await h.start({ overflowThreshold: 200 });
    // execFileSync blocks the event loop, so all of the burst is read in one turn afterwards.
    execFileSync('sh', ['-c', 'mkdir sub && i=0; while [ $i -lt 300 ]; do : > f$i; i=$((i+1)); done'], { cwd: h.dir });
    await waitFor(() => h.rescans().length > 0, 'a rescan');
    expect(h.rescans()[0]).toMatchObject({ degraded: false });
    expect(h.rescans()[0].reason).toMatch(/overflow/);
    h.expectWatched(2);
    writeFileSync(h.path('sub/after'), 'x');
    await h.waitChange('sub/after');
    expect(h.rescans()).toHaveLength(1);
  });

  it('reports every file of a burst of thousands (or rescans), never nothing', async () => {
    const h = harness();
    await h.start();
    const count = 3000;
    await run('sh', ['-c', `mkdir burst && i=0; while [ $i -lt ${count} ]; do echo $i > f$i; echo $i > burst/g$i; i=$((i+1)); done`], {
      cwd: h.dir,
    });
    const files: string[] = [];
    for (let i = 0; i < count; i++) files.push(`f${i}`, `burst/g${i}`);
    await waitFor(() => files.every((f) => h.covers(f)), () => `${files.filter((f) => !h.covers(f)).length} files uncovered`);
  });
});

describe('TreeWatcher: the root', () => {
  it('rescans, degraded, when the root is deleted, and again when it comes back', async () => {
    const h = harness();
    mkdirSync(h.path('a'));
    await h.start();
    rmSync(h.dir, { recursive: true });
    await waitFor(() => h.rescans().length > 0, 'a rescan');
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/deleted or moved away/);
    await h.waitWatched(0);
    mkdirSync(h.path('b'), { recursive: true });
    await waitFor(() => h.rescans().length > 1, 'a second rescan');
    expect(h.rescans()[1]).toMatchObject({ degraded: false });
    expect(h.rescans()[1].reason).toMatch(/reappeared/);
    h.expectWatched(2);
    writeFileSync(h.path('b/f'), 'x');
    await h.waitChange('b/f');
  });

  it('rescans when the root is replaced by another directory, and watches the new one', async () => {
    const h = harness();
    const side = Harness.tempDir();
    extraDirs.push(side);
    mkdirSync(h.path('old1'));
    mkdirSync(h.path('old2'));
    mkdirSync(`${side}/next/new1`, { recursive: true });
    await h.start();
    h.expectWatched(3);
    // The deploy pattern: move the live tree aside and the new one in, back to back.
    renameSync(h.dir, `${side}/previous`);
    renameSync(`${side}/next`, h.dir);
    await waitFor(() => h.rescans().length > 0, 'a rescan');
    expect(h.rescans()[0]).toMatchObject({ degraded: false });
    expect(h.rescans()[0].reason).toMatch(/replaced/);
    h.expectWatched(2);
    writeFileSync(h.path('new1/f'), 'x');
    await h.waitChange('new1/f');
    writeFileSync(`${side}/previous/old1/f`, 'x');
    await h.sentinel();
    expect(h.changes().some((p) => p.startsWith('old1'))).toBe(false);
  });

  it('reports a change of an attribute of the root itself as nothing lost', async () => {
    const h = harness();
    await h.start();
    utimesSync(h.dir, new Date(1000), new Date(1000));
    await h.sentinel();
    expect(h.rescans()).toEqual([]);
    h.expectWatched(1);
  });
});
