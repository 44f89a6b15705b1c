/**
 * rsync's transfer rules: --size-only, -u/--update, --ignore-existing, --existing (plan.ts
 * TransferRules). Each is checked against what it should leave and change, and, where rsync is
 * installed, against what `rsync -a` with the same option makes of the same two trees.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TransferRules } from '../src/plan.js';
import { sync, type TransferOptions } from '../src/sync.js';
import { BASE_MTIME_MS, diffTrees, dir, file, hasRsync, link, snapshotTree, useTempDirs, writeTree } from './helpers/tree.js';

const temp = useTempDirs('deltacast-rules-');
const T = BASE_MTIME_MS;
const EARLIER = T - 3_600_000;
const LATER = T + 3_600_000;

/** The source: what a run would send. */
const SOURCE = {
  'same-size.txt': file('new text', { mtimeMs: T, mode: 0o644 }),
  'newer-there.txt': file('source version', { mtimeMs: T }),
  'older-there.txt': file('source version', { mtimeMs: T }),
  'missing.txt': file('only in the source', { mtimeMs: T }),
  'new-dir': dir({ mtimeMs: T }),
  'new-dir/inside.txt': file('in a new directory', { mtimeMs: T }),
  'kept-dir': dir({ mtimeMs: T }),
  'kept-dir/file.txt': file('changed inside a kept directory', { mtimeMs: T }),
  'link-newer-there': link('source-target', { mtimeMs: T }),
  'file-over-dir': file('a file where the destination has a directory', { mtimeMs: T }),
  'unchanged.txt': file('same everywhere', { mtimeMs: T }),
};

/** The destination before the run. */
const DESTINATION = {
  // Same size as the source's, other content, another mtime and mode.
  'same-size.txt': file('old text', { mtimeMs: EARLIER, mode: 0o600 }),
  'newer-there.txt': file('edited at the destination', { mtimeMs: LATER }),
  'older-there.txt': file('stale', { mtimeMs: EARLIER }),
  'kept-dir': dir({ mtimeMs: EARLIER }),
  'kept-dir/file.txt': file('old', { mtimeMs: EARLIER }),
  'link-newer-there': link('destination-target', { mtimeMs: LATER }),
  'file-over-dir': dir({ mtimeMs: LATER }),
  'unchanged.txt': file('same everywhere', { mtimeMs: T }),
  'extraneous.txt': file('only at the destination', { mtimeMs: T }),
};

/** A tree as `spec` says, its root's own mtime pinned too. */
async function tree(path: string, spec: typeof SOURCE | typeof DESTINATION, rootMtimeMs: number): Promise<void> {
  await writeTree(path, spec);
  utimesSync(path, rootMtimeMs / 1000, rootMtimeMs / 1000);
}

async function trees(): Promise<{ src: string; dst: string; base: string }> {
  const base = temp();
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  await tree(src, SOURCE, T);
  await tree(dst, DESTINATION, EARLIER);
  return { src, dst, base };
}

/** The destination as rsync -a with `flags` leaves it, made apart (undefined without rsync). */
async function rsyncResult(src: string, base: string, flags: string[]): Promise<string | undefined> {
  if (!hasRsync) return undefined;
  const copy = join(base, 'rsync-dst');
  await tree(copy, DESTINATION, EARLIER);
  const run = spawnSync('rsync', ['-a', '--delete', ...flags, `${src}/`, `${copy}/`], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`rsync failed: ${run.stderr}`);
  return copy;
}

async function run(rules: TransferRules & Partial<TransferOptions>, rsyncFlags: string[]) {
  const { src, dst, base } = await trees();
  const expected = await rsyncResult(src, base, rsyncFlags);
  const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, ...rules });
  expect(summary.errors).toEqual([]);
  if (expected) expect(await diffTrees(expected, dst)).toEqual([]);
  const entries = await snapshotTree(dst);
  const text = (path: string) => readFileSync(join(dst, path), 'utf8');
  return { summary, entries, text, src, dst };
}

describe('transfer rules, as rsync -a applies them', () => {
  it('none: every difference is sent (the baseline the rules depart from)', async () => {
    const { summary, entries, text } = await run({}, []);
    expect(text('same-size.txt')).toBe('new text');
    expect(text('newer-there.txt')).toBe('source version');
    expect(entries.has('new-dir/inside.txt')).toBe(true);
    expect(summary.skipped).toBe(0);
  });

  it('--size-only: a same-size file keeps its content but takes the mode and mtime', async () => {
    const { summary, entries, text } = await run({ sizeOnly: true }, ['--size-only']);
    expect(text('same-size.txt')).toBe('old text');
    expect(entries.get('same-size.txt')).toMatchObject({ mode: 0o644, mtimeMs: T });
    expect(text('older-there.txt')).toBe('source version'); // another size: sent
    expect(summary.skipped).toBe(0);
  });

  it('--update: a regular file newer at the destination stays; not a symlink, nor across a change of type', async () => {
    const { summary, entries, text } = await run({ update: true }, ['--update']);
    expect(text('newer-there.txt')).toBe('edited at the destination');
    expect(entries.get('newer-there.txt')).toMatchObject({ mtimeMs: LATER });
    expect(entries.get('link-newer-there')).toMatchObject({ linkTarget: 'source-target' });
    expect(text('older-there.txt')).toBe('source version');
    expect(text('file-over-dir')).toBe('a file where the destination has a directory');
    expect(entries.has('extraneous.txt')).toBe(false); // a transfer rule: deletions go on
    expect(summary.skipped).toBe(1);
  });

  it('--ignore-existing: only what the destination lacks is sent', async () => {
    const { summary, entries, text } = await run({ ignoreExisting: true }, ['--ignore-existing']);
    expect(text('same-size.txt')).toBe('old text');
    expect(text('older-there.txt')).toBe('stale');
    expect(text('kept-dir/file.txt')).toBe('old');
    expect(entries.get('file-over-dir')?.type).toBe('d');
    expect(text('missing.txt')).toBe('only in the source');
    expect(text('new-dir/inside.txt')).toBe('in a new directory');
    expect(entries.has('extraneous.txt')).toBe(false);
    expect(summary.skipped).toBe(6); // unchanged.txt is unchanged, not skipped
  });

  it('--existing: nothing new is created, what exists is updated', async () => {
    const { summary, entries, text } = await run({ existing: true }, ['--existing']);
    expect(entries.has('missing.txt')).toBe(false);
    expect(entries.has('new-dir')).toBe(false);
    expect(text('older-there.txt')).toBe('source version');
    expect(text('kept-dir/file.txt')).toBe('changed inside a kept directory');
    expect(entries.has('extraneous.txt')).toBe(false);
    expect(summary.skipped).toBe(2);
  });

  it('--existing with --ignore-existing sends nothing and only deletes', async () => {
    const { summary, entries, text } = await run({ existing: true, ignoreExisting: true }, ['--existing', '--ignore-existing']);
    expect(summary.created + summary.updated).toBe(0);
    expect(text('older-there.txt')).toBe('stale');
    expect(entries.has('missing.txt')).toBe(false);
    expect(entries.has('extraneous.txt')).toBe(false);
    expect(summary.deleted).toBe(1);
  });

  it('--max-size and --min-size: regular files outside the range are not sent, new or changed', async () => {
    // Sizes: same-size.txt 8, missing.txt 18, newer-there.txt and older-there.txt 14, inside.txt 18.
    const { summary, entries, text } = await run({ maxSize: 15, minSize: 9 }, ['--max-size=15', '--min-size=9']);
    expect(text('same-size.txt')).toBe('old text'); // 8 bytes: too small
    expect(text('older-there.txt')).toBe('source version'); // 14: sent
    expect(entries.has('missing.txt')).toBe(false); // 18: too large
    expect(entries.get('new-dir')?.type).toBe('d'); // directories are made all the same
    expect(entries.has('new-dir/inside.txt')).toBe(false);
    // same-size.txt, missing.txt, new-dir/inside.txt, kept-dir/file.txt (31) and file-over-dir (44).
    expect(summary.skipped).toBe(5);
  });

  it('--delete-excluded: what the filters exclude at the destination is deleted too; without it, kept', async () => {
    const filters = [{ action: 'exclude' as const, pattern: '*.txt' }];
    const kept = await run({ filters }, ['--exclude=*.txt']);
    expect(kept.entries.has('extraneous.txt')).toBe(true);
    expect(kept.text('older-there.txt')).toBe('stale');
    const deleted = await run({ filters, deleteExcluded: true }, ['--exclude=*.txt', '--delete-excluded']);
    for (const path of ['extraneous.txt', 'older-there.txt', 'same-size.txt', 'kept-dir/file.txt']) expect(deleted.entries.has(path)).toBe(false);
    expect(deleted.entries.get('link-newer-there')?.linkTarget).toBe('source-target');
    // The destination's six .txt files, and the directory a file replaces.
    expect(deleted.summary.deleted).toBe(7);
  });

  it('--size-only gives way to --checksum, which compares content', async () => {
    const { text } = await run({ sizeOnly: true, checksum: true } as TransferRules, ['--checksum']);
    expect(text('same-size.txt')).toBe('new text');
  });
});
