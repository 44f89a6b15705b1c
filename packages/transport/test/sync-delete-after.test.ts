/**
 * deleteAfter (rsync's --delete-after): extraneous entries stay while the run's files arrive and go
 * at the end; an entry replaced by one of another type goes first in any case (to make room).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../src/events.js';
import { BASE_MTIME_MS, diffTrees, dir, file, runSync, useTempDirs, writeTree } from './helpers/tree.js';

const temp = useTempDirs('deltacast-delete-after-');

async function trees() {
  const src = temp();
  const dst = temp();
  await writeTree(src, { 'index.html': file('<img src="new.png">', { mtimeMs: BASE_MTIME_MS + 60_000 }), 'new.png': file('new'), turned: file('now a file') });
  await writeTree(dst, { 'index.html': file('<img src="old.png">'), 'old.png': file('old'), 'old-dir/x': file('x'), turned: dir(), 'turned/inside': file('i') });
  return { src, dst };
}

describe('sync with deleteAfter', () => {
  it.each([
    [true, 'still there'],
    [false, 'already gone'],
  ])('deleteAfter %s: when the files arrive, the extraneous entries are %s; the tree ends the same', async (deleteAfter) => {
    const { src, dst } = await trees();
    const seen: Record<string, boolean> = {};
    const summary = await runSync(`${src}/`, dst, {
      delete: true,
      deleteAfter,
      onEvent: (e: SyncEvent) => {
        if (e.type !== 'file') return;
        seen[e.path] = existsSync(join(dst, 'old.png')) && existsSync(join(dst, 'old-dir/x'));
      },
    });
    expect(summary).toMatchObject({ ok: true, deleted: 3, errors: [] });
    expect(Object.keys(seen).sort()).toEqual(['index.html', 'new.png', 'turned']);
    for (const present of Object.values(seen)) expect(present).toBe(deleteAfter);
    // The directory `turned` was replaced by the file (which needed its path) either way.
    expect(await diffTrees(src, dst)).toEqual([]);
  });
});
