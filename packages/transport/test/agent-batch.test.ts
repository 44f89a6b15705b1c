import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { createDelta, decodeSignature, indexSignature } from '@deltacast/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { BATCH_CAPABILITY, MAX_BATCH_BASIS, MAX_BATCH_FILES, MAX_MKDIRS, MAX_SETATTRS, MKDIRS_CAPABILITY, SETATTRS_CAPABILITY } from '../src/batch.js';
import type { Header } from '../src/frame.js';
import { inProcessAgent } from '../src/local.js';
import { recordingAgent } from './helpers/relay.js';
import { BASE_MTIME_MS, diffTrees, file, leftovers, pseudoRandom, runSync, sha256, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';
import { newFileDelta, RawClient } from './helpers/raw-client.js';

const tempDir = useTempDirs();
let root: string;

beforeEach(async () => {
  root = join(tempDir(), 'root');
  await mkdir(root);
});

const MTIME = 1_600_000_000_250;

/** A `puts` file entry for a new file made by `delta`. */
function entry(path: string, delta: Uint8Array, size: number, extra: { mode?: number; basis?: boolean } = {}): unknown[] {
  return [path, size, extra.mode ?? 0o644, MTIME, null, null, extra.basis ?? false, delta.length];
}

async function puts(c: RawClient, id: number, files: { path: string; data: Uint8Array; delta?: Uint8Array; mode?: number }[], extra: Partial<Header> = {}) {
  const deltas = files.map((f) => f.delta ?? newFileDelta(f.data));
  await c.send({ t: 'puts', id, f: files.map((f, i) => entry(f.path, deltas[i], f.data.length, { mode: f.mode })), ...extra }, Buffer.concat(deltas));
  return c.reply(id);
}

/** A request as `type` or `type:path,path` for those that carry paths. */
const typeAndPaths = (h: Header) => `${String(h.t)}${Array.isArray(h.paths) ? `:${h.paths.join(',')}` : ''}`;

/** A raw client whose hello the agent answered, listing `capability`. */
async function clientOffering(capability: string): Promise<RawClient> {
  const c = new RawClient();
  expect((await c.hello(root)).caps).toContain(capability);
  return c;
}

describe('the agent takes batches of small files', () => {
  let c: RawClient;
  beforeEach(async () => void (c = await clientOffering(BATCH_CAPABILITY)));

  it('writes every file of a puts with its mode and mtime, and answers with their sizes', async () => {
    const files = [
      { path: 'a', data: pseudoRandom(1000, 1), mode: 0o600 },
      { path: 'b', data: new Uint8Array(0) },
      { path: 'c', data: pseudoRandom(60_000, 2), mode: 0o755 },
    ];
    expect(await puts(c, 1, files)).toEqual({ t: 'ok', id: 1, r: [1000, 0, 60_000] });
    for (const f of files) {
      expect(sha256(await readFile(join(root, f.path)))).toBe(sha256(f.data));
      const st = await stat(join(root, f.path));
      expect(st.mode & 0o7777).toBe(f.mode ?? 0o644);
      expect(st.mtimeMs).toBe(MTIME);
    }
    expect(await leftovers(root)).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });

  it('fails a file alone: a wrong SHA-256, a path out of the root, a symlinked parent, a missing parent', async () => {
    const outside = tempDir();
    await symlink(outside, join(root, 'link'));
    await writeFile(join(root, 'bad'), 'old content');
    const corrupt = newFileDelta(pseudoRandom(500, 3));
    corrupt[corrupt.length - 1] ^= 1;
    const reply = await puts(c, 1, [
      { path: 'ok1', data: pseudoRandom(10, 4) },
      { path: 'bad', data: pseudoRandom(500, 3), delta: corrupt },
      { path: '../escape', data: pseudoRandom(10, 5) },
      { path: 'link/inside', data: pseudoRandom(10, 6) },
      { path: 'no/such/dir', data: pseudoRandom(10, 7) },
      { path: 'ok2', data: pseudoRandom(20, 8) },
    ]);
    expect(reply.t).toBe('ok');
    const r = reply.r as unknown[];
    expect(r[0]).toBe(10);
    expect(r[1]).toEqual(['HASH_MISMATCH', expect.any(String)]);
    expect(r[2]).toEqual(['PATH_ESCAPE', expect.any(String)]);
    expect(r[3]).toEqual(['PATH_SYMLINK', expect.any(String)]);
    expect(r[4]).toEqual(['ENOENT', expect.any(String)]);
    expect(r[5]).toBe(20);
    expect(await readFile(join(root, 'bad'), 'utf8')).toBe('old content');
    expect(await readdir(outside)).toEqual([]);
    expect(await leftovers(root)).toEqual([]);
    // The session goes on.
    expect(await puts(c, 2, [{ path: 'later', data: pseudoRandom(5, 9) }])).toMatchObject({ t: 'ok', r: [5] });
    expect(await c.bye()).toBeUndefined();
  });

  it('takes a batch compressed as one raw deflate stream', async () => {
    const files = [
      { path: 'x', data: new Uint8Array(30_000).fill(7) },
      { path: 'y', data: new TextEncoder().encode('y'.repeat(5000)) },
    ];
    const deltas = files.map((f) => newFileDelta(f.data));
    const joined = Buffer.concat(deltas);
    const packed = deflateRawSync(joined);
    expect(packed.length).toBeLessThan(joined.length / 10);
    await c.send({ t: 'puts', id: 1, z: true, f: files.map((f, i) => entry(f.path, deltas[i], f.data.length)) }, packed);
    expect(await c.reply(1)).toMatchObject({ t: 'ok', r: [30_000, 5000] });
    expect(sha256(await readFile(join(root, 'x')))).toBe(sha256(files[0].data));
    expect(await c.bye()).toBeUndefined();
  });

  it('patches against a basis, and refuses a basis larger than a batch takes (TOO_LARGE)', async () => {
    const old = pseudoRandom(40_000, 10);
    await writeFile(join(root, 'f'), old);
    await writeFile(join(root, 'big'), new Uint8Array(MAX_BATCH_BASIS + 1));
    const frames = await c.send({ t: 'sigs', id: 1, paths: ['f', 'big', 'missing'], seed: '42', block: null }).then(() => c.exchange(1));
    const end = frames.at(-1)!.header;
    expect(end.t).toBe('sigs');
    const r = end.r as unknown[];
    expect(typeof r[0]).toBe('number');
    expect(r[1]).toEqual(['TOO_LARGE', expect.any(String)]);
    expect(r[2]).toEqual(['PATH_INVALID', expect.any(String)]);
    const payload = Buffer.concat(frames.filter((f) => f.header.t === 'data').map((f) => f.payload!));
    expect(payload.length).toBe(r[0]);
    const sig = decodeSignature(payload);
    expect(sig.seed).toBe(42n);
    const next = Uint8Array.from(old);
    next.set(pseudoRandom(100, 11), 20_000);
    const builder = createDelta(indexSignature(sig));
    const d = Buffer.concat([builder.update(next), builder.final()]);
    expect(builder.stats.copiedBytes).toBeGreaterThan(30_000);
    await c.send({ t: 'puts', id: 2, f: [entry('f', d, next.length, { basis: true }), entry('big', d, next.length, { basis: true })] }, Buffer.concat([d, d]));
    const reply = await c.reply(2);
    expect((reply.r as unknown[])[0]).toBe(next.length);
    expect((reply.r as unknown[])[1]).toEqual(['TOO_LARGE', expect.any(String)]);
    expect(sha256(await readFile(join(root, 'f')))).toBe(sha256(next));
    expect((await stat(join(root, 'big'))).size).toBe(MAX_BATCH_BASIS + 1);
    expect(await c.bye()).toBeUndefined();
  });

  it('stages a batch that carries a stage, and commits it with the rest', async () => {
    expect(await puts(c, 1, [{ path: 's', data: pseudoRandom(100, 12) }], { stage: 'run1' })).toMatchObject({ t: 'ok', r: [100] });
    expect(await readdir(root).then((names) => names.filter((n) => !n.startsWith('.')))).toEqual([]);
    expect(await c.request({ t: 'commit', id: 2, stage: 'run1' })).toMatchObject({ t: 'ok' });
    expect((await stat(join(root, 's'))).size).toBe(100);
    expect(await c.bye()).toBeUndefined();
  });
});

describe('the agent sets attributes in batches (setattrs)', () => {
  let c: RawClient;
  beforeEach(async () => void (c = await clientOffering(SETATTRS_CAPABILITY)));

  it('applies each entry in order, null fields left alone, a symlink itself and never its target', async () => {
    await mkdir(join(root, 'd/e'), { recursive: true });
    await writeFile(join(root, 'd/e/f'), 'x', { mode: 0o644 });
    await writeFile(join(root, 'target'), 't', { mode: 0o600 });
    await symlink('../target', join(root, 'd/link'));
    const before = await stat(join(root, 'target'));
    const reply = await c.request({
      t: 'setattrs',
      id: 1,
      f: [
        ['d/e/f', 0o640, MTIME, null, null],
        ['d/e', 0o750, MTIME + 1000, null, null],
        ['d/link', 0o777, MTIME + 2000, null, null],
        ['d', null, MTIME + 3000, null, null],
        ['d', 0o700, null, null, null],
        // The same path twice: the later entry wins, so they are applied in order.
        ['d/e/f', null, MTIME + 4000, null, null],
      ],
    });
    expect(reply).toEqual({ t: 'ok', id: 1, r: [0, 0, 0, 0, 0, 0] });
    const f = await stat(join(root, 'd/e/f'));
    expect([f.mode & 0o7777, f.mtimeMs]).toEqual([0o640, MTIME + 4000]);
    const e = await stat(join(root, 'd/e'));
    expect([e.mode & 0o7777, e.mtimeMs]).toEqual([0o750, MTIME + 1000]);
    const d = await stat(join(root, 'd'));
    expect([d.mode & 0o7777, d.mtimeMs]).toEqual([0o700, MTIME + 3000]);
    expect((await lstat(join(root, 'd/link'))).mtimeMs).toBe(MTIME + 2000);
    const target = await stat(join(root, 'target'));
    expect([target.mode & 0o7777, target.mtimeMs]).toEqual([0o600, before.mtimeMs]);
    expect(await c.bye()).toBeUndefined();
  });

  it('fails an entry alone: a missing path, a path out of the root, a symlinked parent', async () => {
    const outside = tempDir();
    await writeFile(join(outside, 'o'), 'outside', { mode: 0o644 });
    await symlink(outside, join(root, 'link'));
    await writeFile(join(root, 'a'), 'a');
    const reply = await c.request({
      t: 'setattrs',
      id: 1,
      f: [
        ['missing', 0o600, MTIME, null, null],
        ['../escape', 0o600, MTIME, null, null],
        ['link/o', 0o600, MTIME, null, null],
        ['a', 0o600, MTIME, null, null],
      ],
    });
    expect(reply.r).toEqual([['ENOENT', expect.any(String)], ['PATH_ESCAPE', expect.any(String)], ['PATH_SYMLINK', expect.any(String)], 0]);
    expect((await stat(join(outside, 'o'))).mode & 0o7777).toBe(0o644);
    expect((await stat(join(root, 'a'))).mtimeMs).toBe(MTIME);
    expect(await c.bye()).toBeUndefined();
  });

  it('records a staged batch, applied at commit', async () => {
    await mkdir(join(root, 'd'));
    const before = (await stat(join(root, 'd'))).mtimeMs;
    expect(await c.request({ t: 'setattrs', id: 1, f: [['d', 0o711, MTIME, null, null]], stage: 'run1' })).toEqual({ t: 'ok', id: 1, r: [0] });
    expect((await stat(join(root, 'd'))).mtimeMs).toBe(before);
    expect(await c.request({ t: 'commit', id: 2, stage: 'run1' })).toMatchObject({ t: 'ok' });
    const d = await stat(join(root, 'd'));
    expect([d.mode & 0o7777, d.mtimeMs]).toEqual([0o711, MTIME]);
    expect(await c.bye()).toBeUndefined();
  });
});

describe('the agent makes directories in batches (mkdirs)', () => {
  let c: RawClient;
  beforeEach(async () => void (c = await clientOffering(MKDIRS_CAPABILITY)));

  it('makes each directory in order with its mode; one already there is fine', async () => {
    await mkdir(join(root, 'there'), { mode: 0o755 });
    const reply = await c.request({ t: 'mkdirs', id: 1, f: [['a', 0o755], ['a/b', 0o750], ['a/b/c d', 0o700], ['there', 0o755], ['ü', 0o711]] });
    expect(reply).toEqual({ t: 'ok', id: 1, r: [0, 0, 0, 0, 0] });
    for (const [path, mode] of [['a', 0o755], ['a/b', 0o750], ['a/b/c d', 0o700], ['there', 0o755], ['ü', 0o711]] as const) {
      const st = await stat(join(root, path));
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o7777, path).toBe(mode);
    }
    expect(await c.bye()).toBeUndefined();
  });

  it('fails an entry alone: a file in the way, a missing parent, a path out of the root, a symlinked parent', async () => {
    const outside = tempDir();
    await symlink(outside, join(root, 'link'));
    await writeFile(join(root, 'file'), 'f');
    const reply = await c.request({
      t: 'mkdirs',
      id: 1,
      f: [
        ['file', 0o755],
        ['no/parent', 0o755],
        ['../escape', 0o755],
        ['link/inside', 0o755],
        ['ok', 0o755],
      ],
    });
    expect(reply.r).toEqual([['EEXIST', expect.any(String)], ['ENOENT', expect.any(String)], ['PATH_ESCAPE', expect.any(String)], ['PATH_SYMLINK', expect.any(String)], 0]);
    expect(await readdir(outside)).toEqual([]);
    expect((await stat(join(root, 'ok'))).isDirectory()).toBe(true);
    expect(await c.bye()).toBeUndefined();
  });

  it('records a staged batch, made at commit', async () => {
    expect(await c.request({ t: 'mkdirs', id: 1, f: [['s', 0o750], ['s/t', 0o700]], stage: 'run1' })).toEqual({ t: 'ok', id: 1, r: [0, 0] });
    expect(await readdir(root)).toEqual([]);
    expect(await c.request({ t: 'commit', id: 2, stage: 'run1' })).toMatchObject({ t: 'ok' });
    expect((await stat(join(root, 's/t'))).mode & 0o7777).toBe(0o700);
    expect(await c.bye()).toBeUndefined();
  });
});

describe('the agent refuses malformed batches and ends the session', () => {
  const cases: [string, (c: RawClient) => Promise<void>][] = [
    ['a file list that is not a list', (c) => c.send({ t: 'puts', id: 1, f: 'x' })],
    ['an empty file list', (c) => c.send({ t: 'puts', id: 1, f: [] })],
    [`more than ${MAX_BATCH_FILES} files`, (c) => c.send({ t: 'puts', id: 1, f: Array.from({ length: MAX_BATCH_FILES + 1 }, (_, i) => entry(`f${i}`, new Uint8Array(0), 0)) })],
    ['a field of the wrong type', (c) => c.send({ t: 'puts', id: 1, f: [['a', '10', 0o644, 0, null, null, false, 0]] })],
    ['a mode past 7777', (c) => c.send({ t: 'puts', id: 1, f: [['a', 0, 0o10000, 0, null, null, false, 0]] })],
    ['deltas over 4 MiB', (c) => c.send({ t: 'puts', id: 1, f: [['a', 0, 0o644, 0, null, null, false, 3 << 20], ['b', 0, 0o644, 0, null, null, false, 3 << 20]] })],
    ['a payload shorter than its deltas', (c) => c.send({ t: 'puts', id: 1, f: [['a', 10, 0o644, 0, null, null, false, 100]] }, new Uint8Array(50))],
    ['a compressed payload that inflates past its deltas', (c) => c.send({ t: 'puts', id: 1, z: true, f: [['a', 10, 0o644, 0, null, null, false, 100]] }, deflateRawSync(new Uint8Array(1 << 20)))],
    ['a delta that is not verifiable (rdiff format)', (c) => c.send({ t: 'puts', id: 1, f: [['a', 0, 0o644, 0, null, null, false, 5]] }, Uint8Array.from([0x72, 0x73, 0x02, 0x36, 0x00]))],
    ['a sigs path list that is not strings', (c) => c.send({ t: 'sigs', id: 1, paths: [1, 2], seed: '1', block: null })],
    ['a sigs seed that is not a u64', (c) => c.send({ t: 'sigs', id: 1, paths: ['a'], seed: '-1', block: null })],
    ['an empty setattrs list', (c) => c.send({ t: 'setattrs', id: 1, f: [] })],
    [`more than ${MAX_SETATTRS} setattrs entries`, (c) => c.send({ t: 'setattrs', id: 1, f: Array.from({ length: MAX_SETATTRS + 1 }, (_, i) => [`f${i}`, null, null, null, null]) })],
    ['a setattrs entry of the wrong shape', (c) => c.send({ t: 'setattrs', id: 1, f: [['a', 0o644, 0, null]] })],
    ['a setattrs mode past 7777', (c) => c.send({ t: 'setattrs', id: 1, f: [['a', 0o10000, 0, null, null]] })],
    ['a setattrs mtime that is not a number', (c) => c.send({ t: 'setattrs', id: 1, f: [['a', null, '0', null, null]] })],
    ['an empty mkdirs list', (c) => c.send({ t: 'mkdirs', id: 1, f: [] })],
    [`more than ${MAX_MKDIRS} mkdirs entries`, (c) => c.send({ t: 'mkdirs', id: 1, f: Array.from({ length: MAX_MKDIRS + 1 }, (_, i) => [`d${i}`, 0o755]) })],
    ['a mkdirs entry of the wrong shape', (c) => c.send({ t: 'mkdirs', id: 1, f: [['a', 0o755, 0]] })],
    ['a mkdirs mode past 7777', (c) => c.send({ t: 'mkdirs', id: 1, f: [['a', 0o10000]] })],
    ['a mkdirs path that is not a string', (c) => c.send({ t: 'mkdirs', id: 1, f: [[7, 0o755]] })],
  ];
  for (const [name, send] of cases) {
    it(name, async () => {
      const c = new RawClient();
      await c.hello(root);
      await send(c);
      expect(await c.agentResult).toMatchObject({ code: 'BAD_MESSAGE' });
      expect(await leftovers(root)).toEqual([]);
      expect(await readdir(root)).toEqual([]);
    });
  }
});

describe('the client sends small files in batches', () => {
  it('signatureBatch and putBatch against the agent: results in order, each file alone', async () => {
    const agent = inProcessAgent();
    const client = await AgentClient.connect(agent, { root });
    await writeFile(join(root, 'f'), pseudoRandom(5000, 13));
    const sigs = await client.signatureBatch(['f', 'missing'], 7n);
    expect(sigs[0].ok).toBe(true);
    expect(sigs[1]).toMatchObject({ ok: false, code: 'PATH_INVALID' });
    const data = pseudoRandom(3000, 14);
    const deltas = [newFileDelta(data), newFileDelta(new Uint8Array(1))];
    const { results, sentBytes } = await client.putBatch(
      [
        { path: 'new', attributes: { size: data.length, mode: 0o640, mtimeMs: MTIME }, basis: false, length: deltas[0].length },
        { path: '../out', attributes: { size: 1, mode: 0o644, mtimeMs: MTIME }, basis: false, length: deltas[1].length },
      ],
      Buffer.concat(deltas),
      { compress: true },
    );
    expect(results).toEqual([{ ok: true, size: 3000 }, { ok: false, code: 'PATH_ESCAPE', message: expect.any(String) }]);
    expect(sentBytes).toBeGreaterThan(0);
    expect(sha256(await readFile(join(root, 'new')))).toBe(sha256(data));
    await client.close();
    await agent.done;
  });

  it('signatures asked for ahead are taken by signatureBatch, each once, in order with those asked now', async () => {
    const agent = recordingAgent(typeAndPaths);
    const types = agent.requests;
    const client = await AgentClient.connect(agent, { root });
    for (const name of ['a', 'b', 'c']) await writeFile(join(root, name), pseudoRandom(3000, name.charCodeAt(0)));
    const direct = await client.signatureBatch(['a', 'b', 'c'], 9n);
    client.prefetchSignatures(['c'], 8n); // an earlier run's seed, forgotten at the next
    client.prefetchSignatures(['a', 'missing', 'c'], 9n);
    const mixed = await client.signatureBatch(['c', 'b', 'missing', 'a'], 9n);
    expect(mixed.map((r) => (r.ok ? sha256(r.signature) : r.code))).toEqual([
      sha256((direct[2] as { signature: Uint8Array }).signature),
      sha256((direct[1] as { signature: Uint8Array }).signature),
      'PATH_INVALID',
      sha256((direct[0] as { signature: Uint8Array }).signature),
    ]);
    // Taken once: asking again makes a request of its own.
    await client.signatureBatch(['a'], 9n);
    expect(types.filter((t) => t.startsWith('sigs'))).toEqual(['sigs:a,b,c', 'sigs:c', 'sigs:a,missing,c', 'sigs:b', 'sigs:a']);
    expect(await client.signatureBatch(['c'], 8n)).toHaveLength(1); // asked anew: the seed-8 one was dropped
    expect(types.filter((t) => t.startsWith('sigs'))).toHaveLength(6);
    await client.close();
    await agent.done;
  });

  it('signatures asked for ahead and never taken leave nothing unhandled when the session fails', async () => {
    const agent = inProcessAgent();
    const client = await AgentClient.connect(agent, { root });
    await writeFile(join(root, 'a'), pseudoRandom(3000, 1));
    expect(client.prefetchSignatures(['a'], 3n)).toBe(1);
    client.abort();
    await expect(client.signatureBatch(['a'], 3n)).rejects.toThrow();
    expect(client.prefetchSignatures(['b', 'c'], 4n)).toBe(1); // asked on a closed session: fails, unhandled by no one
    await new Promise((resolve) => setTimeout(resolve, 20));
    await agent.done.catch(() => {});
  });

  it('a sync asks for the signatures of the small files its compared listing found changed before it plans', async () => {
    const src = join(tempDir(), 'src');
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 5; i++) files[`f${i}`] = pseudoRandom(4000, 20 + i);
    await writeTree(src, files);
    expect((await runSync(`${src}/`, root)).ok).toBe(true);
    const changed: TreeSpec = {};
    for (let i = 0; i < 5; i += 2) changed[`f${i}`] = file(Uint8Array.from(files[`f${i}`]).fill(7, 100, 200), { mtimeMs: BASE_MTIME_MS + 5000 });
    changed['newdir/x'] = 'x';
    await writeTree(src, changed);
    const agent = recordingAgent(typeAndPaths);
    const types = agent.requests;
    const summary = await runSync(`${src}/`, root, {}, agent);
    expect(summary).toMatchObject({ ok: true, updated: 3, created: 1 });
    expect(await diffTrees(src, root)).toEqual([]);
    // Asked for right after the compare, before the plan's first change (the new directory).
    const sigs = types.indexOf('sigs:f0,f2,f4');
    expect(sigs).toBeGreaterThan(types.indexOf('compare'));
    expect(sigs).toBeLessThan(types.indexOf('mkdirs'));
    expect(types.filter((t) => t.startsWith('sigs'))).toHaveLength(1);
  });

  it('a sync sends a small file whose destination basis is too large for a batch alone, and gets it right', async () => {
    const src = join(tempDir(), 'src');
    const small = pseudoRandom(2000, 15);
    await writeTree(src, { small, 'many/a': 'a', 'many/b': 'b' });
    await writeFile(join(root, 'small'), pseudoRandom(MAX_BATCH_BASIS + 4096, 16));
    const summary = await runSync(`${src}/`, root);
    expect(summary).toMatchObject({ ok: true, created: 2, updated: 1 });
    expect(sha256(await readFile(join(root, 'small')))).toBe(sha256(small));
    expect(await leftovers(root)).toEqual([]);
  });
});
