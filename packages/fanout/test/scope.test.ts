/**
 * The fan-out with `paths` to three local destinations: one delta per basis for a changed file in
 * scope, deletions only inside the scope, nothing outside it touched, and the same inside the scope
 * with whole-tree commits, releases (still complete: cloned from the current release), dry runs and
 * a source file that changes after planning.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BASE_MTIME_MS,
  diffTrees,
  expectAllIdentical,
  file,
  leftovers,
  pinNaturalTimes,
  pseudoRandom,
  runFanout,
  snapshotOf,
  useTempDirs,
  writeTree,
} from './helpers.js';

const tempDir = useTempDirs('deltacast-fanout-scope-');

const SPEC = {
  'a/b/c.bin': file(pseudoRandom(300_000, 11)),
  'a/e.txt': file('e'),
  'top.txt': file('top'),
  'm/old.txt': file('moving'),
  'x/y/z.txt': file('z'),
  'x/v.txt': file('v'),
  'keep/k.txt': file('k'),
};

async function setup(count = 3) {
  const base = tempDir();
  const src = join(base, 'src');
  await writeTree(src, SPEC);
  const roots = Array.from({ length: count }, (_, i) => join(base, `dst${i + 1}`));
  return { src, roots };
}

async function fullSync(src: string, roots: string[]) {
  const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true });
  expect(run.result.ok).toBe(true);
  await expectAllIdentical(src, roots);
}

/** Edits inside the scope (returned) and one outside it, at the source; drift at one destination. */
async function edit(src: string, drifted: string): Promise<string[]> {
  const data = pseudoRandom(300_000, 11);
  data.set(pseudoRandom(100, 12), 150_000);
  await writeTree(src, {
    'a/b/c.bin': file(data, { mtimeMs: BASE_MTIME_MS + 5000 }),
    'n/p/q/new.txt': file('new and nested', { mtimeMs: BASE_MTIME_MS + 6000 }),
    'top.txt': file('top, edited outside the scope', { mtimeMs: BASE_MTIME_MS + 7000 }),
  });
  await rm(join(src, 'a/e.txt'));
  await rm(join(src, 'x/y'), { recursive: true });
  await rename(join(src, 'm/old.txt'), join(src, 'm/new.txt'));
  await pinNaturalTimes(src);
  await writeFile(join(drifted, 'keep/k.txt'), 'drifted');
  return ['a/b/c.bin', 'n/p/q/new.txt', 'a/e.txt', 'x/y', 'm/old.txt', 'm/new.txt'];
}

/** Paths named in the differences between two trees. */
async function differingPaths(expected: string, actual: string): Promise<string[]> {
  const lines = await diffTrees(expected, actual);
  return [...new Set(lines.map((line) => JSON.parse(/"(?:[^"\\]|\\.)*"/.exec(line)![0]) as string))].sort();
}

describe('fan-out with paths', () => {
  it('syncs the scope to three destinations with one delta per basis and leaves everything outside it', async () => {
    const { src, roots } = await setup();
    await fullSync(src, roots);
    const scope = await edit(src, roots[1]);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true, paths: scope });
    expect(run.errors).toEqual([]);
    // c.bin: one shared basis, one delta; the two new files: one literal stream each.
    expect(run.result).toMatchObject({ ok: true, files: 3, deltasComputed: 3, destinationFiles: 9, sourceReads: 3 });
    for (const d of run.result.destinations) {
      expect(d.summary, d.destination).toMatchObject({ updated: 1, created: 2, deleted: 3, directories: 3, unchanged: 0 });
    }
    for (const root of roots) {
      const expected = root === roots[1] ? ['keep/k.txt', 'top.txt'] : ['top.txt'];
      expect(await differingPaths(src, root), root).toEqual(expected);
      expect(await leftovers(root)).toEqual([]);
    }
    expect(readFileSync(join(roots[1], 'keep/k.txt'), 'utf8')).toBe('drifted');

    const whole = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true });
    expect(whole.result).toMatchObject({ ok: true, files: 2 });
    await expectAllIdentical(src, roots);
  });

  it('commits a scoped run as one tree (all-or-none) with the same result', async () => {
    const { src, roots } = await setup();
    await fullSync(src, roots);
    const scope = await edit(src, roots[0]);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true, paths: scope, commit: 'all-or-none' });
    expect(run.result.ok).toBe(true);
    expect(run.result.destinations.map((d) => d.committed)).toEqual([true, true, true]);
    expect(await differingPaths(src, roots[0])).toEqual(['keep/k.txt', 'top.txt']);
    expect(await differingPaths(src, roots[2])).toEqual(['top.txt']);
  });

  it('builds a complete release from a scoped run: the current release cloned, the scope synced', async () => {
    const { src, roots } = await setup();
    const first = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', release: { id: 'r1' } });
    expect(first.result.ok).toBe(true);
    const scope = await edit(src, join(roots[0], 'releases/r1'));
    const second = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true, paths: scope, release: { id: 'r2' } });
    expect(second.result.ok).toBe(true);
    for (const root of roots) {
      expect(readlinkSync(join(root, 'current'))).toBe('releases/r2');
      expect(readdirSync(join(root, 'releases')).sort()).toEqual(['r1', 'r2']);
      // r1 was cloned (the drift in r1 on the first destination came along), then the scope synced.
      const expected = root === roots[0] ? ['keep/k.txt', 'top.txt'] : ['top.txt'];
      expect(await differingPaths(src, join(root, 'releases/r2')), root).toEqual(expected);
    }
  });

  it('changes nothing in a dry run and counts only the scope', async () => {
    const { src, roots } = await setup();
    await fullSync(src, roots);
    const scope = await edit(src, roots[0]);
    const before = await Promise.all(roots.map((r) => snapshotOf(r)));
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', delete: true, dryRun: true, paths: scope });
    expect(run.result.ok).toBe(true);
    for (const d of run.result.destinations) expect(d.summary).toMatchObject({ dryRun: true, updated: 1, created: 2, deleted: 3, directories: 3 });
    expect(await Promise.all(roots.map((r) => snapshotOf(r)))).toEqual(before);
  });

  it('deletes nothing without delete', async () => {
    const { src, roots } = await setup(2);
    await fullSync(src, roots);
    const scope = await edit(src, roots[0]);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', paths: scope });
    expect(run.result.ok).toBe(true);
    for (const root of roots) {
      expect(existsSync(join(root, 'a/e.txt'))).toBe(true);
      expect(existsSync(join(root, 'x/y/z.txt'))).toBe(true);
      expect(existsSync(join(root, 'm/old.txt'))).toBe(true);
      expect(readFileSync(join(root, 'm/new.txt'), 'utf8')).toBe('moving');
    }
  });

  // As in fanout.test.ts: a destination planned "unchanged" holds the scanned version; a file in
  // scope that changes after planning goes to it too (or is reported everywhere).
  it('widens a file in scope that changes after planning to every destination', async () => {
    const { src, roots } = await setup(3);
    await fullSync(src, roots);
    await writeTree(src, { 'f/f.txt': file('v1') });
    await writeTree(roots[0], { 'f/f.txt': file('v1') });
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', paths: ['f'] }, (event) => {
      if (event.type === 'start' && event.destination === roots[0]) {
        writeFileSync(join(src, 'f/f.txt'), 'v2 longer');
        utimesSync(join(src, 'f/f.txt'), (BASE_MTIME_MS + 5000) / 1000, (BASE_MTIME_MS + 5000) / 1000);
      }
    });
    const contents = roots.map((r) => readFileSync(join(r, 'f/f.txt'), 'utf8'));
    const reported = run.result.destinations.map((d) => d.summary.errors.some((e) => e.path === 'f/f.txt'));
    if (reported.every(Boolean)) expect(contents).toEqual(['v1', 'v1', 'v1']);
    else expect(contents).toEqual(['v2 longer', 'v2 longer', 'v2 longer']);
  });
});
