/**
 * --max-delete (maxDelete) in a fan-out: the limit holds per destination, each destination reports its
 * own MAX_DELETE, and with staged commits (atomic tree, releases) a destination whose deletions were
 * stopped is not committed while the others are.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resultFor, runFanout, snapshotOf, useTempDirs, writeTree } from './helpers.js';

const tempDir = useTempDirs('deltacast-fanout-max-delete-');

/** A source, two destinations synced from it, then `extras[i]` extraneous files put in destination i (under `under`). */
async function setup(extras: string[][], under = ''): Promise<{ src: string; dests: string[] }> {
  const src = join(tempDir(), 'src');
  await writeTree(src, { 'keep.txt': 'keep' });
  const dests = [join(tempDir(), 'd1'), join(tempDir(), 'd2')];
  const first = await runFanout({ source: `${src}/`, destinations: dests, localAgent: 'in-process' });
  expect(first.result.ok).toBe(true);
  dests.forEach((d, i) => {
    for (const name of extras[i]) writeFileSync(join(d, under, name), name);
  });
  await writeTree(src, { 'new.txt': 'new' });
  return { src, dests };
}

describe('fan-out with maxDelete', () => {
  it('gives each destination the limit of its own: deletes up to it on each, reports MAX_DELETE only where it stopped deletions', async () => {
    const { src, dests } = await setup([
      ['e1', 'e2', 'e3'],
      ['e1', 'e2'],
    ]);
    const { result, errors } = await runFanout({ source: `${src}/`, destinations: dests, localAgent: 'in-process', delete: true, maxDelete: 2 });
    expect(result.ok).toBe(false);
    const [one, two] = dests.map((d) => resultFor(result, d));
    expect(one).toMatchObject({ ok: false, summary: { deleted: 2, created: 1 } });
    expect(one.summary.errors).toEqual([
      { path: '', code: 'MAX_DELETE', message: 'the --max-delete limit stopped deletions: 1 of 3 extraneous entries skipped (at most 2 per run)' },
    ]);
    expect(two).toMatchObject({ ok: true, summary: { deleted: 2, created: 1, errors: [] } });
    expect(errors).toEqual([{ type: 'error', destination: dests[0], path: '', code: 'MAX_DELETE', message: one.summary.errors[0].message }]);
    // The first two in plan order went; the files arrived everywhere.
    expect(readdirSync(dests[0]).sort()).toEqual(['e3', 'keep.txt', 'new.txt']);
    expect(readdirSync(dests[1]).sort()).toEqual(['keep.txt', 'new.txt']);
  });

  it("with atomic 'tree': the destination over the limit is left exactly as it was, the other commits", async () => {
    const { src, dests } = await setup([['e1', 'e2', 'e3'], ['e1']]);
    const before = await snapshotOf(dests[0]);
    const { result } = await runFanout({ source: `${src}/`, destinations: dests, localAgent: 'in-process', delete: true, maxDelete: 2, atomic: 'tree' });
    expect(resultFor(result, dests[0])).toMatchObject({ ok: false, committed: false, summary: { errors: [{ path: '', code: 'MAX_DELETE' }] } });
    expect(resultFor(result, dests[1])).toMatchObject({ ok: true, committed: true });
    expect(await snapshotOf(dests[0])).toEqual(before);
    expect(readdirSync(dests[1]).sort()).toEqual(['keep.txt', 'new.txt']);
  });
});

describe('releases with maxDelete', () => {
  // A release is a hard-link clone of the current one; with --delete, what the source no longer has
  // is deleted from the clone, and those deletions count against the limit as any others.
  it('counts the deletions made in the new release: over the limit, current stays and the new release is discarded', async () => {
    const src = join(tempDir(), 'src');
    await writeTree(src, { 'keep.txt': 'keep', 'a.txt': 'a', 'b.txt': 'b', 'c/d.txt': 'd' });
    const dests = [join(tempDir(), 'd1'), join(tempDir(), 'd2')];
    const options = { destinations: dests, localAgent: 'in-process' as const, delete: true };
    const first = await runFanout({ source: `${src}/`, ...options, release: { id: 'r1' } });
    expect(first.result.ok).toBe(true);
    // Three entries leave the source (the directory c with its file is one); destination 1 has one more.
    for (const name of ['a.txt', 'b.txt', 'c']) rmSync(join(src, name), { recursive: true });
    await writeTree(src, { 'new.txt': 'new' });
    writeFileSync(join(dests[0], 'releases', 'r1', 'z.txt'), 'z');

    const second = await runFanout({ source: `${src}/`, ...options, maxDelete: 3, release: { id: 'r2' } });
    expect(second.result.ok).toBe(false);
    const [one, two] = dests.map((d) => resultFor(second.result, d));
    expect(one).toMatchObject({ ok: false, committed: false });
    expect(one.summary.errors.map((e) => [e.path, e.code, e.message])).toEqual([
      ['', 'MAX_DELETE', 'the --max-delete limit stopped deletions: 1 of 4 extraneous entries skipped (at most 3 per run)'],
    ]);
    expect(two).toMatchObject({ ok: true, committed: true, summary: { deleted: 3, created: 1 } });
    expect(readlinkSync(join(dests[0], 'current'))).toBe('releases/r1');
    expect(readdirSync(join(dests[0], 'releases'))).toEqual(['r1']);
    expect(readlinkSync(join(dests[1], 'current'))).toBe('releases/r2');
    expect(readdirSync(join(dests[1], 'current')).sort()).toEqual(['keep.txt', 'new.txt']);
    // The release switched away from still holds what the new one dropped.
    expect(readFileSync(join(dests[1], 'releases', 'r1', 'c', 'd.txt'), 'utf8')).toBe('d');

    // Without --delete the clone keeps them: nothing is deleted, nothing is limited.
    const kept = await runFanout({ source: `${src}/`, ...options, delete: false, maxDelete: 0, release: { id: 'r3' } });
    expect(kept.result.ok).toBe(true);
    expect(readlinkSync(join(dests[0], 'current'))).toBe('releases/r3');
    expect(existsSync(join(dests[0], 'current', 'a.txt'))).toBe(true);
    expect(existsSync(join(dests[0], 'current', 'new.txt'))).toBe(true);
  });
});
