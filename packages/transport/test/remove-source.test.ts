/**
 * --remove-source-files (remove-source.ts): the source's files and symlinks go once they are at the
 * destination; directories stay; what a rule left out, and what changed since the scan, stay too.
 */
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFilter, scanSource, syncTree } from '../src/sync.js';
import { inProcessAgent } from '../src/local.js';
import { BASE_MTIME_MS, file, link, runSync, snapshotTree, useTempDirs, writeTree } from './helpers/tree.js';

const tempDir = useTempDirs('deltacast-remove-source-');
const T = BASE_MTIME_MS;

async function source(base: string): Promise<string> {
  const src = join(base, 'src');
  await writeTree(src, {
    'a.txt': file('a\n', { mtimeMs: T }),
    'sub/b.txt': file('b\n', { mtimeMs: T }),
    'sub/deep/c.txt': file('c\n', { mtimeMs: T }),
    'big.bin': file(Buffer.alloc(5_000, 1), { mtimeMs: T }),
    link: link('a.txt', { mtimeMs: T }),
  });
  return src;
}

describe('--remove-source-files', () => {
  it('moves files and symlinks, those already there unchanged too, and keeps the directories', async () => {
    const base = tempDir();
    const src = await source(base);
    const dest = join(base, 'dest');
    const before = await snapshotTree(src);
    expect(await runSync(`${src}/`, dest, { dryRun: true, removeSourceFiles: true })).toMatchObject({ ok: true, removed: 0 });
    expect([...(await snapshotTree(src)).keys()]).toEqual([...before.keys()]); // a dry run removes nothing
    // Half of it there already: sent once without removing, then a.txt edited at the source.
    await runSync(`${src}/`, dest);
    writeFileSync(join(src, 'a.txt'), 'a, edited\n');
    const summary = await runSync(`${src}/`, dest, { removeSourceFiles: true });
    expect(summary).toMatchObject({ ok: true, updated: 1, removed: 5 });
    expect([...(await snapshotTree(src)).keys()].sort()).toEqual(['sub', 'sub/deep']);
    expect([...(await snapshotTree(dest)).keys()].sort()).toEqual([...before.keys()].sort());
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('a, edited\n');
  });

  it('keeps what a transfer rule left out, and a file touched since the scan', async () => {
    const base = tempDir();
    const src = await source(base);
    const dest = join(base, 'dest');
    const options = { removeSourceFiles: true, maxSize: 1_000 };
    const filter = await buildFilter(options);
    const tree = await scanSource(`${src}/`, filter);
    // Touched after the scan (same bytes, another mtime): what arrives is the scanned version, and the newer one stays.
    utimesSync(join(src, 'sub/b.txt'), (T + 60_000) / 1000, (T + 60_000) / 1000);
    const streams = inProcessAgent();
    const summary = await syncTree(tree, { name: dest, streams, root: dest }, filter, options);
    streams.close?.();
    await streams.done;
    expect(summary.errors).toEqual([]);
    expect(summary).toMatchObject({ ok: true, removed: 3, skipped: 1 });
    expect(existsSync(join(src, 'big.bin'))).toBe(true); // --max-size left it out
    expect(existsSync(join(src, 'sub/b.txt'))).toBe(true); // changed since the scan
    expect(readdirSync(src).sort()).toEqual(['big.bin', 'sub']);
  });
});
