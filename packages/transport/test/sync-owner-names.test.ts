/**
 * --owner maps owners by name, as rsync does without --numeric-ids: the agent gives each file the id
 * its own host has for the source's user and group names (`owners`, docs/protocol.md). The agent here
 * reads its own passwd and group files, where `daemon` has other ids than on this host; ids 0 are
 * never mapped, ids without a name stay as they are. As root only, where owners apply.
 */
import { spawnSync } from 'node:child_process';
import { lchown, lstat } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { PathFilter } from '../src/filter.js';
import { inProcessAgent } from '../src/local.js';
import { ownerNamesOf, resolveOwnerName, resolveOwnerNames } from '../src/owner-names.js';
import { syncTree, type TransferOptions } from '../src/sync.js';
import { scanSource } from '../src/tree.js';
import { dir, file, link, useTempDirs, writeTree } from './helpers/tree.js';
import { RawClient } from './helpers/raw-client.js';

const temp = useTempDirs('deltacast-owner-names-');

/** An id no name on this host has. */
const NAMELESS = 54_321;
const hasDaemon = resolveOwnerName('daemon', 'passwd') === 1 && resolveOwnerName('daemon', 'group') === 1;
const namelessHere = spawnSync('getent', ['passwd', String(NAMELESS)]).status !== 0 && spawnSync('getent', ['group', String(NAMELESS)]).status !== 0;
const runnable = process.getuid?.() === 0 && hasDaemon && namelessHere;

describe('owner-names', () => {
  it('names of ids and ids of names, from the files, then getent for what they lack', () => {
    const base = temp();
    const files = { passwd: join(base, 'passwd'), group: join(base, 'group') };
    writeFileSync(files.passwd, 'root:x:0:0:root:/root:/bin/bash\nweb:x:1042:1042::/srv:/usr/sbin/nologin\nbroken line\n');
    writeFileSync(files.group, 'root:x:0:\nwww:x:2042:web\n');
    expect(ownerNamesOf([0, 1042, NAMELESS], 'passwd', files)).toEqual(new Map([[0, 'root'], [1042, 'web']]));
    expect(ownerNamesOf([2042], 'group', files)).toEqual(new Map([[2042, 'www']]));
    expect(resolveOwnerNames(['web', 'no-such-user-here'], 'passwd', files)).toEqual(new Map([['web', 1042]]));
    // Not in the file: asked of NSS through getent, which knows root on this host.
    const root = resolveOwnerNames(['root'], 'passwd', { passwd: join(base, 'none'), group: files.group });
    if (spawnSync('getent', ['passwd', 'root']).status === 0) expect(root).toEqual(new Map([['root', 0]]));
  });
});

describe('the owners request', () => {
  it('ends the session on a malformed one (BAD_MESSAGE): not a list, a bad id, a name with a colon, too many pairs', async () => {
    for (const users of ['x', [[-1, 'a']], [[1, 'a:b']], [[1, '']], Array.from({ length: 4097 }, (_, i) => [i, 'u'])]) {
      const c = new RawClient();
      await c.hello(temp());
      await c.send({ t: 'owners', id: 1, users, groups: [] });
      expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
    }
  });

  it('maps nothing at an agent that keeps no owners (no `owner` in the hello)', async () => {
    const c = new RawClient();
    await c.hello(temp());
    expect(await c.request({ t: 'owners', id: 1, users: [[1, 'root']], groups: [[1, 'root']] })).toEqual({ t: 'owners', id: 1, users: [], groups: [] });
    expect(await c.bye()).toBeUndefined();
  });
});

describe.skipIf(!runnable)(`sync --owner by name ${runnable ? '' : '(skipped: not root, no daemon user and group with id 1, or a name for 54321)'}`, () => {
  async function setUp() {
    const base = temp();
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    await writeTree(src, {
      'daemon.txt': file('owned by daemon'),
      'root.txt': file('owned by root'),
      'nameless.txt': file('owned by an id without a name'),
      'daemon-dir': dir(),
      'daemon-dir/link': link('../daemon.txt'),
    });
    for (const path of ['daemon.txt', 'daemon-dir', 'daemon-dir/link']) await lchown(join(src, path), 1, 1);
    await lchown(join(src, 'root.txt'), 0, 0);
    await lchown(join(src, 'nameless.txt'), NAMELESS, NAMELESS);
    // The destination's host: daemon is 4321 (group 4322) there, root 777 (which is never used).
    const files = { passwd: join(base, 'passwd'), group: join(base, 'group') };
    writeFileSync(files.passwd, 'root:x:777:777:root:/root:/bin/sh\ndaemon:x:4321:4322::/:/usr/sbin/nologin\n');
    writeFileSync(files.group, 'root:x:777:\ndaemon:x:4322:\n');
    const run = (options: TransferOptions) =>
      syncTree(() => scanSource(`${src}/`), { name: dst, streams: inProcessAgent({ ownerFiles: files }), root: dst }, new PathFilter([]), { owner: true, ...options });
    const owners = async () => {
      const result: Record<string, [number, number]> = {};
      for (const path of ['daemon.txt', 'root.txt', 'nameless.txt', 'daemon-dir', 'daemon-dir/link']) {
        const st = await lstat(join(dst, path));
        result[path] = [st.uid, st.gid];
      }
      return result;
    };
    return { dst, run, owners, files };
  }

  const MAPPED = { 'daemon.txt': [4321, 4322], 'root.txt': [0, 0], 'nameless.txt': [NAMELESS, NAMELESS], 'daemon-dir': [4321, 4322], 'daemon-dir/link': [4321, 4322] };

  it("gives files the destination's ids for the source's names; 0 and nameless ids stay; a second run finds nothing to change", async () => {
    const { run, owners } = await setUp();
    expect(await run({})).toMatchObject({ ok: true, created: 3, symlinks: 1, errors: [] });
    expect(await owners()).toEqual(MAPPED);
    // The plan compares through the agent's map: the mapped owners are what they should be.
    expect(await run({})).toMatchObject({ ok: true, created: 0, updated: 0, attributes: 0, symlinks: 0 });
  });

  it('a list longer than one request takes (header cap) goes in several, and the agent maps them all', async () => {
    const { files } = await setUp();
    const { client, ready } = AgentClient.open(inProcessAgent({ ownerFiles: files }), { root: temp(), owner: true });
    await ready;
    const users: [number, string][] = Array.from({ length: 6000 }, (_, i) => [100_000 + i, `user-${'x'.repeat(20)}-${i}`]);
    users.push([1, 'daemon'], [0, 'root']);
    const map = await client.mapOwners(users, [[1, 'daemon']]);
    expect(map).toEqual({ uids: new Map([[1, 4321]]), gids: new Map([[1, 4322]]) });
    await client.close();
  });

  it('--numeric-ids keeps the numbers; a run by name then puts the mapped owners in their place', async () => {
    const { run, owners, dst } = await setUp();
    expect(await run({ numericIds: true })).toMatchObject({ ok: true, errors: [] });
    expect(await owners()).toEqual({ ...MAPPED, 'daemon.txt': [1, 1], 'daemon-dir': [1, 1], 'daemon-dir/link': [1, 1] });
    expect(await run({ numericIds: true })).toMatchObject({ attributes: 0, symlinks: 0 });
    const byName = await run({});
    expect(byName).toMatchObject({ ok: true, created: 0, updated: 0, attributes: 1, symlinks: 1 });
    expect(await owners()).toEqual(MAPPED);
    // An owner changed there since is put back, by name.
    await lchown(join(dst, 'daemon.txt'), 0, 0);
    expect(await run({})).toMatchObject({ attributes: 1 });
    expect((await owners())['daemon.txt']).toEqual([4321, 4322]);
  });
});
