import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { ConnectError, PathError, ProtocolError, RemoteError, TransportError } from '../src/errors.js';
import { encodeFrameHead, type Header } from '../src/frame.js';
import { inProcessAgent } from '../src/local.js';
import { PROTOCOL_VERSION } from '../src/messages.js';
import { FrameSession, type ByteStreams } from '../src/wire.js';
import { leftovers, pseudoRandom, spawnAgent, useTempDirs } from './helpers/tree.js';
import { newFileDelta, RawClient } from './helpers/raw-client.js';

const tempDir = useTempDirs();
let root: string;
let outside: string;

beforeEach(async () => {
  root = join(tempDir(), 'root');
  outside = tempDir();
  await mkdir(root);
});

async function outsideIsEmpty(): Promise<void> {
  expect(await readdir(outside)).toEqual([]);
}

describe('the agent handshake', () => {
  it('answers a hello with its version, capabilities and the real root, creating the root', async () => {
    const c = new RawClient();
    const fresh = join(root, 'new/deeper');
    const h = await c.hello(fresh);
    expect(h).toMatchObject({ t: 'hello', v: PROTOCOL_VERSION, root: fresh });
    expect(h.caps).toEqual(expect.arrayContaining(['native-delta', 'zlib']));
    expect(await readdir(fresh)).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  it('refuses any request before the hello and ends the session', async () => {
    const c = new RawClient();
    await c.send({ t: 'mkdir', id: 1, path: 'x', mode: 0o755 });
    const error = await c.agentResult;
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'BAD_MESSAGE' });
    await c.closed;
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses a client whose versions it does not speak', async () => {
    const c = new RawClient();
    const h = await c.hello(root, { v: [PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 5] });
    expect(h).toMatchObject({ t: 'error', id: 0, code: 'VERSION_MISMATCH' });
    expect(await c.agentResult).toMatchObject({ code: 'VERSION_MISMATCH' });
  });

  it('refuses a malformed hello', async () => {
    const c = new RawClient();
    await c.send({ t: 'hello', v: 'one', root });
    expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
  });

  it('refuses a root outside allowedRoot', async () => {
    const agent = inProcessAgent({ allowedRoot: root });
    const error = await AgentClient.connect(agent, { root: outside }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'PATH_ESCAPE' });
    agent.close?.();
    await agent.done;
    await outsideIsEmpty();
  });

  // The allowedRoot check compares the requested path as written; realpath comes after, unchecked,
  // so a symlink inside the allowed directory serves a root outside it.
  it('refuses a root that is a symlink inside allowedRoot pointing outside it', async () => {
    await symlink(outside, join(root, 'link'));
    const agent = inProcessAgent({ allowedRoot: root });
    const error = await AgentClient.connect(agent, { root: join(root, 'link') }).then(
      async (client) => {
        await client.close();
        return client.info;
      },
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'PATH_ESCAPE' });
  });

  it('a dry run does not make a missing root, but still refuses one under a symlink leading out of allowedRoot', async () => {
    await symlink(outside, join(root, 'link'));
    const agent = inProcessAgent({ allowedRoot: root });
    const error = await AgentClient.connect(agent, { root: join(root, 'link', 'new', 'deeper'), dryRun: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PATH_ESCAPE' });
    await outsideIsEmpty();
    const inside = join(root, 'new', 'deeper');
    const client = await AgentClient.connect(inProcessAgent({ allowedRoot: root }), { root: inside, dryRun: true });
    expect(client.info).toMatchObject({ root: inside, rootAttrs: { made: true } });
    expect(await client.list()).toEqual([]);
    await client.close();
    expect(await readdir(root)).toEqual(['link']);
  });

  // A relative root is checked as allowedRoot/root but served as cwd/root.
  it('serves a relative root inside allowedRoot, not inside the working directory', async () => {
    const cwd = tempDir();
    const previous = process.cwd();
    process.chdir(cwd);
    try {
      const client = await AgentClient.connect(inProcessAgent({ allowedRoot: root }), { root: 'relative' });
      await client.close();
      expect(client.info?.root).toBe(join(root, 'relative'));
      expect(await readdir(cwd)).toEqual([]);
    } finally {
      process.chdir(previous);
    }
  });
});

describe('the agent confines paths to the root', () => {
  let c: RawClient;
  beforeEach(async () => {
    c = new RawClient();
    await mkdir(join(root, 'sub'));
    await symlink(outside, join(root, 'escape'));
    await c.hello(root);
  });

  const cases: [string, string][] = [
    ['../x', 'PATH_ESCAPE'],
    ['sub/../../x', 'PATH_ESCAPE'],
    ['/tmp/x', 'PATH_ABSOLUTE'],
    ['escape/x', 'PATH_SYMLINK'],
    ['escape/deeper/x', 'PATH_SYMLINK'],
    ['sub//x', 'PATH_INVALID'],
    ['./x', 'PATH_INVALID'],
  ];

  it.each(cases)('refuses %s with %s for every operation, writing nothing outside', async (path, code) => {
    const target = path.startsWith('/') ? join(outside, 'x') : path;
    let id = 1;
    const replies = [
      await c.request({ t: 'mkdir', id: id++, path: target, mode: 0o755 }),
      await c.request({ t: 'symlink', id: id++, path: target, target: '/etc/passwd', mtime: null, uid: null, gid: null }),
      await c.request({ t: 'setattr', id: id++, path: target, mode: 0o777, mtime: 0, uid: null, gid: null }),
      await c.request({ t: 'delete', id: id++, path: target }),
      await c.request({ t: 'sig', id: id++, path: target, seed: '1', block: null }),
      await c.request({ t: 'hash', id: id++, paths: [target] }),
      await c.put(id++, target, newFileDelta(pseudoRandom(100_000)), 100_000),
    ];
    for (const r of replies) expect(r).toMatchObject({ t: 'error', code: path.startsWith('/') ? 'PATH_ABSOLUTE' : code });
    await outsideIsEmpty();
    expect((await readdir(root)).sort()).toEqual(['escape', 'sub']);
    expect(await readdir(join(root, 'sub'))).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  it('replaces a symlink leaf instead of writing through it', async () => {
    const victim = join(outside, 'victim');
    await writeFile(victim, 'outside data');
    await symlink(victim, join(root, 'leaf'));
    await symlink(victim, join(root, 'leaf2'));
    expect(await c.put(1, 'leaf', newFileDelta(new TextEncoder().encode('new')), 3)).toMatchObject({ t: 'ok', size: 3 });
    expect(await readFile(join(root, 'leaf'), 'utf8')).toBe('new');
    expect(await c.request({ t: 'delete', id: 2, path: 'leaf2' })).toMatchObject({ t: 'ok' });
    expect(await readFile(victim, 'utf8')).toBe('outside data');
    expect(await readdir(outside)).toEqual(['victim']);
    // A symlink inside the root to a directory outside is deleted as a link, the directory stays.
    expect(await c.request({ t: 'delete', id: 3, path: 'escape' })).toMatchObject({ t: 'ok' });
    expect(await readFile(victim, 'utf8')).toBe('outside data');
    expect(await c.bye()).toBeUndefined();
  });

  it('stores a symlink target as given, never following it', async () => {
    expect(await c.request({ t: 'symlink', id: 1, path: 'abs', target: '/etc/passwd', mtime: null, uid: null, gid: null })).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'symlink', id: 2, path: 'up', target: '../../..', mtime: null, uid: null, gid: null })).toMatchObject({ t: 'ok' });
    expect(await readlink(join(root, 'abs'))).toBe('/etc/passwd');
    expect(await readlink(join(root, 'up'))).toBe('../../..');
    // Its hash is that of no file, not of /etc/passwd.
    const hashes = await c.request({ t: 'hash', id: 3, paths: ['abs'] });
    expect(hashes.h).toEqual([null]);
    expect(await c.bye()).toBeUndefined();
  });

  it('refuses to delete the root', async () => {
    await writeFile(join(root, 'sub/keep'), 'x');
    expect(await c.request({ t: 'delete', id: 1, path: '' })).toMatchObject({ t: 'error', code: 'PATH_INVALID' });
    expect(await readFile(join(root, 'sub/keep'), 'utf8')).toBe('x');
    expect(await c.bye()).toBeUndefined();
  });
});

// The agent remembers directories it has checked, walked or made; one it deletes or replaces, or one
// a commit may have moved, is checked again: a symlink put in its place is never written through.
describe('the agent checks again a directory it changed itself', () => {
  const put = (c: RawClient, id: number, path: string) => c.put(id, path, newFileDelta(new Uint8Array([1])), 1);
  const link = (c: RawClient, id: number, path: string, stage?: string) =>
    c.request({ t: 'symlink', id, path, target: outside, mtime: null, uid: null, gid: null, ...(stage ? { stage } : {}) });

  it('made, then deleted and replaced by a symlink', async () => {
    const c = new RawClient();
    await c.hello(root);
    expect(await c.request({ t: 'mkdir', id: 1, path: 'd', mode: 0o755 })).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'mkdir', id: 2, path: 'd/e', mode: 0o755 })).toMatchObject({ t: 'ok' });
    expect(await put(c, 3, 'd/e/f')).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'delete', id: 4, path: 'd' })).toMatchObject({ t: 'ok' });
    expect(await link(c, 5, 'd')).toMatchObject({ t: 'ok' });
    expect(await put(c, 6, 'd/g')).toMatchObject({ t: 'error', code: 'PATH_SYMLINK' });
    expect(await put(c, 7, 'd/e/g')).toMatchObject({ t: 'error', code: 'PATH_SYMLINK' });
    await outsideIsEmpty();
    expect(await c.bye()).toBeUndefined();
  });

  it('walked at hello, then deleted and replaced by a symlink', async () => {
    await mkdir(join(root, 'w/x'), { recursive: true });
    const c = new RawClient();
    await c.hello(root, { walk: true });
    expect(await put(c, 1, 'w/x/a')).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'delete', id: 2, path: 'w' })).toMatchObject({ t: 'ok' });
    expect(await link(c, 3, 'w')).toMatchObject({ t: 'ok' });
    expect(await put(c, 4, 'w/x/b')).toMatchObject({ t: 'error', code: 'PATH_SYMLINK' });
    expect(await c.request({ t: 'sig', id: 5, path: 'w/a', seed: '1', block: null })).toMatchObject({ t: 'error', code: 'PATH_SYMLINK' });
    await outsideIsEmpty();
    expect(await c.bye()).toBeUndefined();
  });

  it('replaced by a staged symlink at commit', async () => {
    await mkdir(join(root, 's'));
    const c = new RawClient();
    await c.hello(root);
    expect(await put(c, 1, 's/a')).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'delete', id: 2, path: 's', stage: 'x' })).toMatchObject({ t: 'ok' });
    expect(await link(c, 3, 's', 'x')).toMatchObject({ t: 'ok' });
    expect(await c.request({ t: 'commit', id: 4, stage: 'x' })).toMatchObject({ t: 'ok' });
    expect(await put(c, 5, 's/b')).toMatchObject({ t: 'error', code: 'PATH_SYMLINK' });
    await outsideIsEmpty();
    expect(await c.bye()).toBeUndefined();
  });
});

describe('the agent puts files', () => {
  let c: RawClient;
  beforeEach(async () => {
    c = new RawClient();
    await c.hello(root);
  });

  it('writes a verified file with its mode and mtime', async () => {
    const data = pseudoRandom(300_000, 5);
    expect(await c.put(1, 'f', newFileDelta(data), data.length, { mode: 0o640, mtime: 1_600_000_000_500 })).toMatchObject({ t: 'ok', size: data.length });
    expect(Buffer.compare(await readFile(join(root, 'f')), data)).toBe(0);
    const list = await c.send({ t: 'list', id: 2 }).then(() => c.exchange(2));
    expect(list.at(-1)?.header).toMatchObject({ t: 'done', n: 1 });
    expect(list[0].header.e).toEqual([['f', 'f', data.length, 1_600_000_000_500, 0o640, 0, 0]]);
    expect(await c.bye()).toBeUndefined();
  });

  it('refuses a delta whose SHA-256 is wrong, leaving the target as it was and no temp file', async () => {
    await writeFile(join(root, 'f'), 'old content');
    const bad = newFileDelta(pseudoRandom(50_000, 6));
    bad[bad.length - 1] ^= 1; // the last byte of the whole-file SHA-256
    expect(await c.put(1, 'f', bad, 50_000)).toMatchObject({ t: 'error', code: 'HASH_MISMATCH', path: 'f' });
    expect(await readFile(join(root, 'f'), 'utf8')).toBe('old content');
    expect(await leftovers(root)).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  it('refuses more output than the announced size (OUTPUT_LIMIT)', async () => {
    const r = await c.put(1, 'f', newFileDelta(pseudoRandom(1_000_000, 7)), 1000);
    expect(r).toMatchObject({ t: 'error', code: 'OUTPUT_LIMIT' });
    expect(await readdir(root)).toEqual([]);
    // The session goes on.
    expect(await c.put(2, 'g', newFileDelta(new Uint8Array([1, 2, 3])), 3)).toMatchObject({ t: 'ok' });
    expect(await c.bye()).toBeUndefined();
  });

  it('refuses a delta that is not a native delta, and a truncated one', async () => {
    expect(await c.put(1, 'f', new TextEncoder().encode('not a delta at all'), 10)).toMatchObject({ t: 'error', code: 'BAD_MAGIC' });
    const whole = newFileDelta(pseudoRandom(10_000, 8));
    expect(await c.put(2, 'g', whole.subarray(0, whole.length - 5), 10_000)).toMatchObject({ t: 'error', code: 'TRUNCATED' });
    expect(await leftovers(root)).toEqual([]);
    expect(await readdir(root)).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  // protocol.md: a data payload is "at most 256 KiB before compression", and every length off the
  // wire is capped; the agent inflates a compressed payload without a limit (32 KiB -> 32 MiB here).
  it('refuses a compressed data frame that inflates past 256 KiB', async () => {
    const size = 32 * 1024 * 1024;
    const bomb = deflateRawSync(newFileDelta(new Uint8Array(size)));
    expect(bomb.length).toBeLessThan(64 * 1024);
    await c.send({ t: 'put', id: 1, path: 'f', size, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
    await c.send({ t: 'data', id: 1, z: true }, bomb);
    await c.send({ t: 'end', id: 1 });
    const outcome = await c.reply(1).catch(() => c.agentResult);
    const refused = outcome instanceof ProtocolError || (outcome as Header | undefined)?.t === 'error';
    expect(refused).toBe(true);
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses a basis that is not a regular file', async () => {
    await mkdir(join(root, 'd'));
    expect(await c.put(1, 'd', newFileDelta(new Uint8Array(1)), 1, { basis: true })).toMatchObject({ t: 'error', code: 'PATH_INVALID' });
    expect(await c.request({ t: 'sig', id: 2, path: 'missing', seed: '1', block: null })).toMatchObject({ t: 'error', code: 'PATH_INVALID' });
    expect(await c.bye()).toBeUndefined();
  });

  it('ends the session on a frame with a huge header length, removing the temp file of a put in flight', async () => {
    await c.send({ t: 'put', id: 1, path: 'f', size: 1_000_000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
    const d = newFileDelta(pseudoRandom(1_000_000, 9));
    await c.send({ t: 'data', id: 1 }, d.subarray(0, 100_000));
    c.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    const error = await c.agentResult;
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect(await readdir(root)).toEqual([]);
  });

  it('ends the session on a message with a field of the wrong type', async () => {
    await c.send({ t: 'mkdir', id: 'one', path: 'x' });
    expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
    await c.closed;
  });

  it('fails in-flight puts when the client goes away without bye, leaving no temp file', async () => {
    await writeFile(join(root, 'f'), 'old');
    await c.send({ t: 'put', id: 1, path: 'f', size: 1_000_000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
    await c.send({ t: 'data', id: 1 }, newFileDelta(pseudoRandom(1_000_000, 10)).subarray(0, 300_000));
    c.session.end();
    await c.agentResult;
    expect(await readdir(root)).toEqual(['f']);
    expect(await readFile(join(root, 'f'), 'utf8')).toBe('old');
  });

  // docs/protocol.md: "If its input ends without a bye (the client died), in-flight transfers fail
  // [...] and the agent exits 1." serveAgent resolves instead, so agent-main exits 0.
  it('exits 1 when its input ends without bye', async () => {
    const { child, exited } = spawnAgent();
    const session = new FrameSession({ readable: child.stdout, writable: child.stdin });
    const hello = new Promise<Header>((resolve) => session.onFrame((f) => resolve(f.header)));
    await session.send({ t: 'hello', v: [1, PROTOCOL_VERSION], caps: [], root, owner: false, partial: false });
    expect(await hello).toMatchObject({ t: 'hello' });
    await session.send({ t: 'put', id: 1, path: 'f', size: 1_000_000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
    await session.send({ t: 'data', id: 1 }, newFileDelta(pseudoRandom(1_000_000, 11)).subarray(0, 300_000));
    session.end();
    expect(await exited).toBe(1);
  });
});

/** Waits (without a deadline of its own) until `check` holds. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5));
}

const hasTemp = async () => (await leftovers(root)).length > 0;

describe('the agent with puts in flight', () => {
  // A second put with the id of one in flight takes over its data; the first waits forever, so
  // serveAgent never settles when the client goes (an agent process never exits) and the first
  // put's temp file stays. The short timeout only bounds that hang.
  it(
    'refuses a request id that is already in flight',
    async () => {
      const c = new RawClient();
      await c.hello(root);
      const d = newFileDelta(pseudoRandom(1000, 12));
      await c.send({ t: 'put', id: 1, path: 'a', size: 1000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
      await c.send({ t: 'put', id: 1, path: 'b', size: 1000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
      // The agent may already have ended the session over the duplicate id: sending can then fail.
      await c.send({ t: 'data', id: 1 }, d).catch(() => {});
      await c.send({ t: 'end', id: 1 }).catch(() => {});
      c.session.end();
      expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
      expect(await leftovers(root)).toEqual([]);
    },
    2000,
  );

  // The listing removes every `.NAME.dctmp-XXXXXXXX` it meets, including the temp file of a put that
  // is still being written (by this session or by another agent on the same root, e.g. a second
  // channel): that put then fails with ENOENT on its rename.
  it('keeps the temp file of a put in flight when another session lists the root', async () => {
    const writer = new RawClient();
    await writer.hello(root);
    const d = newFileDelta(pseudoRandom(100_000, 13));
    await writer.send({ t: 'put', id: 1, path: 'f', size: 100_000, mode: 0o644, mtime: 0, uid: null, gid: null, basis: false });
    await writer.send({ t: 'data', id: 1 }, d.subarray(0, 1000));
    await until(hasTemp);

    const lister = await AgentClient.connect(inProcessAgent(), { root });
    expect(await lister.list()).toEqual([]);
    await lister.close();

    await writer.send({ t: 'data', id: 1 }, d.subarray(1000));
    await writer.send({ t: 'end', id: 1 });
    expect(await writer.reply(1)).toMatchObject({ t: 'ok', size: 100_000 });
  });
});

describe('the agent listing', () => {
  it('removes stale temp files (and partials, without partial) and does not list them', async () => {
    await mkdir(join(root, 'sub'));
    // Temp names carry the writing agent's pid (base 36); 2^23 is above Linux's pid_max, so it is gone.
    const dead = (2 ** 23).toString(36);
    await writeFile(join(root, `.x.dctmp-${dead}-0123abcd`), 'stale');
    await writeFile(join(root, `sub/.y z.dctmp-${dead}-89abcdef`), 'stale');
    await writeFile(join(root, '.big.dcpartial'), 'partial');
    await writeFile(join(root, `x.dctmp-${dead}-0123abcd`), 'a real file: no leading dot');
    await writeFile(join(root, `.x.dctmp-${dead}-0123ABCD`), 'a real file: not lowercase hex');
    const c = new RawClient();
    await c.hello(root);
    await c.send({ t: 'list', id: 1 });
    const frames = await c.exchange(1);
    const paths = frames.flatMap((f) => (Array.isArray(f.header.e) ? f.header.e.map((e) => (e as unknown[])[0]) : []));
    expect(paths.sort()).toEqual([`.x.dctmp-${dead}-0123ABCD`, 'sub', `x.dctmp-${dead}-0123abcd`]);
    expect((await readdir(root)).sort()).toEqual([`.x.dctmp-${dead}-0123ABCD`, 'sub', `x.dctmp-${dead}-0123abcd`]);
    expect(await readdir(join(root, 'sub'))).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  it('splits a long listing into frames and lists parents before children', async () => {
    const long = 'n'.repeat(200);
    for (let i = 0; i < 300; i++) await writeFile(join(root, `${long}-${i}`), '');
    await mkdir(join(root, 'z/y'), { recursive: true });
    const client = await AgentClient.connect(inProcessAgent(), { root });
    const entries = await client.list();
    expect(entries).toHaveLength(302);
    expect(entries.findIndex((e) => e.path === 'z')).toBeLessThan(entries.findIndex((e) => e.path === 'z/y'));
    await client.close();
  });
});

describe('the agent keeps walks and changes apart', () => {
  it('runs a change sent right behind a list only once the walk is over, though the walk waits while it sends', async () => {
    // A listing long enough to be sent in many frames, each a point where the walk waits; "z" last.
    const long = 'n'.repeat(200);
    await mkdir(join(root, 'a'));
    for (let i = 0; i < 600; i++) await writeFile(join(root, `a/${long}-${i}`), '');
    await mkdir(join(root, 'z'));
    for (let i = 0; i < 5; i++) await writeFile(join(root, `z/${i}`), '');
    const c = new RawClient();
    await c.hello(root);
    await c.send({ t: 'list', id: 1 });
    await c.send({ t: 'delete', id: 2, path: 'z' });
    const frames = await c.exchange(1);
    const paths = frames.flatMap((f) => (Array.isArray(f.header.e) ? f.header.e.map((e) => (e as unknown[])[0] as string) : []));
    expect(frames.filter((f) => f.header.t === 'entries').length).toBeGreaterThan(3);
    expect(paths.filter((p) => p.startsWith('z'))).toEqual(['z', 'z/0', 'z/1', 'z/2', 'z/3', 'z/4']);
    expect(await c.reply(2)).toMatchObject({ t: 'ok' });
    expect((await readdir(root)).sort()).toEqual(['a']);
    expect(await c.bye()).toBeUndefined();
  });

  it('lets a put in while a walk waits for another put, so queued data cannot stall the first', async () => {
    // Put 1 is running and still needs data; a list waits for it; put 2's data, more than the agent
    // queues before it stops reading, arrives before the rest of put 1's. Had put 2 waited behind
    // the list, the agent would stop reading with put 1 still waiting for its data.
    const first = pseudoRandom(3 * 1024 * 1024, 11);
    const second = pseudoRandom(10 * 1024 * 1024, 12);
    const firstDelta = newFileDelta(first);
    const secondDelta = newFileDelta(second);
    const c = new RawClient();
    await c.hello(root);
    const chunk = 256 * 1024;
    const header = (id: number, path: string, size: number) => ({ t: 'put', id, path, size, mode: 0o644, mtime: 1_700_000_000_000, uid: null, gid: null, basis: false });
    void c.send(header(1, 'first', first.length));
    void c.send({ t: 'data', id: 1 }, firstDelta.subarray(0, chunk));
    await new Promise((r) => setTimeout(r, 50)); // put 1 is running
    void c.send({ t: 'list', id: 2 });
    void c.send(header(3, 'second', second.length));
    for (let at = 0; at < secondDelta.length; at += chunk) void c.send({ t: 'data', id: 3 }, secondDelta.subarray(at, at + chunk));
    void c.send({ t: 'end', id: 3 });
    for (let at = chunk; at < firstDelta.length; at += chunk) void c.send({ t: 'data', id: 1 }, firstDelta.subarray(at, at + chunk));
    void c.send({ t: 'end', id: 1 });
    expect(await c.reply(1)).toMatchObject({ t: 'ok', size: first.length });
    expect(await c.reply(3)).toMatchObject({ t: 'ok', size: second.length });
    expect(await c.reply(2)).toMatchObject({ t: 'done' });
    expect(Buffer.compare(await readFile(join(root, 'second')), second)).toBe(0);
    expect(await c.bye()).toBeUndefined();
  }, 20_000);
});

/** A fake agent: answers the hello, then lets the test answer requests with any frames. */
function fakeAgent(onRequest: (h: Header, session: FrameSession, raw: PassThrough) => void): ByteStreams {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const session = new FrameSession({ readable: toAgent, writable: fromAgent });
  session.onFrame((f) => {
    if (f.header.t === 'hello') void session.send({ t: 'hello', v: 1, caps: [], root: '/fake', version: 'fake', uid: 0 });
    else onRequest(f.header, session, fromAgent);
  });
  return { readable: fromAgent, writable: toAgent, close: () => fromAgent.end() };
}

describe('the client against a malicious agent', () => {
  const listing = (entries: unknown[][]) =>
    fakeAgent((h, session) => {
      if (h.t !== 'list') return;
      void session.send({ t: 'entries', id: h.id, e: entries }).then(() => session.send({ t: 'done', id: h.id, n: entries.length }));
    });

  it.each([
    ['../evil', 'PATH_ESCAPE'],
    ['ok/../../evil', 'PATH_ESCAPE'],
    ['/etc/passwd', 'PATH_ABSOLUTE'],
    ['a//b', 'PATH_INVALID'],
  ])('refuses a listing entry %s with a PathError %s', async (path, code) => {
    const client = await AgentClient.connect(listing([['fine', 'f', 1, 0, 0o644, 0, 0], [path, 'f', 1, 0, 0o644, 0, 0]]), { root: '/x' });
    const error = await client.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PathError);
    expect(error).toMatchObject({ code });
  });

  it('refuses malformed listing entries with a ProtocolError', async () => {
    for (const entry of [
      ['', 'd', 0, 0, 0o755, 0, 0],
      ['x', 'q', 0, 0, 0o644, 0, 0],
      ['x', 'f', -1, 0, 0o644, 0, 0],
      ['x', 'f', 1, 'yesterday', 0o644, 0, 0],
      ['x', 'l', 0, 0, 0o777, 0, 0],
      ['x', 'f'],
    ]) {
      const client = await AgentClient.connect(listing([entry]), { root: '/x' });
      const error = await client.list().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error).toMatchObject({ code: 'BAD_MESSAGE' });
    }
  });

  it('ends the session on a frame with a huge length', async () => {
    const client = await AgentClient.connect(
      fakeAgent((h, _session, raw) => {
        if (h.t === 'list') raw.write(new Uint8Array([0, 0, 0, 10, 0xff, 0xff, 0xff, 0xff]));
      }),
      { root: '/x' },
    );
    const error = await client.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    // Later requests fail at once with the same error.
    await expect(client.mkdir('a', 0o755)).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
  });

  it('refuses a reply for a request it never made', async () => {
    const client = await AgentClient.connect(
      fakeAgent((h, session) => {
        if (h.t === 'mkdir') void session.send({ t: 'ok', id: 999 });
      }),
      { root: '/x' },
    );
    await expect(client.mkdir('a', 0o755)).rejects.toMatchObject({ code: 'BAD_MESSAGE' });
  });

  it('refuses an agent that picks a protocol version it does not speak', async () => {
    const toAgent = new PassThrough();
    const fromAgent = new PassThrough();
    const session = new FrameSession({ readable: toAgent, writable: fromAgent });
    session.onFrame(() => void session.send({ t: 'hello', v: PROTOCOL_VERSION + 1, caps: [], root: '/', version: 'x', uid: 0 }));
    const error = await AgentClient.connect({ readable: fromAgent, writable: toAgent }, { root: '/x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'VERSION_MISMATCH' });
  });

  it('refuses a signature whose announced size differs from the bytes sent', async () => {
    const client = await AgentClient.connect(
      fakeAgent((h, session) => {
        if (h.t !== 'sig') return;
        void session.send({ t: 'data', id: h.id }, new Uint8Array(10)).then(() => session.send({ t: 'sig', id: h.id, size: 11, basis: 'file' }));
      }),
      { root: '/x' },
    );
    await expect(client.signature('f', 1n)).rejects.toMatchObject({ code: 'BAD_MESSAGE' });
  });

  it('ends the session with TIMEOUT when a request waits on a silent agent, not while nothing waits', async () => {
    // Answers the hello, then never again: a hung peer.
    const client = await AgentClient.connect(fakeAgent(() => {}), { root: '/x', idleTimeoutMs: 300 });
    // Idle with nothing waiting is not a hang: a kept session may sit like this for hours.
    await new Promise((r) => setTimeout(r, 700));
    expect(client.closed).toBe(false);
    const started = Date.now();
    const error = await client.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ code: 'TIMEOUT', details: { idleTimeoutMs: 300 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(client.closed).toBe(true);
    await expect(client.mkdir('a', 0o755)).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  describe('a session that never starts is a ConnectError CONNECT (no agent was started)', () => {
    /** A peer that reads what it is sent and does `act` with its output stream. */
    const peer = (act: (out: PassThrough) => void): ByteStreams => {
      const toAgent = new PassThrough();
      const fromAgent = new PassThrough();
      toAgent.resume();
      act(fromAgent);
      return { readable: fromAgent, writable: toAgent };
    };

    it('output that is no frame (a login script writing to stdout) says so', async () => {
      const error = await AgentClient.connect(peer((out) => out.write('Welcome to web1!\n')), { root: '/x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({ code: 'CONNECT', details: { cause: 'FRAME_TOO_LARGE' } });
      expect((error as Error).message).toMatch(/no session with the agent: .*login script/);
    });

    it('a peer that ends its output at once', async () => {
      const error = await AgentClient.connect(peer((out) => out.end()), { root: '/x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({ code: 'CONNECT', details: { cause: 'CLOSED' } });
    });

    it('a peer that never answers the hello, after the idle timeout', async () => {
      const error = await AgentClient.connect(peer(() => {}), { root: '/x', idleTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({ code: 'CONNECT', details: { cause: 'TIMEOUT' } });
      expect((error as Error).message).toContain('no reply from the agent');
    });

    it('a transport that failed to start its peer keeps its own ConnectError', async () => {
      const failed = new ConnectError('NO_REMOTE_NODE', 'the remote has no Node.js', {});
      const error = await AgentClient.connect(peer((out) => setImmediate(() => out.destroy(failed))), { root: '/x' }).catch((e: unknown) => e);
      expect(error).toBe(failed);
    });

    it('an agent that refuses the session is not taken for one that never started (nor one of another version: below)', async () => {
      const toAgent = new PassThrough();
      const fromAgent = new PassThrough();
      const session = new FrameSession({ readable: toAgent, writable: fromAgent });
      session.onFrame(() => void session.send({ t: 'error', id: 0, code: 'LOCKED', message: 'locked by another run' }));
      const refusal = await AgentClient.connect({ readable: fromAgent, writable: toAgent }, { root: '/x' }).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(RemoteError);
      expect(refusal).toMatchObject({ code: 'LOCKED' });
    });
  });

  it('refuses an oversized frame before the agent could send its payload', () => {
    expect(() => encodeFrameHead({ t: 'data', id: 1 }, 2 ** 31)).toThrow(ProtocolError);
  });
});
