/**
 * --files-from (rsync's, as with -r): the list's parsing, and runs of the built CLI compared with
 * what `rsync -a -r --files-from` makes of the same tree and list.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFilesFrom } from '../src/files-from.js';
import { UsageError } from '../src/errors.js';
import { BASE_MTIME_MS, diffTrees, dir, file, hasRsync, snapshotTree, writeTree } from '../../transport/test/helpers/tree.js';
import { deltacast, makeTempDir } from './helpers.js';

const { dir: work, cleanup } = makeTempDir('files-from');
afterAll(cleanup);
let counter = 0;
const fresh = (name: string) => join(work, `${name}-${++counter}`);

describe('parseFilesFrom', () => {
  it('skips blank entries and comments, removes leading slashes and `.` parts, keeps each path once', () => {
    expect(parseFilesFrom('a\n\n# note\n; note\n/b/c\n./d/./e/\nb/c\nf//g\n', false)).toEqual(['a', 'b/c', 'd/e', 'f/g']);
    expect(parseFilesFrom('a\0b c\0\0#x\0', true)).toEqual(['a', 'b c']);
    expect(parseFilesFrom('.\n', false)).toEqual(['']);
    expect(parseFilesFrom('d/../a\n', false)).toEqual(['a']);
  });

  it('refuses a path that goes above the source directory', () => {
    expect(() => parseFilesFrom('a\n../etc/passwd\n', false)).toThrow(UsageError);
    expect(() => parseFilesFrom('d/../../x\n', false)).toThrow(/goes above the source directory/);
  });
});

const T = BASE_MTIME_MS;
// Directories' times pinned too: those outside a scope are left as they are, whatever second made them.
const TREE = {
  d: dir({ mtimeMs: T }),
  'd/e': dir({ mtimeMs: T }),
  x: dir({ mtimeMs: T }),
  'a.txt': file('a', { mtimeMs: T }),
  'd/b.txt': file('b', { mtimeMs: T }),
  'd/e/c.txt': file('c', { mtimeMs: T }),
  'x/y.txt': file('y', { mtimeMs: T }),
  'x/z.txt': file('z', { mtimeMs: T }),
};

describe('sync --files-from', () => {
  it('sends the listed files and directories (with their contents), nothing else, as rsync -r --files-from; a missing one is reported, exit 23', async () => {
    const src = fresh('src');
    await writeTree(src, TREE);
    const list = join(work, `list-${counter}`);
    writeFileSync(list, 'a.txt\n# a comment\n/d/e\nmissing.txt\n');
    const dest = fresh('dest');
    const run = deltacast(['sync', '--files-from', list, src, dest], work);
    expect(run.stderr).toBe('deltacast: sync: missing.txt: NO_SUCH_FILE: listed in --files-from, not in the source\n');
    expect(run.status).toBe(23);
    expect([...(await snapshotTree(dest)).keys()].sort()).toEqual(['a.txt', 'd', 'd/e', 'd/e/c.txt']);
    if (hasRsync) {
      const copy = fresh('rsync');
      const rsync = spawnSync('rsync', ['-a', '-r', `--files-from=${list}`, `${src}/`, `${copy}/`], { encoding: 'utf8' });
      expect(rsync.status).toBe(23);
      expect([...(await snapshotTree(dest)).keys()].sort()).toEqual([...(await snapshotTree(copy)).keys()].sort());
    }
  });

  it('reads the list from stdin with --from0; --delete deletes only inside what is listed', async () => {
    const src = fresh('src');
    await writeTree(src, TREE);
    const dest = fresh('dest');
    await writeTree(dest, { ...TREE, 'x/extra.txt': file('extra'), 'top-extra.txt': file('extra') });
    const run = deltacast(['sync', '--files-from', '-', '--from0', '--delete', `${src}/`, dest], work, { input: Buffer.from('x\0a.txt\0') });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(join(dest, 'x/extra.txt'))).toBe(false);
    expect(existsSync(join(dest, 'top-extra.txt'))).toBe(true);
    expect(await diffTrees(src, dest)).toEqual(['extra: "top-extra.txt"']);
  });

  it('is a usage error for a path above the source, or a source that is no directory', async () => {
    const src = fresh('src');
    await writeTree(src, TREE);
    const list = join(work, `list-${counter}`);
    writeFileSync(list, '../outside\n');
    const dest = fresh('dest');
    const above = deltacast(['sync', '--files-from', list, src, dest], work);
    expect(above.status).toBe(2);
    expect(above.stderr).toMatch(/goes above the source directory/);
    writeFileSync(list, 'a.txt\n');
    const notDir = deltacast(['sync', '--files-from', list, join(src, 'a.txt'), dest], work);
    expect(notDir.status).toBe(2);
    expect(notDir.stderr).toMatch(/--files-from needs a source directory/);
    expect(existsSync(dest)).toBe(false);
  });
});
