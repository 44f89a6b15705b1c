/**
 * rsync's --max-delete (TransferOptions.maxDelete) on one destination: how many extraneous entries
 * go, which ones, what is reported, and that the rest of the run is done all the same.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../src/events.js';
import { BASE_MTIME_MS, dir, diffTrees, file, runSync, snapshotTree, useTempDirs, writeTree } from './helpers/tree.js';

const tempDir = useTempDirs('deltacast-max-delete-');

/** The four extraneous entries, topmost, in the plan's order (depth first, names sorted). */
const EXTRANEOUS = ['gone-dir', 'sub/gone.txt', 'x1.txt', 'x2.txt'];

/**
 * A destination synced once, then given four extraneous entries (one of them a directory holding two
 * more levels, which counts as one) and a directory where the source now has a file; the source
 * gains a new file and changes another.
 */
async function setup(): Promise<{ src: string; dst: string }> {
  const src = tempDir();
  const dst = tempDir();
  await writeTree(src, { 'keep.txt': file('keep'), 'edit.txt': file('v1'), 'sub/in.txt': file('in') });
  await runSync(`${src}/`, dst);
  // Written in an order unlike the plan's, so that the order cannot come from the writing.
  await writeTree(dst, {
    'x2.txt': file('x2'),
    'gone-dir': dir(),
    'gone-dir/a/b.txt': file('b'),
    'gone-dir/c.txt': file('c'),
    'sub/gone.txt': file('g'),
    'x1.txt': file('x1'),
    'turned-file': dir(),
    'turned-file/inner.txt': file('i'),
  });
  await writeTree(src, { 'new.txt': file('new'), 'edit.txt': file('v2 longer', { mtimeMs: BASE_MTIME_MS + 1000 }), 'turned-file': file('now a file') });
  return { src, dst };
}

async function present(dst: string): Promise<string[]> {
  const paths = new Set((await snapshotTree(dst)).keys());
  return EXTRANEOUS.filter((p) => paths.has(p));
}

function run(src: string, dst: string, options: { maxDelete?: number; dryRun?: boolean; delete?: boolean }) {
  const events: SyncEvent[] = [];
  return runSync(`${src}/`, dst, { delete: true, ...options, onEvent: (e) => events.push(e) }).then((summary) => ({ summary, events }));
}

describe('sync with maxDelete', () => {
  it('below the number of extraneous entries: deletes the first ones in plan order, skips the rest, sends the files and reports MAX_DELETE', async () => {
    const { src, dst } = await setup();
    const { summary, events } = await run(src, dst, { maxDelete: 2 });
    // The two first extraneous entries, plus the directory replaced by a file (not counted).
    expect(summary).toMatchObject({ ok: false, deleted: 3, created: 2, updated: 1 });
    expect(await present(dst)).toEqual(['x1.txt', 'x2.txt']);
    expect(await readFile(join(dst, 'new.txt'), 'utf8')).toBe('new');
    expect(await readFile(join(dst, 'edit.txt'), 'utf8')).toBe('v2 longer');
    expect(await readFile(join(dst, 'turned-file'), 'utf8')).toBe('now a file');
    expect(summary.errors).toEqual([
      { path: '', code: 'MAX_DELETE', message: 'the --max-delete limit stopped deletions: 2 of 4 extraneous entries skipped (at most 2 per run)' },
    ]);
    const errorEvents = events.filter((e) => e.type === 'error');
    expect(errorEvents).toEqual([{ type: 'error', destination: dst, path: '', code: 'MAX_DELETE', message: summary.errors[0].message }]);
    // A directory's deletion is itemized after each entry under it, deepest first (as rsync does).
    const deleteItems = events.flatMap((e) => (e.type === 'item' && e.kind === 'delete' ? [e.path] : []));
    expect(deleteItems).toEqual(['turned-file/inner.txt', 'turned-file', 'gone-dir/c.txt', 'gone-dir/a/b.txt', 'gone-dir/a', 'gone-dir', 'sub/gone.txt']);
    // Apart from the two left, the destination is the source.
    expect(await diffTrees(src, dst)).toEqual(['extra: "x1.txt"', 'extra: "x2.txt"']);

    // The next run is a run of its own: the two left fit in its limit.
    const again = await run(src, dst, { maxDelete: 2 });
    expect(again.summary).toMatchObject({ ok: true, deleted: 2, created: 0, updated: 0 });
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it.each([4, 10])('at or above the number of extraneous entries (%i): deletes them all, ok', async (maxDelete) => {
    const { src, dst } = await setup();
    const { summary, events } = await run(src, dst, { maxDelete });
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, deleted: 5, created: 2, updated: 1 });
    expect(events.some((e) => e.type === 'error')).toBe(false);
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('0: deletes no extraneous entry (each is skipped and counted), still replaces a changed type', async () => {
    const { src, dst } = await setup();
    const { summary } = await run(src, dst, { maxDelete: 0 });
    expect(summary).toMatchObject({ ok: false, deleted: 1, created: 2, updated: 1 });
    expect(summary.errors.map((e) => [e.path, e.code, e.message])).toEqual([
      ['', 'MAX_DELETE', 'the --max-delete limit stopped deletions: 4 of 4 extraneous entries skipped (at most 0 per run)'],
    ]);
    expect(await present(dst)).toEqual(EXTRANEOUS);
    expect(await readFile(join(dst, 'turned-file'), 'utf8')).toBe('now a file');
  });

  it('with dryRun: itemizes and counts only the deletions that would happen, reports the skipped ones, changes nothing', async () => {
    const { src, dst } = await setup();
    const before = await snapshotTree(dst, { includeRoot: true });
    const { summary, events } = await run(src, dst, { maxDelete: 1, dryRun: true });
    expect(summary).toMatchObject({ ok: false, dryRun: true, deleted: 2, created: 2, updated: 1, sentBytes: 0 });
    expect(summary.errors.map((e) => [e.path, e.code, e.message])).toEqual([
      ['', 'MAX_DELETE', 'the --max-delete limit stopped deletions: 3 of 4 extraneous entries skipped (at most 1 per run)'],
    ]);
    const deleteItems = events.flatMap((e) => (e.type === 'item' && e.kind === 'delete' ? [e.path] : []));
    expect(deleteItems).toEqual(['turned-file/inner.txt', 'turned-file', 'gone-dir/c.txt', 'gone-dir/a/b.txt', 'gone-dir/a', 'gone-dir']);
    expect(await snapshotTree(dst, { includeRoot: true })).toEqual(before);
  });

  it('without delete: nothing extraneous to limit, no error', async () => {
    const { src, dst } = await setup();
    const { summary } = await run(src, dst, { maxDelete: 0, delete: false });
    expect(summary).toMatchObject({ ok: true, deleted: 1, created: 2, updated: 1 });
    expect(await present(dst)).toEqual(EXTRANEOUS);
  });

  it.each([-1, 1.5, Number.NaN])('refuses %s as a limit (INVALID_OPTION) and changes nothing', async (maxDelete) => {
    const { src, dst } = await setup();
    const before = await snapshotTree(dst, { includeRoot: true });
    await expect(run(src, dst, { maxDelete })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(await snapshotTree(dst, { includeRoot: true })).toEqual(before);
  });
});
