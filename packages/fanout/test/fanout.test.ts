/**
 * The fan-out against local destinations (agents in this process and in child processes): every
 * destination ends identical to the source, each changed file is read once and costs one delta per
 * distinct basis, drifted and missing files get their own stream, and a failing destination or a
 * source file that changes while it is read never makes destinations disagree.
 */
import { spawn } from 'node:child_process';
import fs, { existsSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { rm, utimes, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BASE_MTIME_MS,
  diffTrees,
  expectAllIdentical,
  file,
  hashOf,
  leftovers,
  pseudoRandom,
  resultFor,
  runFanout,
  sha256,
  pinNaturalTimes,
  snapshotOf,
  useTempDirs,
  writeTree,
} from './helpers.js';

const MiB = 1024 * 1024;
type LocalAgent = 'in-process' | 'child';
const tempDir = useTempDirs('deltacast-fanout-');

/** Regular files in SOURCE_SPEC (the symlink and directories are not files). */
const SOURCE_FILES = 5;
const SOURCE_SPEC = {
  'big.bin': file(pseudoRandom(2 * MiB, 7)),
  'a.txt': file('alpha\n'),
  empty: file(''),
  'dir/b.txt': file('bravo', { mode: 0o600 }),
  'dir/sub/c.bin': file(pseudoRandom(100_000, 3)),
  'dir/link': { kind: 'link' as const, target: '../a.txt', mtimeMs: BASE_MTIME_MS },
};

async function setup(count: number) {
  const base = tempDir();
  const src = join(base, 'src');
  await writeTree(src, SOURCE_SPEC);
  const roots = Array.from({ length: count }, (_, i) => join(base, `dst${i + 1}`));
  return { base, src, roots };
}

/** big.bin with 100 bytes changed (in the middle by default) and a newer mtime. */
async function editBig(root: string, at = MiB, mtimeMs = BASE_MTIME_MS + 1000): Promise<Uint8Array> {
  const data = pseudoRandom(2 * MiB, 7);
  data.set(pseudoRandom(100, 99), at);
  await writeTree(root, { 'big.bin': file(data, { mtimeMs }) });
  return data;
}

describe.each<LocalAgent>(['in-process', 'child'])('four local destinations (%s agents)', (localAgent) => {
  it('initial sync: one literal stream per file, read once, every destination identical', async () => {
    const { src, roots } = await setup(4);
    const { result, deltas, errors } = await runFanout({ source: `${src}/`, destinations: roots, localAgent });

    expect(errors).toEqual([]);
    expect(result.ok).toBe(true);
    await expectAllIdentical(src, roots);
    expect(result).toMatchObject({ files: SOURCE_FILES, deltasComputed: SOURCE_FILES, destinationFiles: 4 * SOURCE_FILES, sourceReads: SOURCE_FILES });
    expect(result.destinations.map((d) => d.destination)).toEqual(roots);
    for (const d of result.destinations) {
      expect(d.ok).toBe(true);
      expect(d.summary).toMatchObject({ created: SOURCE_FILES, updated: 0, symlinks: 1, directories: 2, errors: [] });
      expect(d.summary.totalBytes).toBe(2 * MiB + 6 + 5 + 100_000);
    }
    expect(deltas).toHaveLength(SOURCE_FILES);
    expect(new Set(deltas.map((d) => d.path))).toEqual(new Set(['big.bin', 'a.txt', 'empty', 'dir/b.txt', 'dir/sub/c.bin']));
    for (const d of deltas) {
      expect(d.basis).toBe('new');
      expect([...d.destinations].sort()).toEqual([...roots].sort());
      expect(d.matchedBytes).toBe(0);
    }
    const big = deltas.find((d) => d.path === 'big.bin')!;
    expect(big.literalBytes).toBe(2 * MiB);
    expect(big.deltaBytes).toBeGreaterThan(2 * MiB);
  });

  it('an edit to a big file is one shared delta for all four; an unchanged run sends nothing', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent })).result.ok).toBe(true);

    await editBig(src);
    const edit = await runFanout({ source: `${src}/`, destinations: roots, localAgent });
    expect(edit.errors).toEqual([]);
    expect(edit.result).toMatchObject({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 4, sourceReads: 1 });
    await expectAllIdentical(src, roots);
    expect(edit.deltas).toHaveLength(1);
    const [delta] = edit.deltas;
    expect(delta).toMatchObject({ path: 'big.bin', basis: 'shared' });
    expect([...delta.destinations].sort()).toEqual([...roots].sort());
    // One or two blocks around the edit travel as literal data; the rest is matched.
    expect(delta.deltaBytes).toBeLessThan(16 * 1024);
    expect(delta.literalBytes).toBeLessThan(16 * 1024);
    expect(delta.matchedBytes + delta.literalBytes).toBe(2 * MiB);
    for (const d of edit.result.destinations) {
      expect(d.summary).toMatchObject({ ok: true, created: 0, updated: 1, deleted: 0 });
      expect(d.summary.sentBytes).toBeLessThan(16 * 1024);
    }

    const still = await runFanout({ source: `${src}/`, destinations: roots, localAgent });
    expect(still.result).toMatchObject({ ok: true, files: 0, deltasComputed: 0, destinationFiles: 0, sourceReads: 0 });
    expect(still.deltas).toEqual([]);
    expect(still.events.filter((e) => e.type === 'file' || e.type === 'item')).toEqual([]);
    for (const d of still.result.destinations) expect(d.summary).toMatchObject({ created: 0, updated: 0, sentBytes: 0, totalBytes: 0 });
    await expectAllIdentical(src, roots);
  });

  it('small files go in batches: one delta per distinct basis there too, and a basis too large for a batch is sent alone', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent })).result.ok).toBe(true);
    // dir/b.txt changes at the source; dst2's copy drifted; dst3's a.txt is a 2 MiB file now (the
    // source's a.txt changes too, so every destination needs it); dst4 lost dir/b.txt.
    await writeTree(src, { 'dir/b.txt': file('bravo, edited', { mode: 0o600, mtimeMs: BASE_MTIME_MS + 1000 }), 'a.txt': file('alpha, edited\n', { mtimeMs: BASE_MTIME_MS + 1000 }) });
    await writeTree(roots[1], { 'dir/b.txt': file('bravo, drifted there', { mode: 0o600, mtimeMs: BASE_MTIME_MS + 5000 }) });
    await writeTree(roots[2], { 'a.txt': file(pseudoRandom(2 * MiB, 5), { mtimeMs: BASE_MTIME_MS + 5000 }) });
    await rm(join(roots[3], 'dir/b.txt'));

    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 2, destinationFiles: 8 });
    await expectAllIdentical(src, roots);
    const b = run.deltas.filter((d) => d.path === 'dir/b.txt');
    // dst1 and dst3 share a basis; dst2 drifted; dst4 gets the literal stream.
    expect(b.map((d) => [d.basis, [...d.destinations].sort()]).sort()).toEqual(
      [
        ['new', [roots[3]]],
        ['shared', [roots[0], roots[2]]],
        ['shared', [roots[1]]],
      ].sort(),
    );
    // a.txt: three destinations in one batch delta; dst3's 2 MiB basis is too large for a batch, so
    // that one goes alone (its own signature and delta).
    const a = run.deltas.filter((d) => d.path === 'a.txt');
    expect(a.map((d) => d.destinations.length).sort()).toEqual([1, 3]);
    expect(a.find((d) => d.destinations.length === 1)!.destinations).toEqual([roots[2]]);
    expect(run.result.deltasComputed).toBe(5);
  });

  it('a drifted destination gets its own delta, one lacking a file the literal stream', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent })).result.ok).toBe(true);

    await editBig(src);
    // dst4's big.bin drifted (edited there, elsewhere in the file); dst3 lost a.txt.
    await editBig(roots[3], MiB / 2, BASE_MTIME_MS + 5000);
    await rm(join(roots[2], 'a.txt'));

    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 2, deltasComputed: 3, destinationFiles: 5, sourceReads: 2 });
    await expectAllIdentical(src, roots);

    const big = run.deltas.filter((d) => d.path === 'big.bin');
    expect(big).toHaveLength(2);
    expect(big.every((d) => d.basis === 'shared')).toBe(true);
    const groups = big.map((d) => [...d.destinations].sort());
    expect(groups).toContainEqual([roots[0], roots[1], roots[2]].sort());
    expect(groups).toContainEqual([roots[3]]);
    // The drifted basis differs from the new file in two places, the shared one in one.
    const own = big.find((d) => d.destinations.length === 1)!;
    const shared = big.find((d) => d.destinations.length === 3)!;
    expect(own.literalBytes).toBeGreaterThan(shared.literalBytes);
    expect(own.matchedBytes).toBeGreaterThan(MiB);

    expect(run.deltas.filter((d) => d.path === 'a.txt')).toEqual([
      expect.objectContaining({ basis: 'new', destinations: [roots[2]], literalBytes: 6, matchedBytes: 0 }),
    ]);
    expect(resultFor(run.result, roots[2]).summary).toMatchObject({ created: 1, updated: 1 });
    expect(resultFor(run.result, roots[3]).summary).toMatchObject({ created: 0, updated: 1 });
  });
});

describe('delete, excludes, sequential and dry runs (in-process agents)', () => {
  const localAgent = 'in-process' as const;

  it('delete removes extraneous entries on each destination; without it they stay', async () => {
    const { src, roots } = await setup(3);
    await writeTree(roots[1], { 'extra.txt': 'extra', 'dir/old/deep.txt': 'deep' });
    await writeTree(roots[2], { 'dir/sub/stale.bin': 'stale' });

    const keep = await runFanout({ source: `${src}/`, destinations: roots, localAgent });
    expect(keep.result.ok).toBe(true);
    expect(existsSync(join(roots[1], 'extra.txt'))).toBe(true);
    expect(existsSync(join(roots[2], 'dir/sub/stale.bin'))).toBe(true);
    expect(await diffTrees(src, roots[0])).toEqual([]);

    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent, delete: true });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 0 });
    expect(run.result.destinations.map((d) => d.summary.deleted)).toEqual([0, 2, 1]);
    await expectAllIdentical(src, roots);
  });

  it('excluded paths are neither sent nor deleted', async () => {
    const { src, roots } = await setup(3);
    await writeTree(src, { 'logs/app.log': 'source log', 'keep.log': 'source log 2' });
    await writeTree(roots[0], { 'theirs.log': 'destination log', 'other.txt': 'other' });
    const filters = [{ action: 'exclude' as const, pattern: '*.log' }];

    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent, delete: true, filters });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: SOURCE_FILES, deltasComputed: SOURCE_FILES, destinationFiles: 3 * SOURCE_FILES });
    expect(run.deltas.some((d) => d.path.endsWith('.log'))).toBe(false);
    for (const root of roots) {
      expect(existsSync(join(root, 'keep.log'))).toBe(false);
      expect(existsSync(join(root, 'logs/app.log'))).toBe(false);
      expect(await hashOf(root, 'big.bin')).toBe(sha256(SOURCE_SPEC['big.bin'].data));
    }
    expect(readFileSync(join(roots[0], 'theirs.log'), 'utf8')).toBe('destination log');
    expect(existsSync(join(roots[0], 'other.txt'))).toBe(false);
    expect(resultFor(run.result, roots[0]).summary.deleted).toBe(1);
  });

  it('one destination at a time (parallel 1), compressed, gives the same result', async () => {
    const { src, roots } = await setup(3);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent, parallel: 1, compress: true });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: SOURCE_FILES, deltasComputed: SOURCE_FILES, destinationFiles: 3 * SOURCE_FILES, sourceReads: SOURCE_FILES });
    await expectAllIdentical(src, roots);
    await editBig(src);
    const edit = await runFanout({ source: `${src}/`, destinations: roots, localAgent, parallel: 1, compress: true });
    expect(edit.result).toMatchObject({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 3 });
    await expectAllIdentical(src, roots);
  });

  it('a dry run changes nothing anywhere and reports each destination’s plan', async () => {
    const { src, roots } = await setup(3);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent })).result.ok).toBe(true);
    await editBig(src);
    await writeTree(src, { 'new.txt': 'new' });
    await rm(join(roots[1], 'a.txt'));
    await writeTree(roots[2], { 'extra.txt': 'extra' });
    // Whole seconds: the lock's restoring of the root's mtime is exact for those (see the next test).
    for (const root of roots) await pinNaturalTimes(root);
    const before = await Promise.all(roots.map((r) => snapshotOf(r)));

    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent, delete: true, dryRun: true });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, deltasComputed: 0, destinationFiles: 0, sourceReads: 0 });
    expect(run.deltas).toEqual([]);
    expect(run.events.filter((e) => e.type === 'file')).toEqual([]);
    const after = await Promise.all(roots.map((r) => snapshotOf(r)));
    expect(after).toEqual(before);

    const summaries = run.result.destinations.map((d) => d.summary);
    for (const s of summaries) expect(s.dryRun).toBe(true);
    expect(summaries[0]).toMatchObject({ created: 1, updated: 1, deleted: 0 });
    expect(summaries[1]).toMatchObject({ created: 2, updated: 1, deleted: 0 });
    expect(summaries[2]).toMatchObject({ created: 1, updated: 1, deleted: 1 });
    const items = (root: string) =>
      run.events
        // Directories' own attributes (the roots' mtimes, as the second of the edits decides) left out.
        .filter((e) => e.type === 'item' && e.destination === root && !(e.kind === 'attrs' && e.entryType === 'd'))
        .map((e) => (e.type === 'item' ? `${e.kind} ${e.path}` : ''))
        .sort();
    expect(items(roots[0])).toEqual(['create new.txt', 'update big.bin']);
    expect(items(roots[1])).toEqual(['create a.txt', 'create new.txt', 'update big.bin']);
    expect(items(roots[2])).toEqual(['create new.txt', 'delete extra.txt', 'update big.bin']);
  });
});

describe('a dry run', () => {
  // A dry run writes nothing to a destination, not even a lock file whose making and removing move
  // the root's mtime (put back only to the millisecond).
  it('leaves each destination root’s mtime exactly as it was', async () => {
    const { src, roots } = await setup(2);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    for (const root of roots) utimesSync(root, 1_700_000_000.123456, 1_700_000_000.123456);
    const before = roots.map((r) => statSync(r, { bigint: true }).mtimeNs);
    expect(before.every((ns) => ns % 1_000_000n !== 0n)).toBe(true);
    await writeTree(src, { 'new.txt': 'new' });
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', dryRun: true });
    expect(run.result.ok).toBe(true);
    expect(roots.map((r) => statSync(r, { bigint: true }).mtimeNs)).toEqual(before);
  });
});

describe('checksum (in-process agents)', () => {
  it('finds a file corrupted in place on one destination (same size and mtime) and repairs it alone', async () => {
    const { src, roots } = await setup(3);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    const corrupt = pseudoRandom(2 * MiB, 7);
    corrupt.fill(0, 4096, 8192);
    await writeTree(roots[1], { 'big.bin': file(corrupt) });

    const quick = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' });
    expect(quick.result).toMatchObject({ ok: true, files: 0 });
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', checksum: true });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 1 });
    expect(run.deltas).toEqual([expect.objectContaining({ path: 'big.bin', basis: 'shared', destinations: [roots[1]] })]);
    expect(run.deltas[0].matchedBytes).toBeGreaterThan(2 * MiB - 16 * 1024);
    await expectAllIdentical(src, roots);
  });

  // Each destination's comparison used to hash the source file again: N destinations, N reads.
  it('hashes each source file once per run, not once per destination', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    const big = join(src, 'big.bin');
    // Opens for reading, by either API (nothing changed, so none is a stat-only open around a send).
    const original = { createReadStream: fs.createReadStream, openSync: fs.openSync };
    let opened = 0;
    fs.createReadStream = ((...args: Parameters<typeof fs.createReadStream>) => {
      if (args[0] === big) opened++;
      return original.createReadStream(...args);
    }) as typeof fs.createReadStream;
    fs.openSync = ((...args: Parameters<typeof fs.openSync>) => {
      if (args[0] === big) opened++;
      return original.openSync(...args);
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    try {
      const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', checksum: true });
      expect(run.result).toMatchObject({ ok: true, files: 0 });
    } finally {
      Object.assign(fs, original);
      syncBuiltinESMExports();
    }
    expect(opened).toBe(1);
  });
});

describe('a destination that cannot be opened', () => {
  it('is reported failed in its own result while the others complete', async () => {
    const { base, src, roots } = await setup(3);
    // The agent cannot create a root whose parent is a regular file.
    writeFileSync(join(base, 'not-a-dir'), 'x');
    const broken = join(base, 'not-a-dir', 'dst');
    const destinations = [roots[0], broken, roots[1], roots[2]];

    for (const localAgent of ['in-process', 'child'] as const) {
      const run = await runFanout({ source: `${src}/`, destinations, localAgent });
      expect(run.result.ok).toBe(false);
      expect(run.result.destinations.map((d) => d.ok)).toEqual([true, false, true, true]);
      const failed = resultFor(run.result, broken).summary;
      expect(failed.errors).toEqual([expect.objectContaining({ path: '', code: 'ENOTDIR' })]);
      expect(failed).toMatchObject({ created: 0, updated: 0 });
      expect(run.errors.map((e) => e.destination)).toEqual([broken]);
      for (const d of run.deltas) expect(d.destinations).not.toContain(broken);
      await expectAllIdentical(src, roots);
    }
    expect(statSync(join(base, 'not-a-dir')).isFile()).toBe(true);
  });
});

describe('a source file that changes while it is read', () => {
  let restore: (() => void) | undefined;
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  /**
   * Makes the next `times` reads of `path` see it grow: right after the first chunk of each read
   * comes back, a few bytes are appended. Reads are synchronous in this process, so only patching
   * node:fs (live ESM bindings, refreshed by syncBuiltinESMExports) can put a write inside one.
   */
  function growDuringReads(path: string, times: number): () => void {
    const original = { openSync: fs.openSync, readSync: fs.readSync, closeSync: fs.closeSync };
    const fresh = new Set<number>();
    let left = times;
    fs.openSync = ((...args: Parameters<typeof fs.openSync>) => {
      const fd = original.openSync(...args);
      if (args[0] === path) fresh.add(fd);
      return fd;
    }) as typeof fs.openSync;
    fs.readSync = ((fd: number, ...rest: unknown[]) => {
      const n = (original.readSync as (...a: unknown[]) => number)(fd, ...rest);
      if (n > 0 && fresh.delete(fd) && left > 0) {
        left--;
        fs.appendFileSync(path, 'grown');
      }
      return n;
    }) as typeof fs.readSync;
    fs.closeSync = ((fd: number) => {
      fresh.delete(fd);
      original.closeSync(fd);
    }) as typeof fs.closeSync;
    syncBuiltinESMExports();
    return () => {
      Object.assign(fs, original);
      syncBuiltinESMExports();
    };
  }

  it('is read again when it changed during one read, and every destination gets the steady file', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    await editBig(src);
    restore = growDuringReads(join(src, 'big.bin'), 1);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' });
    restore();
    restore = undefined;

    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 4, sourceReads: 2 });
    const grown = readFileSync(join(src, 'big.bin'));
    expect(grown.length).toBe(2 * MiB + 5);
    for (const root of roots) expect(await hashOf(root, 'big.bin')).toBe(sha256(grown));
    // The attributes sent are those of the steady file, not the scan's.
    const mtime = statSync(join(src, 'big.bin')).mtimeMs;
    expect(mtime).not.toBe(BASE_MTIME_MS + 1000);
    for (const root of roots) expect(Math.abs(statSync(join(root, 'big.bin')).mtimeMs - mtime)).toBeLessThan(1);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    await expectAllIdentical(src, roots);
  });

  it('is reported as SOURCE_CHANGED on every destination, and left as it was, when it never holds still', async () => {
    const { src, roots } = await setup(4);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    const old = sha256(SOURCE_SPEC['big.bin'].data);
    await editBig(src);
    await writeTree(src, { 'a.txt': file('alpha 2\n', { mtimeMs: BASE_MTIME_MS + 1000 }) });
    restore = growDuringReads(join(src, 'big.bin'), Number.POSITIVE_INFINITY);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' });
    restore();
    restore = undefined;

    expect(run.result.ok).toBe(false);
    expect(run.result).toMatchObject({ files: 2, sourceReads: 1 + 3, deltasComputed: 1, destinationFiles: 4 });
    expect(run.deltas.map((d) => d.path)).toEqual(['a.txt']);
    for (const d of run.result.destinations) {
      expect(d.ok).toBe(false);
      expect(d.summary.errors).toEqual([expect.objectContaining({ path: 'big.bin', code: 'SOURCE_CHANGED' })]);
      expect(d.summary).toMatchObject({ updated: 1 });
    }
    for (const root of roots) {
      expect(await hashOf(root, 'big.bin')).toBe(old);
      expect(readFileSync(join(root, 'a.txt'), 'utf8')).toBe('alpha 2\n');
      expect(await leftovers(root)).toEqual([]);
    }
  });

  it('that vanishes before it is read is reported on each destination needing it; the rest arrives', async () => {
    const { src, roots } = await setup(3);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' }, (event) => {
      // 'start' comes after planning and before any file is read.
      if (event.type === 'start' && existsSync(join(src, 'dir/b.txt'))) unlinkSync(join(src, 'dir/b.txt'));
    });
    expect(run.result.ok).toBe(false);
    for (const d of run.result.destinations) {
      expect(d.summary.errors).toEqual([expect.objectContaining({ path: 'dir/b.txt', code: 'ENOENT' })]);
      expect(d.summary.created).toBe(SOURCE_FILES - 1);
    }
    expect(run.result).toMatchObject({ files: SOURCE_FILES, deltasComputed: SOURCE_FILES - 1 });
    for (const root of roots) {
      expect(existsSync(join(root, 'dir/b.txt'))).toBe(false);
      expect(await hashOf(root, 'big.bin')).toBe(sha256(SOURCE_SPEC['big.bin'].data));
      expect(await leftovers(root)).toEqual([]);
    }
    // The unlink moved dir's mtime after the scan; the next run brings that over.
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result).toMatchObject({ ok: true, files: 0 });
    await expectAllIdentical(src, roots);
  });

  it('that vanishes before it is read is not counted as read', async () => {
    const { src, roots } = await setup(2);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' }, (event) => {
      if (event.type === 'start' && existsSync(join(src, 'dir/b.txt'))) unlinkSync(join(src, 'dir/b.txt'));
    });
    expect(run.result.sourceReads).toBe(SOURCE_FILES - 1);
  });

  // Destinations planned "unchanged" hold the scanned version; if the file changed since the scan,
  // sending the new version only to the others would leave them disagreeing, all reporting ok.
  it('that changes after planning ends the same on every destination, or is reported', async () => {
    const { src, roots } = await setup(2);
    await writeTree(src, { 'f.txt': file('v1') });
    await writeTree(roots[0], { 'f.txt': file('v1') });
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' }, (event) => {
      if (event.type === 'start' && event.destination === roots[0]) {
        writeFileSync(join(src, 'f.txt'), 'v2 longer');
        utimesSync(join(src, 'f.txt'), (BASE_MTIME_MS + 5000) / 1000, (BASE_MTIME_MS + 5000) / 1000);
      }
    });
    const contents = roots.map((r) => readFileSync(join(r, 'f.txt'), 'utf8'));
    const reported = run.result.destinations.map((d) => d.summary.errors.some((e) => e.path === 'f.txt'));
    if (reported.every(Boolean)) expect(contents).toEqual(['v1', 'v1']);
    else expect(new Set(contents).size, `contents ${JSON.stringify(contents)}, ok ${run.result.ok}`).toBe(1);
  });

  // The same with the change inside the first read: readOnce() reads the file again and sends the
  // new version to the destinations that needed the scanned one, while one that held the scanned
  // version was planned "unchanged" and keeps it. Every destination reports ok, yet dst1 keeps "v1"
  // and dst2 gets "v1grown".
  it('that changes during its first read ends the same on every destination, or is reported', async () => {
    const { src, roots } = await setup(2);
    await writeTree(src, { 'f.txt': file('v1') });
    await writeTree(roots[0], { 'f.txt': file('v1') });
    restore = growDuringReads(join(src, 'f.txt'), 1);
    const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' });
    restore();
    restore = undefined;
    expect(run.result.sourceReads).toBe(SOURCE_FILES + 2); // the change did happen inside a read
    const contents = roots.map((r) => readFileSync(join(r, 'f.txt'), 'utf8'));
    const reported = run.result.destinations.map((d) => d.summary.errors.some((e) => e.path === 'f.txt'));
    if (reported.every(Boolean)) expect(contents).toEqual(['v1', 'v1']);
    else expect(new Set(contents).size, `contents ${JSON.stringify(contents)}, ok ${run.result.ok}`).toBe(1);
  });

  it('never leaves two destinations with different content while another process appends to it', async () => {
    const { base, src, roots } = await setup(4);
    const path = join(src, 'growing.bin');
    await writeFile(path, pseudoRandom(4 * MiB, 11));
    await utimes(path, BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
    expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
    const old = sha256(readFileSync(path));

    // Appends 4 KiB about every millisecond, up to 16 MiB, until killed.
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const fd = fs.openSync(${JSON.stringify(path)}, 'a'); const chunk = Buffer.alloc(4096, 120);
         const pause = new Int32Array(new SharedArrayBuffer(4));
         for (let n = 0; n < 4096; n++) { fs.writeSync(fd, chunk); Atomics.wait(pause, 0, 0, 1); }`,
      ],
      { stdio: 'ignore' },
    );
    try {
      for (let i = 0; i < 200 && statSync(path).size === 4 * MiB; i++) await sleep(5);
      expect(statSync(path).size).toBeGreaterThan(4 * MiB);
      const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' });

      const failures = run.result.destinations.map((d) => d.summary.errors.filter((e) => e.path === 'growing.bin'));
      const hashes = await Promise.all(roots.map((r) => hashOf(r, 'growing.bin')));
      if (failures.some((f) => f.length > 0)) {
        // Reported: on every destination, as SOURCE_CHANGED, and nobody received it.
        for (const f of failures) expect(f.map((e) => e.code)).toEqual(['SOURCE_CHANGED']);
        expect(hashes).toEqual(roots.map(() => old));
        expect(run.deltas.filter((d) => d.path === 'growing.bin')).toEqual([]);
      } else {
        // Sent: the same bytes everywhere, a prefix of the file as it is now, and no shorter than before.
        expect(new Set(hashes).size).toBe(1);
        const sent = readFileSync(join(roots[0], 'growing.bin'));
        expect(sent.length).toBeGreaterThan(4 * MiB);
        expect(sha256(readFileSync(path).subarray(0, sent.length))).toBe(hashes[0]);
      }
      for (const root of roots) expect(await leftovers(root)).toEqual([]);
      // Whatever happened, the other files are in place everywhere.
      for (const root of roots) expect(await hashOf(root, 'big.bin')).toBe(sha256(SOURCE_SPEC['big.bin'].data));
    } finally {
      writer.kill();
    }
  });
});
