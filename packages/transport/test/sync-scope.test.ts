/**
 * sync() with `paths` on a local destination: what is in scope ends as the source has it (changed,
 * created under missing parents, renamed, deleted with delete), what is outside is never touched even
 * when it differs, and the summary counts only the scope. A whole sync afterwards finds only the
 * differences left outside the scope.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { SyncEvent, SyncSummary } from '../src/events.js';
import { childProcessAgent } from '../src/local.js';
import { buildFilter, scanSource, sync, syncTree, type SyncOptions } from '../src/sync.js';
import {
  BASE_MTIME_MS,
  diffTrees,
  file,
  link,
  pinNaturalTimes,
  pseudoRandom,
  requireBuiltAgent,
  snapshotTree,
  useTempDirs,
  writeTree,
  type TreeSpec,
} from './helpers/tree.js';

const tempDir = useTempDirs('deltacast-sync-scope-');

const SPEC: TreeSpec = {
  'a/b/c.bin': file(pseudoRandom(200_000, 5)),
  'a/e.txt': 'e',
  'top.txt': 'top',
  'm/old.txt': 'moving',
  'x/y/z.txt': 'z',
  'x/y/deeper/w.txt': 'w',
  'x/v.txt': 'v',
  'keep/k.txt': 'k',
  'links/l': link('../top.txt'),
};

async function setup() {
  const base = tempDir();
  const src = join(base, 'src');
  const dst = join(base, 'dst');
  await writeTree(src, SPEC);
  const first = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process' });
  expect(first.errors).toEqual([]);
  expect(await diffTrees(src, dst)).toEqual([]);
  return { src, dst };
}

/**
 * sync() itself with an in-process agent; with a child-process agent, the same steps through the built
 * agent (sync() from ../src would look for the agent beside the sources).
 */
async function syncWith(agent: 'in-process' | 'child', options: Omit<SyncOptions, 'localAgent'>): Promise<SyncSummary> {
  if (agent === 'in-process') return sync({ ...options, localAgent: 'in-process' });
  const filter = await buildFilter(options);
  const streams = childProcessAgent([process.execPath, requireBuiltAgent()]);
  try {
    const tree = scanSource(options.source, filter, { paths: options.paths });
    return await syncTree(tree, { name: options.destination, streams, root: options.destination }, filter, options);
  } finally {
    streams.close?.();
  }
}

/** Paths named in the differences between two trees. */
async function differingPaths(src: string, dst: string): Promise<string[]> {
  const lines = await diffTrees(src, dst);
  return [...new Set(lines.map((line) => JSON.parse(/"(?:[^"\\]|\\.)*"/.exec(line)![0]) as string))].sort();
}

/** Source edits inside the scope returned, one edit outside it, and a drift at the destination. */
async function editBoth(src: string, dst: string): Promise<string[]> {
  const edited = pseudoRandom(200_000, 5);
  edited.set(pseudoRandom(64, 9), 100_000);
  await writeTree(src, {
    'a/b/c.bin': file(edited, { mtimeMs: BASE_MTIME_MS + 5000 }),
    'n/p/q/new.txt': file('brand new', { mtimeMs: BASE_MTIME_MS + 6000 }),
    // Outside the scope: the destination keeps its old copy.
    'top.txt': file('top, edited', { mtimeMs: BASE_MTIME_MS + 7000 }),
  });
  await rm(join(src, 'a/e.txt'));
  await rm(join(src, 'x/y'), { recursive: true });
  await rename(join(src, 'm/old.txt'), join(src, 'm/new.txt'));
  await pinNaturalTimes(src);
  // Drift at the destination, outside the scope: never touched by a scoped run.
  await writeFile(join(dst, 'keep/k.txt'), 'drifted');
  return ['a/b/c.bin', 'n/p/q/new.txt', 'a/e.txt', 'x/y', 'm/old.txt', 'm/new.txt'];
}

describe('sync() with paths', () => {
  it.each(['in-process', 'child'] as const)(
    'changes, creates under missing parents, renames and deletes inside the scope and nothing outside it (%s agent)',
    async (localAgent) => {
      const { src, dst } = await setup();
      const scope = await editBoth(src, dst);
      const events: SyncEvent[] = [];
      const summary = await syncWith(localAgent, { source: `${src}/`, destination: dst, delete: true, paths: scope, onEvent: (e) => events.push(e) });
      expect(summary.errors).toEqual([]);
      expect(summary).toMatchObject({ ok: true, updated: 1, created: 2, deleted: 3, directories: 3, symlinks: 0, unchanged: 0 });
      // The edit was sent as a delta against the destination's copy.
      expect(summary.matchedBytes).toBeGreaterThan(150_000);
      // Directories whose own mtime differs are items too (`.d..t......`), as the second they were
      // changed in decides: left out here.
      const items = events
        .filter((e): e is Extract<SyncEvent, { type: 'item' }> => e.type === 'item' && !(e.kind === 'attrs' && e.entryType === 'd'))
        .map((e) => `${e.kind} ${e.path}`);
      expect(items.sort()).toEqual(
        ['delete a/e.txt', 'delete m/old.txt', 'delete x/y', 'delete x/y/deeper', 'delete x/y/deeper/w.txt', 'delete x/y/z.txt', 'mkdir n', 'mkdir n/p', 'mkdir n/p/q', 'create m/new.txt', 'create n/p/q/new.txt', 'update a/b/c.bin'].sort(),
      );
      // Only the edit outside the scope and the destination's drift are left; parents' times are restored.
      expect(await differingPaths(src, dst)).toEqual(['keep/k.txt', 'top.txt']);
      expect(await readFile(join(dst, 'keep/k.txt'), 'utf8')).toBe('drifted');

      const whole = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true });
      expect(whole).toMatchObject({ ok: true, updated: 2, created: 0, deleted: 0, directories: 0 });
      expect(await diffTrees(src, dst)).toEqual([]);
    },
  );

  it('deletes nothing without delete, and a dry run changes nothing but counts the same', async () => {
    const { src, dst } = await setup();
    const scope = await editBoth(src, dst);
    const before = await snapshotTree(dst, { includeRoot: true });
    const dry = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', delete: true, dryRun: true, paths: scope });
    expect(dry).toMatchObject({ ok: true, dryRun: true, updated: 1, created: 2, deleted: 3, directories: 3 });
    expect(await snapshotTree(dst, { includeRoot: true })).toEqual(before);

    const kept = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', paths: scope });
    expect(kept).toMatchObject({ ok: true, updated: 1, created: 2, deleted: 0, directories: 3 });
    expect(await differingPaths(src, dst)).toEqual(['a/e.txt', 'keep/k.txt', 'm/old.txt', 'top.txt', 'x/y', 'x/y/deeper', 'x/y/deeper/w.txt', 'x/y/z.txt']);
  });

  it('compares content in scope with checksum, and leaves a same-size edit outside it', async () => {
    const { src, dst } = await setup();
    // Same size, same mtime, other content: only --checksum sees these.
    await writeTree(src, { 'a/e.txt': 'E', 'x/v.txt': 'V' });
    const summary = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', checksum: true, paths: ['a'] });
    expect(summary).toMatchObject({ ok: true, updated: 1, unchanged: 1 });
    expect(await differingPaths(src, dst)).toEqual(['x/v.txt']);
  });

  it('scopes a "dir" source by paths under dir/', async () => {
    const { src } = await setup();
    const dst = join(tempDir(), 'dst');
    const summary = await sync({ source: src, destination: dst, localAgent: 'in-process', paths: ['src/a/b/c.bin', 'src/links'] });
    expect(summary).toMatchObject({ ok: true, created: 1, symlinks: 1, directories: 4 });
    const snapshot = await snapshotTree(dst);
    expect([...snapshot.keys()]).toEqual(['src', 'src/a', 'src/a/b', 'src/a/b/c.bin', 'src/links', 'src/links/l']);
    expect(snapshot.get('src/a/b')?.mtimeMs).toBe((await snapshotTree(src)).get('a/b')?.mtimeMs);
  });

  it('refuses a malformed or foreign scope path before changing anything', async () => {
    const { src, dst } = await setup();
    const before = await snapshotTree(dst, { includeRoot: true });
    // sync() settles once its agent has let go of the lock: the next run starts at once.
    await expect(sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', paths: ['../x'] })).rejects.toMatchObject({ code: 'PATH_ESCAPE' });
    expect(existsSync(join(dst, '.deltacast-lock'))).toBe(false);
    await expect(sync({ source: src, destination: dst, localAgent: 'in-process', paths: ['a/e.txt'] })).rejects.toMatchObject({ code: 'PATH_INVALID' });
    expect(existsSync(join(dst, '.deltacast-lock'))).toBe(false);
    expect(await snapshotTree(dst, { includeRoot: true })).toEqual(before);
  });
});
