import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { mirrorDiff, startWatch, useTempDirs, waitFor, waitMirrored, type Running } from './watch-helpers.js';

const tempDir = useTempDirs('deltacast-watch-');
let running: Running | undefined;
afterEach(async () => {
  await running?.watch.close();
  running = undefined;
});

function setup(destinations = 3) {
  const root = tempDir();
  const src = join(root, 'src');
  mkdirSync(join(src, 'docs'), { recursive: true });
  writeFileSync(join(src, 'index.html'), '<h1>v1</h1>');
  writeFileSync(join(src, 'docs/a.md'), 'alpha\n'.repeat(1000));
  const dests = Array.from({ length: destinations }, (_, i) => join(root, `dest${i + 1}`));
  return { root, src, dests };
}

describe('watch', () => {
  it('makes the first full sync, then replicates creates, updates, deletes and renames of files and directories', async () => {
    const { src, dests } = setup();
    running = await startWatch({ source: `${src}/`, destinations: dests });
    expect(running.of('batch-done')[0]).toMatchObject({ reason: 'initial', ok: true });
    for (const d of dests) expect(await mirrorDiff(src, d)).toEqual([]);

    writeFileSync(join(src, 'index.html'), '<h1>v2</h1>');
    mkdirSync(join(src, 'new/deep'), { recursive: true });
    writeFileSync(join(src, 'new/deep/file.txt'), 'deep');
    symlinkSync('deep/file.txt', join(src, 'new/link'));
    await waitMirrored(running, src, dests);

    renameSync(join(src, 'docs/a.md'), join(src, 'docs/b.md'));
    renameSync(join(src, 'new'), join(src, 'renamed'));
    rmSync(join(src, 'index.html'));
    await waitMirrored(running, src, dests);
    for (const d of dests) {
      expect(existsSync(join(d, 'new'))).toBe(false);
      expect(readFileSync(join(d, 'renamed/deep/file.txt'), 'utf8')).toBe('deep');
    }

    rmSync(join(src, 'renamed'), { recursive: true });
    await waitMirrored(running, src, dests);
    const batches = running.of('batch-done').filter((b) => b.reason === 'changes');
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.every((b) => b.ok)).toBe(true);
  });

  it('coalesces a burst of thousands of changes into a few batches, each file sent once per destination', async () => {
    const { src, dests } = setup();
    running = await startWatch({ source: `${src}/`, destinations: dests, delay: 1000, settle: 200 });
    const files = 2000;
    for (let i = 0; i < files; i++) {
      const dir = join(src, `burst/d${i % 30}`);
      if (i < 30) mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
    }
    await waitMirrored(running, src, dests, 60_000);
    const batches = running.of('batch').filter((b) => b.reason === 'changes');
    // Written in a tight loop inside one delay window: a handful of batches at most, never one per file.
    expect(batches.length).toBeLessThanOrEqual(5);
    const created = running.of('file').filter((e) => e.path.startsWith('burst/'));
    expect(created.length).toBe(files * dests.length);
    expect(new Set(created.map((e) => `${e.destination}|${e.path}`)).size).toBe(files * dests.length);
    // One delta per file for the identical destinations (all lack it: one literal stream each).
    const deltas = running.of('delta').filter((e) => e.path.startsWith('burst/'));
    expect(deltas.length).toBe(files);
    expect(deltas.every((d) => d.destinations.length === dests.length)).toBe(true);
  });

  it('holds a file back while it is being written and sends it once, complete', async () => {
    const { src, dests } = setup(2);
    running = await startWatch({ source: `${src}/`, destinations: dests, delay: 100, settle: 600 });
    writeFileSync(join(src, 'docs/early.md'), 'early');
    const path = join(src, 'docs/slow.log');
    for (let i = 0; i < 15; i++) {
      appendFileSync(path, `chunk ${i} ${'x'.repeat(1000)}\n`);
      await sleep(100);
    }
    await waitMirrored(running, src, dests);
    const sends = running.of('file').filter((e) => e.path === 'docs/slow.log');
    expect(sends.map((e) => e.destination).sort()).toEqual([...dests].sort());
    expect(sends.every((e) => e.size === readFileSync(path).length)).toBe(true);
    expect(running.of('deferred').some((e) => e.paths.includes('docs/slow.log'))).toBe(true);
    // The settled sibling went out in an earlier batch, while slow.log was still growing.
    const early = running.of('file').find((e) => e.path === 'docs/early.md')!;
    expect(early.batch).toBeLessThan(sends[0].batch);
  });

  it('never deletes or half-updates a destination copy of a file that is held back, even in a full rescan', async () => {
    const { src, dests } = setup(1);
    const big = join(src, 'docs/big.bin');
    writeFileSync(big, 'old version');
    const seenDuringRescan: string[] = [];
    running = await startWatch({
      source: `${src}/`,
      destinations: dests,
      delay: 100,
      settle: 1000,
      overflowThreshold: 40,
      onEvent: (event) => {
        if (event.type === 'batch-done' && event.reason === 'rescan' && event.deferred > 0) seenDuringRescan.push(readFileSync(join(dests[0], 'docs/big.bin'), 'utf8'));
      },
    });
    expect(readFileSync(join(dests[0], 'docs/big.bin'), 'utf8')).toBe('old version');
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        writeFileSync(big, `new version ${i}`);
        await sleep(100);
      }
    })();
    // A burst over the (test-sized) overflow threshold: the whole tree is rescanned while big.bin keeps changing.
    // (Into a directory that is already watched: a new one is scanned, not evented.)
    for (let i = 0; i < 100; i++) writeFileSync(join(src, `docs/f${i}`), String(i));
    await waitFor(() => seenDuringRescan.length > 0, 'a rescan batch that held big.bin back');
    stop = true;
    await writer;
    expect(seenDuringRescan[0]).toBe('old version');
    await waitMirrored(running, src, dests);
    expect(readFileSync(join(dests[0], 'docs/big.bin'), 'utf8')).toMatch(/^new version \d+$/);
  });

  it('applies excludes to events: excluded paths start no batch and never reach a destination', async () => {
    const { src, dests } = setup(2);
    running = await startWatch({ source: `${src}/`, destinations: dests, filters: [{ action: 'exclude', pattern: '*.tmp' }, { action: 'exclude', pattern: 'cache/' }] });
    const before = running.of('batch').length;
    mkdirSync(join(src, 'cache'));
    for (let i = 0; i < 20; i++) writeFileSync(join(src, `cache/c${i}`), 'c');
    for (let i = 0; i < 20; i++) writeFileSync(join(src, `docs/x${i}.tmp`), 't');
    await sleep(800); // four delay windows: a batch, had one been started, would have run
    await running.watch.idle();
    expect(running.of('batch').length).toBe(before);
    writeFileSync(join(src, 'docs/kept.md'), 'kept');
    await waitFor(() => dests.every((d) => existsSync(join(d, 'docs/kept.md'))), 'kept.md everywhere');
    for (const d of dests) {
      expect(existsSync(join(d, 'cache'))).toBe(false);
      expect(existsSync(join(d, 'docs/x0.tmp'))).toBe(false);
    }
  });

  it('takes a possible watcher overflow as a full rescan, and still mirrors', async () => {
    const { src, dests } = setup(2);
    running = await startWatch({ source: `${src}/`, destinations: dests, overflowThreshold: 50 });
    for (let i = 0; i < 400; i++) writeFileSync(join(src, `docs/o${i}`), String(i));
    await waitMirrored(running, src, dests);
    expect(running.of('rescan').length).toBeGreaterThan(0);
    expect(running.of('batch').some((b) => b.reason === 'rescan' && b.full)).toBe(true);
  });

  it('catches up a destination that was down with one full sync, then keeps it in the batches', async () => {
    const { root, src, dests } = setup(2);
    // The second destination sits under a path that is a file for a while: it cannot be written.
    const blocker = join(root, 'blocked');
    writeFileSync(blocker, 'not a directory');
    const broken = join(blocker, 'dest');
    running = await startWatch({ source: `${src}/`, destinations: [dests[0], broken] });
    expect(running.of('destination-down').map((e) => e.destination)).toEqual([broken]);
    writeFileSync(join(src, 'docs/while-down.md'), 'changed while down');
    rmSync(join(src, 'docs/a.md'));
    await waitFor(() => existsSync(join(dests[0], 'docs/while-down.md')), 'the change on the healthy destination');
    rmSync(blocker);
    mkdirSync(blocker);
    await waitMirrored(running, src, [dests[0], broken]);
    const catchUps = running.of('batch').filter((b) => b.reason === 'catch-up' && b.destinations.includes(broken));
    expect(catchUps.length).toBeGreaterThan(0);
    expect(catchUps.every((b) => b.full && b.destinations.length === 1)).toBe(true);
    expect(running.of('destination-up').some((e) => e.destination === broken)).toBe(true);
    // Back in the batches afterwards.
    writeFileSync(join(src, 'after.txt'), 'after');
    await waitMirrored(running, src, [dests[0], broken]);
    const last = running.of('batch').filter((b) => b.reason === 'changes').at(-1)!;
    expect(last.destinations.sort()).toEqual([dests[0], broken].sort());
  });

  it('survives the source root moving away and back: nothing is deleted meanwhile, and it mirrors again', async () => {
    const { root, src, dests } = setup(1);
    running = await startWatch({ source: `${src}/`, destinations: dests });
    renameSync(src, join(root, 'aside'));
    await waitFor(() => running!.of('watch-error').length > 0, 'the failed rescan of a missing source');
    expect(readFileSync(join(dests[0], 'index.html'), 'utf8')).toBe('<h1>v1</h1>');
    writeFileSync(join(root, 'aside/index.html'), '<h1>v3</h1>');
    renameSync(join(root, 'aside'), src);
    await waitMirrored(running, src, dests, 45_000);
    expect(readFileSync(join(dests[0], 'index.html'), 'utf8')).toBe('<h1>v3</h1>');
  });

  it('with all-or-none, a destination that is down does not hold back the others: they commit each batch without it', async () => {
    const { root, src, dests } = setup(2);
    const blocker = join(root, 'blocked');
    writeFileSync(blocker, 'not a directory');
    const broken = join(blocker, 'dest');
    running = await startWatch({ source: `${src}/`, destinations: [...dests, broken], atomic: 'tree', commit: 'all-or-none' });
    // The first sync aborted everywhere (one failed); the healthy two are redone at once without it.
    await waitFor(() => dests.every((d) => running!.watch.status().destinations.find((s) => s.destination === d)?.state === 'up'), 'the healthy destinations up');
    for (const d of dests) expect(await mirrorDiff(src, d)).toEqual([]);
    writeFileSync(join(src, 'docs/new.md'), 'new');
    await waitFor(() => running!.of('batch-done').some((b) => b.reason === 'changes' && b.files > 0), 'the batch on the healthy two');
    for (const d of dests) expect(readFileSync(join(d, 'docs/new.md'), 'utf8')).toBe('new');
    const batch = running.of('batch-done').find((b) => b.reason === 'changes' && b.files > 0)!;
    expect(batch.results.map((r) => r.destination).sort()).toEqual([...dests].sort());
    expect(batch.results.every((r) => r.committed)).toBe(true);
    rmSync(blocker);
    mkdirSync(blocker);
    await waitMirrored(running, src, [...dests, broken]);
  });

  it('a periodic rescan (rescanInterval) repairs drift made at a destination, which no source event reports', async () => {
    const { src, dests } = setup(2);
    running = await startWatch({ source: `${src}/`, destinations: dests, rescanInterval: 300 });
    writeFileSync(join(dests[1], 'index.html'), '<h1>edited on the server</h1>');
    rmSync(join(dests[0], 'docs/a.md'));
    await waitFor(() => running!.of('batch-done').some((b) => b.reason === 'rescan' && b.files > 0), 'a rescan that sent something');
    await waitMirrored(running, src, dests);
    expect(running.of('batch').filter((b) => b.reason === 'changes')).toEqual([]);
  });

  it('builds a release per batch with --release and switches every destination to it', async () => {
    const { src, dests } = setup(2);
    running = await startWatch({ source: `${src}/`, destinations: dests, release: { keep: 3 } });
    writeFileSync(join(src, 'index.html'), '<h1>v2</h1>');
    await waitFor(() => dests.every((d) => existsSync(join(d, 'current/index.html')) && readFileSync(join(d, 'current/index.html'), 'utf8') === '<h1>v2</h1>'), 'v2 live everywhere');
    await running.watch.idle();
    for (const d of dests) expect(await mirrorDiff(src, join(d, 'current/'))).toEqual([]);
  });

  it('replicates "dir" (without a slash) under its own name', async () => {
    const { src, dests } = setup(1);
    running = await startWatch({ source: src, destinations: dests });
    writeFileSync(join(src, 'docs/named.md'), 'named');
    await waitFor(() => existsSync(join(dests[0], 'src/docs/named.md')), 'src/docs/named.md');
    await running.watch.idle();
    expect(await mirrorDiff(src, join(dests[0], 'src'))).toEqual([]);
  });
});
