/**
 * -H, --hard-links (rsync's): names of one file in the source are one file at the destination, each
 * name after the first linked to it by the agent (`links`, docs/protocol.md). The destination's
 * groups of names are compared with the source's and, where rsync is installed, with what rsync -aH
 * makes of the same tree.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, linkSync, lstatSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RawClient } from './helpers/raw-client.js';
import type { SyncEvent } from '../src/events.js';
import { sync, type TransferOptions } from '../src/sync.js';
import { diffTrees, file, hasRsync, linkGroups, useTempDirs, writeTree } from './helpers/tree.js';

const temp = useTempDirs('deltacast-hardlinks-');

/** A source with two files of several names (one name in a subdirectory) and a single file. */
async function source(base: string): Promise<string> {
  const src = join(base, 'src');
  await writeTree(src, { a: file('group one\n'), 'x.txt': file('group two\n'), single: file('alone\n'), d: { kind: 'dir', mode: 0o755, mtimeMs: Date.now() } });
  linkSync(join(src, 'a'), join(src, 'c'));
  linkSync(join(src, 'a'), join(src, 'd/b'));
  linkSync(join(src, 'x.txt'), join(src, 'y.txt'));
  return src;
}

async function run(src: string, dst: string, options: Partial<TransferOptions> = {}) {
  const items: string[] = [];
  const summary = await sync({
    source: `${src}/`,
    destination: dst,
    localAgent: 'in-process',
    hardLinks: true,
    ...options,
    onEvent: (e: SyncEvent) => {
      if (e.type === 'item' && e.kind === 'hardlink') items.push(`${e.itemized} ${e.path} => ${e.linkTarget}`);
    },
  });
  expect(summary.errors).toEqual([]);
  return { summary, items: items.sort() };
}

const GROUPS = [['a', 'c', 'd/b'], ['single'], ['x.txt', 'y.txt']];

describe('sync -H', () => {
  it("makes the source's names of one file one file at the destination, as rsync -aH does; a second run changes nothing", async () => {
    const base = temp();
    const src = await source(base);
    const dst = join(base, 'dst');
    const first = await run(src, dst);
    expect(first.summary).toMatchObject({ ok: true, created: 3, hardlinks: 3 });
    expect(first.items).toEqual(['hf+++++++++ c => a', 'hf+++++++++ d/b => a', 'hf+++++++++ y.txt => x.txt']);
    expect(linkGroups(dst)).toEqual(GROUPS);
    expect(await diffTrees(src, dst)).toEqual([]);
    if (hasRsync) {
      const copy = join(base, 'rsync');
      expect(spawnSync('rsync', ['-aH', `${src}/`, `${copy}/`]).status).toBe(0);
      expect(linkGroups(dst)).toEqual(linkGroups(copy));
    }
    const again = await run(src, dst);
    expect(again.summary).toMatchObject({ created: 0, updated: 0, hardlinks: 0, unchanged: 6 });
    expect(again.items).toEqual([]);
  });

  it('links again a name the destination holds as a copy of its own, and a new name; new content reaches every name', async () => {
    const base = temp();
    const src = await source(base);
    const dst = join(base, 'dst');
    await run(src, dst);
    rmSync(join(dst, 'c'));
    cpSync(join(src, 'c'), join(dst, 'c'), { preserveTimestamps: true });
    linkSync(join(src, 'a'), join(src, 'e'));
    writeFileSync(join(src, 'x.txt'), 'group two, edited\n');
    const next = await run(src, dst);
    // x.txt's new content arrives under a new inode (temp file and rename); y.txt is linked to it
    // again, and says what changed for that name (rsync: `hf.s....... y.txt => x.txt`).
    expect(next.items).toEqual(['hf          c => a', 'hf+++++++++ e => a', 'hf.st...... y.txt => x.txt']);
    expect(next.summary).toMatchObject({ updated: 1, hardlinks: 3 });
    expect(linkGroups(dst)).toEqual([['a', 'c', 'd/b', 'e'], ['single'], ['x.txt', 'y.txt']]);
    expect(await diffTrees(src, dst)).toEqual([]);
  });

  it('a dry run says which links it would make and makes none', async () => {
    const base = temp();
    const src = await source(base);
    const dst = join(base, 'dst');
    await run(src, dst, { hardLinks: false });
    // Without -H every name is a file of its own.
    expect(linkGroups(dst)).toEqual([['a'], ['c'], ['d/b'], ['single'], ['x.txt'], ['y.txt']]);
    const dry = await run(src, dst, { dryRun: true });
    expect(dry.items).toEqual(['hf          c => a', 'hf          d/b => a', 'hf          y.txt => x.txt']);
    expect(linkGroups(dst)).toEqual([['a'], ['c'], ['d/b'], ['single'], ['x.txt'], ['y.txt']]);
    await run(src, dst);
    expect(linkGroups(dst)).toEqual(GROUPS);
  });
});

describe('the links request', () => {
  it('links only to a regular file inside the root: a symlink, a directory, a missing file or a path out of the root fail that entry', async () => {
    const root = temp();
    writeFileSync(join(root, 'f'), 'f');
    symlinkSync('f', join(root, 'sym'));
    const c = new RawClient();
    await c.hello(root);
    const reply = await c.request({ t: 'links', id: 1, f: [['g', 'f'], ['h', 'sym'], ['i', ''], ['j', 'missing'], ['k', '../f'], ['f', 'f']] });
    expect(reply.t).toBe('ok');
    const r = reply.r as unknown[];
    expect(r[0]).toBe(2);
    expect(r[1]).toEqual(['NOT_A_FILE', expect.any(String)]);
    expect(r[2]).toEqual(['PATH_INVALID', expect.any(String)]);
    expect(r[3]).toEqual(['NOT_A_FILE', expect.any(String)]);
    expect((r[4] as string[])[0]).toMatch(/^PATH_/);
    expect(r[5]).toBe(0);
    expect(lstatSync(join(root, 'g')).ino).toBe(lstatSync(join(root, 'f')).ino);
    expect(readdirSync(root).sort()).toEqual(['f', 'g', 'sym']);
    expect(await c.bye()).toBeUndefined();
  });

  it('ends the session on a malformed one (BAD_MESSAGE)', async () => {
    for (const f of ['x', [], [['a']], [['a', 7]]]) {
      const c = new RawClient();
      await c.hello(temp());
      await c.send({ t: 'links', id: 1, f });
      expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
    }
  });
});
