/**
 * --chown (rsync's): names resolved by the agent, on the destination's host (owner-names.ts); what is
 * written gets those ids, and owners changed there since are put back. As root only, where it applies.
 */
import { spawnSync } from 'node:child_process';
import { lchown, lstat } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveOwnerName } from '../src/owner-names.js';
import { sync } from '../src/sync.js';
import { file, hasRsync, link, snapshotTree, useTempDirs, writeTree } from './helpers/tree.js';

const temp = useTempDirs('deltacast-chown-');

describe('resolveOwnerName', () => {
  it('numbers as they are, names from the passwd and group files, undefined for an unknown one', () => {
    const dir = temp();
    const passwd = join(dir, 'passwd');
    const group = join(dir, 'group');
    writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nweb:x:1042:1042::/srv:/usr/sbin/nologin\n');
    writeFileSync(group, 'root:x:0:\nwww:x:2042:web\n');
    const files = { passwd, group };
    expect(resolveOwnerName('1234', 'passwd', files)).toBe(1234);
    expect(resolveOwnerName('web', 'passwd', files)).toBe(1042);
    expect(resolveOwnerName('www', 'group', files)).toBe(2042);
    // Not in the file: asked of NSS through getent, which knows root.
    expect(resolveOwnerName('root', 'passwd', { passwd: join(dir, 'none'), group })).toBe(spawnSync('getent', ['passwd', 'root']).status === 0 ? 0 : undefined);
    expect(resolveOwnerName('no-such-user-here', 'passwd', files)).toBeUndefined();
  });
});

const NOBODY = resolveOwnerName('nobody', 'passwd');
const NOGROUP = resolveOwnerName('nogroup', 'group') ?? resolveOwnerName('nobody', 'group');
const groupName = resolveOwnerName('nogroup', 'group') !== undefined ? 'nogroup' : 'nobody';
const runnable = process.getuid?.() === 0 && NOBODY !== undefined && NOGROUP !== undefined;

describe.skipIf(!runnable)(`sync with chown ${runnable ? '' : '(skipped: not root, or no nobody user and group)'}`, () => {
  it('gives everything written the owner and group; puts back what changed there; the same as rsync --chown', async () => {
    const base = temp();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a'), 'd/b.txt': file('b'), l: link('a.txt') });
    const dst = join(base, 'dst');
    const chown = { user: 'nobody', group: groupName };
    const first = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chown });
    expect(first.errors).toEqual([]);
    for (const path of ['', 'a.txt', 'd', 'd/b.txt', 'l']) expect(await lstat(join(dst, path))).toMatchObject({ uid: NOBODY, gid: NOGROUP });
    if (hasRsync) {
      const expected = join(base, 'rsync-dst');
      expect(spawnSync('rsync', ['-a', `--chown=nobody:${groupName}`, `${src}/`, `${expected}/`]).status).toBe(0);
      const owners = async (root: string) => [...(await snapshotTree(root)).keys()].map(async (p) => [p, (await lstat(join(root, p))).uid, (await lstat(join(root, p))).gid]);
      expect(await Promise.all(await owners(dst))).toEqual(await Promise.all(await owners(expected)));
    }

    await lchown(join(dst, 'a.txt'), 0, 0);
    await lchown(join(dst, 'l'), 0, 0);
    const fixed = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chown });
    expect(fixed).toMatchObject({ ok: true, created: 0, updated: 0, sentBytes: 0, attributes: 1, symlinks: 1 });
    expect(await lstat(join(dst, 'a.txt'))).toMatchObject({ uid: NOBODY, gid: NOGROUP });
    expect(await lstat(join(dst, 'l'))).toMatchObject({ uid: NOBODY, gid: NOGROUP });
    expect(await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chown })).toMatchObject({ attributes: 0, symlinks: 0 });
  });

  it('a group alone with owner: the source owner kept, the group given', async () => {
    const base = temp();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a') });
    await lchown(join(src, 'a.txt'), 1234, 5678);
    const dst = join(base, 'dst');
    expect(await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', owner: true, chown: { group: groupName } })).toMatchObject({ ok: true });
    expect(await lstat(join(dst, 'a.txt'))).toMatchObject({ uid: 1234, gid: NOGROUP });
  });

  it('an unknown name refuses the session (NO_SUCH_USER) and writes nothing', async () => {
    const base = temp();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a') });
    const dst = join(base, 'dst');
    await expect(sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chown: { user: 'no-such-user-here' } })).rejects.toMatchObject({ code: 'NO_SUCH_USER' });
    await expect(sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chown: { group: 'no-such-group-here' } })).rejects.toMatchObject({ code: 'NO_SUCH_GROUP' });
    expect(existsSync(dst)).toBe(false); // refused before the root was made
  });
});
