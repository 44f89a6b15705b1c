/**
 * -y, --fuzzy (fuzzy.ts): a new file goes as a delta against a file of its directory at the
 * destination: one of the same size and mtime (a rename), else a close name with the same extension.
 */
import { readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/errors.js';
import { decodeFuzzy, editDistance, fuzzyMatch } from '../src/fuzzy.js';
import { BASE_MTIME_MS, diffTrees, file, pseudoRandom, runSync, useTempDirs, writeTree } from './helpers/tree.js';

const tempDir = useTempDirs('deltacast-fuzzy-');
const T = BASE_MTIME_MS;

describe('fuzzyMatch', () => {
  const files = [
    { name: 'report-2026-11.pdf', size: 100, mtimeMs: T },
    { name: 'report-2026-11.txt', size: 5, mtimeMs: T },
    { name: 'other.bin', size: 42, mtimeMs: T + 5_000 },
    { name: 'photo.jpg', size: 7, mtimeMs: T },
  ];

  it('takes a file of the same size and mtime first, whatever its name', () => {
    expect(fuzzyMatch('renamed.dat', 42, T + 5_000, files)).toBe('other.bin');
  });

  it('else the closest name with the same extension, within a third of the name in edits', () => {
    expect(fuzzyMatch('report-2026-12.pdf', 200, T + 9_000, files)).toBe('report-2026-11.pdf');
    expect(fuzzyMatch('report-2026-12.txt', 200, T + 9_000, files)).toBe('report-2026-11.txt');
    expect(fuzzyMatch('summary.pdf', 200, T + 9_000, files)).toBeUndefined(); // too far
    expect(fuzzyMatch('photo.png', 200, T + 9_000, files)).toBeUndefined(); // another extension
  });

  it('never takes the file itself', () => {
    expect(fuzzyMatch('other.bin', 42, T + 5_000, files)).toBeUndefined();
  });

  it('counts edits, giving up past the limit', () => {
    expect(editDistance('kitten', 'sitting', 5)).toBe(3);
    expect(editDistance('abc', 'abc', 0)).toBe(0);
    expect(editDistance('abcdef', 'uvwxyz', 2)).toBe(3);
  });

  it('checks the request field by field', () => {
    expect(decodeFuzzy({ t: 'fuzzy', f: [['a.txt', 3, T]] })).toEqual([{ path: 'a.txt', size: 3, mtime: T }]);
    for (const f of [[], [['a.txt', -1, T]], [['', 3, T]], [['a.txt', 3]], 'x']) expect(() => decodeFuzzy({ t: 'fuzzy', f })).toThrow(ProtocolError);
  });
});

describe('sync with fuzzy', () => {
  it('sends a renamed file, and a renamed and edited one, as deltas against the old names; --delete then removes those', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    const big = pseudoRandom(500_000, 3);
    const log = pseudoRandom(300_000, 4);
    await writeTree(src, { 'data/archive-01.bin': file(big, { mtimeMs: T }), 'logs/app-11.log': file(log, { mtimeMs: T }) });
    const dest = join(base, 'dest');
    expect(await runSync(`${src}/`, dest)).toMatchObject({ ok: true, created: 2 });

    renameSync(join(src, 'data/archive-01.bin'), join(src, 'data/renamed.bin')); // same size and mtime
    const edited = Buffer.from(log);
    edited.write('a line that changed', 150_000);
    writeFileSync(join(src, 'logs/app-12.log'), edited);
    utimesSync(join(src, 'logs/app-12.log'), (T + 60_000) / 1000, (T + 60_000) / 1000);
    renameSync(join(src, 'logs/app-11.log'), join(base, 'gone.log'));

    const summary = await runSync(`${src}/`, dest, { fuzzy: true, delete: true });
    expect(summary).toMatchObject({ ok: true, created: 2, deleted: 2 });
    expect(summary.matchedBytes).toBeGreaterThan(790_000);
    expect(summary.literalBytes).toBeLessThan(10_000);
    expect(await diffTrees(src, dest)).toEqual([]);
    expect(readdirSync(join(dest, 'data'))).toEqual(['renamed.bin']); // no basis copy left behind
    expect(readdirSync(join(dest, 'logs'))).toEqual(['app-12.log']);
  });

  it('without a close file, or in a dry run, sends the file whole and leaves nothing behind', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'a/old.bin': file(pseudoRandom(50_000, 1), { mtimeMs: T }) });
    const dest = join(base, 'dest');
    await runSync(`${src}/`, dest);
    await writeTree(src, { 'a/unrelated-name.dat': file(pseudoRandom(60_000, 2), { mtimeMs: T + 1_000 }) });
    const dry = await runSync(`${src}/`, dest, { fuzzy: true, dryRun: true });
    expect(dry).toMatchObject({ ok: true, dryRun: true, created: 1 });
    expect(readdirSync(join(dest, 'a'))).toEqual(['old.bin']);
    const summary = await runSync(`${src}/`, dest, { fuzzy: true });
    expect(summary).toMatchObject({ ok: true, created: 1, matchedBytes: 0 });
    expect(readdirSync(join(dest, 'a')).sort()).toEqual(['old.bin', 'unrelated-name.dat']);
  });
});
