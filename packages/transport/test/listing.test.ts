import { mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AgentClient, type RemoteEntry } from '../src/agent-client.js';
import { PathError, ProtocolError, TransportError } from '../src/errors.js';
import type { Frame, Header } from '../src/frame.js';
import { PathFilter } from '../src/filter.js';
import { decodeListing, deflatedListing, encodeAhead, encodeListing, inflateListing, listRemote, LISTING_MAGIC, MAX_LISTING_BYTES } from '../src/listing.js';
import { ListingComparer } from '../src/listing-comparer.js';
import { inProcessAgent } from '../src/local.js';
import { LIST_COMPARE_CAPABILITY, LIST_COMPARE_ZLIB_CAPABILITY, PROTOCOL_VERSION } from '../src/messages.js';
import { planChanges, quickCheck, type Plan } from '../src/plan.js';
import { scanSource, type SourceEntry, type SourceTree } from '../src/tree.js';
import { FrameSession, type ByteStreams } from '../src/wire.js';
import { dir, file, link, useTempDirs, writeTree, BASE_MTIME_MS } from './helpers/tree.js';

const tempDir = useTempDirs();

function entry(path: string, type: 'f' | 'd' | 'l', extra: Partial<SourceEntry> = {}): SourceEntry {
  return { path, local: `/src/${path}`, type, size: type === 'f' ? 10 : 0, mtimeMs: BASE_MTIME_MS, mode: type === 'd' ? 0o755 : 0o644, uid: 0, gid: 0, ...extra };
}

const SAMPLE: SourceEntry[] = [
  entry('a', 'd'),
  entry('a/b.txt', 'f', { size: 0 }),
  entry('a/big', 'f', { size: Number.MAX_SAFE_INTEGER, mtimeMs: 1_700_000_000_123.456 }),
  entry('a/link', 'l', { linkTarget: '../x/ü 𝄞' }),
  entry('a/überlong-名前', 'f', { size: 300, mode: 0o4755 }),
  entry('ab', 'l', { linkTarget: '' }),
  entry('z', 'd', { mode: 0o700, mtimeMs: -5 }),
];

describe('the compared listing encoding', () => {
  it('decodes what it encodes, column by column', () => {
    const listing = decodeListing(encodeListing(SAMPLE));
    expect(listing.paths).toEqual(SAMPLE.map((e) => e.path));
    expect(listing.types).toEqual(SAMPLE.map((e) => e.type));
    expect(listing.sizes).toEqual(SAMPLE.map((e) => (e.type === 'f' ? e.size : 0)));
    expect([...listing.mtimes]).toEqual(SAMPLE.map((e) => e.mtimeMs));
    expect([...listing.modes]).toEqual(SAMPLE.map((e) => e.mode));
    expect(listing.targets).toEqual(SAMPLE.map((e) => e.linkTarget));
    expect(decodeListing(encodeListing([])).paths).toEqual([]);
  });

  it('encodes an entries array once, and shares path prefixes', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => entry(`some/deep/directory/file-${String(i).padStart(4, '0')}`, 'f'));
    const bytes = encodeListing(entries);
    expect(encodeListing(entries)).toBe(bytes);
    // 11 fixed bytes, a 1-byte size and about 4 path bytes an entry, against 33 for the whole path.
    expect(bytes.length).toBeLessThan(entries.length * 20);
  });

  it('deflates a listing once, to bytes that inflate back to the listing', async () => {
    const entries = Array.from({ length: 2000 }, (_, i) => entry(`dir-${i % 7}/sub/file-${String(i).padStart(5, '0')}.txt`, 'f', { size: i * 37 }));
    const bytes = encodeListing(entries);
    const packed = await deflatedListing(entries);
    expect(deflatedListing(entries)).toBe(deflatedListing(entries));
    expect(packed.length).toBeLessThan(bytes.length / 2);
    expect(Buffer.from(inflateListing(packed, bytes.length)).equals(Buffer.from(bytes))).toBe(true);
  });

  it.each([
    ['not deflate data', () => new Uint8Array([0xff, 0xfe, 0xfd, 0xfc]), 8, /invalid or inflates past 8/],
    ['inflating past the size announced', () => deflateRawSync(encodeListing(SAMPLE)), 16, /invalid or inflates past 16/],
    ['inflating to less than announced', () => deflateRawSync(encodeListing([])), 100, /inflates to 8 bytes, 100 announced/],
    ['cut short', () => deflateRawSync(encodeListing(SAMPLE)).subarray(0, 10), encodeListing(SAMPLE).length, /invalid/],
  ])('refuses a deflated listing %s with BAD_MESSAGE', (_name, packed, raw, message) => {
    const error = (() => {
      try {
        inflateListing(packed(), raw);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringMatching(message) });
  });

  it('encodes ahead exactly the listings a compare would send', () => {
    const encodedBefore = (tree: SourceTree, options: { checksum?: boolean }): boolean => {
      encodeAhead(tree, options);
      // What is encoded now is kept: a later change to the entries does not show in the bytes.
      const original = tree.entries[0].path;
      tree.entries[0].path = 'renamed';
      const kept = decodeListing(encodeListing(tree.entries)).paths[0] === original;
      tree.entries[0].path = original;
      return kept;
    };
    const tree = (scope?: string[]): SourceTree => ({ base: '/src', root: undefined, entries: SAMPLE.map((e) => ({ ...e })), skipped: [], scope });
    expect(encodedBefore(tree(), {})).toBe(true);
    expect(encodedBefore(tree(['a', 'z']), {})).toBe(true);
    // --checksum lists the destination whole; so does a scope too long to send with a compare.
    expect(encodedBefore(tree(), { checksum: true })).toBe(false);
    expect(encodedBefore(tree(Array.from({ length: 2000 }, (_, i) => `scope/path-${'x'.repeat(20)}-${i}`)), {})).toBe(false);
  });

  it('refuses every truncation and trailing bytes', () => {
    const bytes = encodeListing(SAMPLE);
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeListing(bytes.subarray(0, n)), `${n} bytes`).toThrow(ProtocolError);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeListing(longer)).toThrow(/after the last column/);
  });

  /** The encoding of `entries` with its bytes changed by `edit`. */
  const edited = (entries: SourceEntry[], edit: (b: Buffer) => void) => {
    const b = Buffer.from(encodeListing(entries));
    edit(b);
    return b;
  };

  it.each([
    ['a bad magic', (b: Buffer) => b.writeUInt32BE(LISTING_MAGIC + 1, 0), /bad magic/],
    ['too many entries', (b: Buffer) => b.writeUInt32BE(0xffffffff, 4), /more than/],
    ['a bad type', (b: Buffer) => (b[8] = 0x70), /type byte/],
    ['a mode beyond 7777', (b: Buffer) => b.writeUInt16BE(0o10000, 9), /mode/],
    ['a mtime that is not finite', (b: Buffer) => b.writeDoubleBE(Number.NaN, 11), /not finite/],
  ])('refuses %s with BAD_MESSAGE', (_name, edit, message) => {
    const bytes = edited([entry('x', 'd')], edit);
    const error = (() => {
      try {
        decodeListing(bytes);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringMatching(message) });
  });

  it('refuses paths that leave the root, the root itself, duplicates, long paths and bad prefixes', () => {
    const bad = (entries: SourceEntry[]) => () => decodeListing(encodeListing(entries));
    expect(bad([entry('../x', 'f')])).toThrow(/leaves the root/);
    expect(bad([entry('/etc/passwd', 'f')])).toThrow(/absolute/);
    expect(bad([entry('a//b', 'f')])).toThrow(/malformed/);
    expect(bad([entry('', 'd')])).toThrow(/the root itself/);
    expect(bad([entry('a', 'f'), entry('a', 'f')])).toThrow(/listed twice/);
    expect(bad([entry('x'.repeat(4097), 'f')])).toThrow(/longer than 4096/);
    expect(bad([entry('l', 'l', { linkTarget: 'x'.repeat(4097) })])).toThrow(/link target longer/);
    // The second path claims more shared bytes than the first has: header 8, 2 types, 4 mode bytes, 16 mtime bytes, 2 sizes.
    const shared = edited([entry('a', 'f'), entry('b', 'f')], (b) => (b[8 + 2 + 4 + 16 + 2 + 3] = 5));
    expect(() => decodeListing(shared)).toThrow(/shares 5 bytes/);
    // A varint of more than 8 bytes.
    const long = Buffer.concat([edited([entry('a', 'f')], () => {}).subarray(0, 8 + 1 + 2 + 8), Buffer.alloc(9, 0xff)]);
    expect(() => decodeListing(long)).toThrow(/varint/);
  });

  it('checks every component of every path, on paths decoded in batches', () => {
    const bad = (...paths: string[]) => () => decodeListing(encodeListing(paths.map((p) => entry(p, 'f'))));
    for (const path of ['a/./b', 'a/.', './a', 'a/..', 'a/../b', 'a/', 'a\0b', '\0']) {
      expect(bad('ok', path), JSON.stringify(path)).toThrow(ProtocolError);
    }
    expect(bad('a', 'a\0b')).toThrow(/NUL/);
    // Dot names that are not "." or ".." are ordinary paths.
    const dots = ['.a', 'a/..b', 'a/.../c', 'a/b.', '. ', 'é/.x'];
    expect(decodeListing(encodeListing(dots.map((p) => entry(p, 'f')))).paths).toEqual(dots);
    // Far more path bytes than one batch holds, with long shared prefixes and non-ASCII names.
    const entries = Array.from({ length: 30_000 }, (_, i) => entry(`d${i % 7}/${'ü'.repeat(i % 50)}x/名前-${i}`, 'f'));
    const listing = decodeListing(encodeListing(entries));
    expect(listing.paths).toEqual(entries.map((e) => e.path));
    expect(listing.index.size).toBe(entries.length);
    for (const i of [0, 1, 12_345, 29_999]) expect(listing.index.get(entries[i].path)).toBe(i);
  });

  it('finds a bad path by its entry number however deep in a batch it lies', () => {
    const paths = Array.from({ length: 30_000 }, (_, i) => `d${i % 7}/f${i}`);
    const decodeWith = (i: number, path: string) => () => decodeListing(encodeListing(paths.map((p, k) => entry(k === i ? path : p, 'f'))));
    expect(decodeWith(20_000, 'd1/./x')).toThrow(/entry 20000: malformed path/);
    expect(decodeWith(25_001, 'd1/x/')).toThrow(/entry 25001: malformed path/);
    // Last, as the encoder joins paths with NULs (a wire path never holds one).
    expect(decodeWith(29_999, 'd1/x\0y')).toThrow(/entry 29999: .*NUL/);
    expect(decodeWith(12_000, '/etc/passwd')).toThrow(/entry 12000: absolute path refused/);
    // A duplicate before the bad path, in the same batch, is the first fault.
    const twice = paths.map((p, k) => entry(k === 21_000 ? 'd0/f0' : k === 21_001 ? '..' : p, 'f'));
    expect(() => decodeListing(encodeListing(twice))).toThrow(/entry 21000: "d0\/f0" listed twice/);
  });

  it('reports the first fault of a listing: a duplicate before a malformed path, and the other way round', () => {
    const decode = (...paths: string[]) => () => decodeListing(encodeListing(paths.map((p) => entry(p, 'f'))));
    expect(decode('a', 'b', 'a', 'c/../d')).toThrow(/entry 2: "a" listed twice/);
    expect(decode('a', 'c/../d', 'a')).toThrow(/entry 1: .*leaves the root/);
  });
});

describe('the agent\'s comparer', () => {
  const source = [entry('a', 'd'), entry('a/f', 'f'), entry('b', 'f')];
  const listing = () => decodeListing(encodeListing(source));
  const check = (c: ListingComparer, e: SourceEntry, change: Partial<SourceEntry> = {}) => {
    const d = { ...e, ...change };
    return c.reports(d.path, d.type, d.size, d.mtimeMs, d.mode, d.linkTarget);
  };

  it('holds every entry unchanged only when each one passes the quick check, each counted once', () => {
    const all = new ListingComparer(listing(), false);
    for (const e of source) expect(check(all, e)).toBe(false);
    expect(check(all, source[1])).toBe(false); // seen twice, counted once
    expect([all.held, all.allHeld]).toEqual([3, true]);

    const changed = new ListingComparer(listing(), false);
    expect(check(changed, source[0])).toBe(false);
    expect(check(changed, source[1], { size: 11 })).toBe(true);
    expect(check(changed, source[2])).toBe(false);
    expect([changed.held, changed.allHeld]).toEqual([2, false]);

    const missing = new ListingComparer(listing(), true); // b absent at the destination
    expect(check(missing, source[0])).toBe(false);
    expect(check(missing, source[1])).toBe(false);
    expect(check(missing, entry('extra', 'f'))).toBe(true);
    expect(missing.allHeld).toBe(false);
  });
});

describe('quickCheck', () => {
  const base = { type: 'f' as const, size: 5, mtimeMs: 1000.4, mode: 0o644 };
  it('holds for equal attributes, to the millisecond', () => {
    expect(quickCheck(base, { ...base, mtimeMs: 1000.9 })).toBe(true);
    expect(quickCheck({ ...base, type: 'l', linkTarget: 't' }, { ...base, type: 'l', linkTarget: 't', mode: 0o777, size: 9 })).toBe(true);
    expect(quickCheck({ ...base, type: 'd' }, { ...base, type: 'd', size: 9 })).toBe(true);
  });
  it('fails on any difference planning acts on', () => {
    expect(quickCheck(base, { ...base, size: 6 })).toBe(false);
    expect(quickCheck(base, { ...base, mtimeMs: 1001.5 })).toBe(false);
    expect(quickCheck(base, { ...base, mode: 0o600 })).toBe(false);
    expect(quickCheck(base, { ...base, type: 'd' })).toBe(false);
    expect(quickCheck(base, { ...base, type: 'p' })).toBe(false);
    expect(quickCheck({ ...base, type: 'l', linkTarget: 'a' }, { ...base, type: 'l', linkTarget: 'b' })).toBe(false);
    expect(quickCheck({ ...base, type: 'd' }, { ...base, type: 'd', mode: 0o700 })).toBe(false);
  });
});

/** What a plan decided, path by path, for comparing plans made from different listings. */
function decisions(plan: Plan) {
  const paths = (changes: { path: string; kind: string; resume?: boolean }[]) => changes.map((c) => `${c.kind}:${c.path}${c.resume ? ':resume' : ''}`);
  return {
    deletes: paths(plan.deletes),
    mkdirs: paths(plan.mkdirs),
    files: paths(plan.files),
    symlinks: paths(plan.symlinks),
    attrs: paths(plan.attrs),
    dirAttrs: paths(plan.dirAttrs),
    unchanged: plan.unchanged,
  };
}

const T = BASE_MTIME_MS;

/** A source and a destination that differ in every way planning looks at. */
async function divergingTrees() {
  const src = join(tempDir(), 'src');
  const dst = join(tempDir(), 'dst');
  const common = {
    'same.txt': file('same'),
    'docs/readme': file('hello'),
    'docs/deep/inner': file('inner'),
    'links/same': link('../same.txt'),
    'keep/excluded.log': file('x'),
  };
  await writeTree(src, {
    ...common,
    'size.txt': file('longer content'),
    'time.txt': file('time', { mtimeMs: T + 5000 }),
    'mode.txt': file('mode', { mode: 0o600 }),
    'subms.txt': file('subms', { mtimeMs: T + 0.7 }),
    'typed': dir(),
    'typed/child': file('c'),
    'links/moved': link('new-target'),
    'links/retimed': link('t', { mtimeMs: T + 9000 }),
    'newdir/newfile': file('new'),
    'resumed.bin': file('resume me'),
    'dirmode': dir({ mode: 0o700 }),
  });
  await writeTree(dst, {
    ...common,
    'size.txt': file('short'),
    'time.txt': file('time'),
    'mode.txt': file('mode'),
    'subms.txt': file('subms', { mtimeMs: T + 0.2 }),
    'typed': file('was a file'),
    'links/moved': link('old-target'),
    'links/retimed': link('t'),
    'extra/deep/file': file('extraneous'),
    'extra.txt': file('extraneous'),
    'dirmode': dir(),
    'gone.log': file('excluded, so never deleted'),
  });
  // A partial kept from an interrupted transfer of resumed.bin (its name as tempfile.ts makes it).
  await writeFile(join(dst, '.resumed.bin.dcpartial'), 'resume');
  // Directories' mtimes as the source's, so only the intended differences remain.
  for (const d of ['docs', 'docs/deep', 'links', 'keep']) await utimes(join(dst, d), T / 1000, T / 1000);
  for (const d of ['docs', 'docs/deep', 'links', 'keep']) await utimes(join(src, d), T / 1000, T / 1000);
  return { src, dst };
}

async function connect(root: string, partial = true): Promise<AgentClient> {
  return AgentClient.connect(inProcessAgent(), { root, partial });
}

describe('planning from a compared listing', () => {
  it.each([
    ['with --delete', true],
    ['without --delete', false],
  ])('decides exactly as from the whole listing (%s)', async (_name, del) => {
    const { src, dst } = await divergingTrees();
    const filter = new PathFilter([{ action: 'exclude', pattern: '*.log' }]);
    const tree = await scanSource(`${src}/`, filter);
    const client = await connect(dst);
    expect(client.info?.capabilities).toContain(LIST_COMPARE_CAPABILITY);
    const whole = await client.list();
    const compared = await listRemote(client, tree, { extraneous: del });
    expect(compared.unchanged).toBeInstanceOf(Uint8Array);
    // Only what is not unchanged came back: far fewer entries than the whole listing.
    expect(compared.entries.length).toBeLessThan(whole.length);
    expect(compared.entries.map((e) => e.path)).not.toContain('same.txt');
    expect(compared.entries.some((e) => e.path === 'extra.txt')).toBe(del);
    expect(compared.entries).toContainEqual(expect.objectContaining({ path: 'resumed.bin', type: 'p' }));
    const fromWhole = planChanges(tree, whole, filter, { delete: del });
    const fromCompared = planChanges(tree, compared.entries, filter, { delete: del, unchanged: compared.unchanged });
    expect(decisions(fromCompared)).toEqual(decisions(fromWhole));
    // The differences are all there.
    expect(decisions(fromCompared).files).toEqual(
      expect.arrayContaining(['update:size.txt', 'update:time.txt', 'create:typed/child', 'create:resumed.bin:resume', 'create:newdir/newfile']),
    );
    expect(decisions(fromCompared).attrs).toEqual(['attrs:mode.txt']);
    expect(decisions(fromCompared).files).not.toContain('update:subms.txt');
    expect(decisions(fromCompared).deletes.includes('delete:gone.log')).toBe(false);
    expect(decisions(fromCompared).deletes.includes('delete:extra')).toBe(del);
    await client.close();
  });

  it('decides as the whole listing for a scoped run and for a "dir" source', async () => {
    const { src, dst } = await divergingTrees();
    const filter = new PathFilter([]);
    for (const [source, paths] of [
      [`${src}/`, ['links', 'typed/child', 'extra', 'missing/x']],
      [src, undefined],
    ] as const) {
      const tree = await scanSource(source, filter, { paths: paths ? [...paths] : undefined });
      const client = await connect(dst);
      const whole = await client.list(tree.scope);
      const compared = await listRemote(client, tree, { extraneous: true });
      expect(compared.unchanged).toBeDefined();
      expect(decisions(planChanges(tree, compared.entries, filter, { delete: true, unchanged: compared.unchanged }))).toEqual(
        decisions(planChanges(tree, whole, filter, { delete: true })),
      );
      await client.close();
    }
  });

  it('lists the old way for an agent without list-compare, and for --checksum', async () => {
    const { src, dst } = await divergingTrees();
    const tree = await scanSource(`${src}/`, new PathFilter([]));
    const client = await connect(dst);
    const whole = await client.list();
    expect((await listRemote(client, tree, { extraneous: true, checksum: true })).unchanged).toBeUndefined();
    client.info!.capabilities = client.info!.capabilities.filter((c) => c !== LIST_COMPARE_CAPABILITY);
    const old = await listRemote(client, tree, { extraneous: true });
    expect(old.unchanged).toBeUndefined();
    expect(old.entries).toEqual(whole);
    await client.close();
  });

  it('fails a request whose scope path is malformed alone, and one with a symlink above a scope path', async () => {
    const dst = join(tempDir(), 'dst');
    await mkdir(join(dst, 'real'), { recursive: true });
    await symlink('real', join(dst, 'via'));
    const client = await connect(dst);
    const error = await client.compare([entry('via/x', 'f')], { paths: ['via/x'], extraneous: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PATH_SYMLINK' });
    const escape = await client.compare([], { paths: ['../x'], extraneous: false }).catch((e: unknown) => e);
    expect(escape).toMatchObject({ code: 'PATH_ESCAPE' });
    // The session goes on.
    const after = await client.compare([entry('real', 'd')], { extraneous: false });
    expect(after.entries.map((e) => e.path)).toEqual(['real']); // its mtime is not the entry's
    expect([...after.unchanged]).toEqual([0]);
    await client.close();
    await rm(dst, { recursive: true });
  });
});

describe('the walk an agent begins at hello (walk: true)', () => {
  it('compares against it: the same decisions as a walk at compare time', async () => {
    const { src, dst } = await divergingTrees();
    const filter = new PathFilter([]);
    const tree = await scanSource(`${src}/`, filter);
    const plain = await AgentClient.connect(inProcessAgent(), { root: dst, partial: true });
    const expected = await listRemote(plain, tree, { extraneous: true });
    await plain.close();
    const early = await AgentClient.connect(inProcessAgent(), { root: dst, partial: true, walk: true });
    await new Promise((r) => setTimeout(r, 10)); // the in-process agent's walk has run
    // Written behind the agent's back after its walk: the compare reports the tree as walked.
    await writeFile(join(dst, 'after-the-walk.txt'), 'x');
    const compared = await listRemote(early, tree, { extraneous: true });
    expect(compared.entries).toEqual(expected.entries);
    expect([...compared.unchanged!]).toEqual([...expected.unchanged!]);
    await early.close();
  });

  it('is dropped by any other request first, which may change the tree', async () => {
    const { src, dst } = await divergingTrees();
    const tree = await scanSource(`${src}/`, new PathFilter([]));
    const client = await AgentClient.connect(inProcessAgent(), { root: dst, partial: true, walk: true });
    // The in-process agent's walk starts on its next turn of this event loop, and runs through.
    await new Promise((r) => setTimeout(r, 10));
    // Made after the early walk: a compare that used it would not see this directory.
    await client.mkdir('made-later', 0o755);
    const compared = await listRemote(client, tree, { extraneous: true });
    expect(compared.entries.map((e) => e.path)).toContain('made-later');
    await client.close();
  });

  it('is not used for a scoped compare, and serves only the first compare', async () => {
    const { src, dst } = await divergingTrees();
    const client = await AgentClient.connect(inProcessAgent(), { root: dst, partial: true, walk: true });
    const scoped = await scanSource(`${src}/`, new PathFilter([]), { paths: ['docs'] });
    const first = await listRemote(client, scoped, { extraneous: true });
    // Only the scope came back, as without the early walk.
    expect(first.entries.every((e) => e.path === 'docs' || e.path.startsWith('docs/'))).toBe(true);
    await writeFile(join(dst, 'written-later.txt'), 'x');
    const tree = await scanSource(`${src}/`, new PathFilter([]));
    const second = await listRemote(client, tree, { extraneous: true });
    expect(second.entries.map((e) => e.path)).toContain('written-later.txt');
    await client.close();
  });
});

/** A hand-written client against a real agent, to send what AgentClient never would. */
async function rawSession(root: string) {
  const agent = inProcessAgent();
  const session = new FrameSession(agent);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  session.onFrame((f) => {
    frames.push({ header: f.header, payload: f.payload?.slice() });
    wake?.();
  });
  const closed = new Promise<TransportError | undefined>((resolve) => session.onClose(resolve));
  await session.send({ t: 'hello', v: [1, PROTOCOL_VERSION], caps: [], root, owner: false, partial: false });
  const agentResult = agent.done.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { session, frames, closed, agentResult, next: () => new Promise<void>((r) => (wake = r)) };
}

describe('the agent refuses malformed compare requests, ending the session', () => {
  const cases: [string, (s: FrameSession) => Promise<void>, RegExp][] = [
    ['a size past the cap', (s) => s.send({ t: 'compare', id: 1, n: 0, size: MAX_LISTING_BYTES + 1, extra: false }), /size/],
    ['a count past the cap', (s) => s.send({ t: 'compare', id: 1, n: 1e9, size: 8, extra: false }), /"n"/],
    [
      'more bytes than announced',
      async (s) => {
        await s.send({ t: 'compare', id: 1, n: 0, size: 4, extra: false });
        await s.send({ t: 'data', id: 1 }, encodeListing([]));
      },
      /more than the 4 bytes/,
    ],
    [
      'fewer bytes than announced',
      async (s) => {
        await s.send({ t: 'compare', id: 1, n: 0, size: 100, extra: false });
        await s.send({ t: 'data', id: 1 }, encodeListing([]));
        await s.send({ t: 'end', id: 1 });
      },
      /8 bytes, 100 announced/,
    ],
    [
      'a count that is not the listing\'s',
      async (s) => {
        const bytes = encodeListing([entry('a', 'f')]);
        await s.send({ t: 'compare', id: 1, n: 2, size: bytes.length, extra: false });
        await s.send({ t: 'data', id: 1 }, bytes);
        await s.send({ t: 'end', id: 1 });
      },
      /holds 1 entries, 2 announced/,
    ],
    ['a deflated listing whose size is past the cap', (s) => s.send({ t: 'compare', id: 1, n: 0, size: 8, z: true, raw: MAX_LISTING_BYTES + 1, extra: false }), /"raw"/],
    [
      'a deflated listing that does not inflate',
      async (s) => {
        await s.send({ t: 'compare', id: 1, n: 0, size: 4, z: true, raw: 8, extra: false });
        await s.send({ t: 'data', id: 1 }, new Uint8Array([0xff, 0xfe, 0xfd, 0xfc]));
        await s.send({ t: 'end', id: 1 });
      },
      /deflated listing is invalid/,
    ],
    [
      'a deflated listing larger than announced',
      async (s) => {
        const packed = deflateRawSync(encodeListing([entry('a', 'f')]));
        await s.send({ t: 'compare', id: 1, n: 1, size: packed.length, z: true, raw: 8, extra: false });
        await s.send({ t: 'data', id: 1 }, packed);
        await s.send({ t: 'end', id: 1 });
      },
      /inflates past 8 bytes/,
    ],
    [
      'a listing that does not decode',
      async (s) => {
        const bytes = new Uint8Array(12);
        await s.send({ t: 'compare', id: 1, n: 0, size: 12, extra: false });
        await s.send({ t: 'data', id: 1 }, bytes);
        await s.send({ t: 'end', id: 1 });
      },
      /bad magic/,
    ],
  ];
  it.each(cases)('%s', async (_name, send, message) => {
    const root = join(tempDir(), 'root');
    const raw = await rawSession(root);
    await send(raw.session);
    await raw.closed;
    expect(await raw.agentResult).toBeInstanceOf(ProtocolError);
    expect(await raw.agentResult).toMatchObject({ code: 'BAD_MESSAGE', message: expect.stringMatching(message) });
  });
});

/**
 * A fake agent offering list-compare (and what `caps` adds) that answers a compare with the frames
 * the test gives; `received` gets the compare's header and its data, concatenated.
 */
function fakeComparingAgent(
  answer: (h: Header, session: FrameSession) => Promise<void>,
  caps: string[] = [],
  received?: (h: Header, data: Uint8Array) => void,
): ByteStreams {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const session = new FrameSession({ readable: toAgent, writable: fromAgent });
  let compare: Header | undefined;
  const data: Uint8Array[] = [];
  session.onFrame((f) => {
    if (f.header.t === 'hello') void session.send({ t: 'hello', v: 1, caps: [LIST_COMPARE_CAPABILITY, ...caps], root: '/fake', version: 'fake', uid: 0 });
    else if (f.header.t === 'compare') compare = f.header;
    else if (f.header.t === 'data' && f.payload) data.push(f.payload.slice());
    else if (f.header.t === 'end') {
      received?.(compare!, Buffer.concat(data));
      void answer(f.header, session);
    }
  });
  return { readable: fromAgent, writable: toAgent, close: () => fromAgent.end() };
}

describe('the client against a malicious agent answering compare', () => {
  const source = [entry('a', 'd'), entry('a/f', 'f'), entry('b', 'f')];
  const run = async (answer: (h: Header, session: FrameSession) => Promise<void>) => {
    const client = await AgentClient.connect(fakeComparingAgent(answer), { root: '/x' });
    return client.compare(source, { extraneous: true }).catch((e: unknown) => e);
  };
  const fileEntry = (path: string): unknown[] => [path, 'f', 1, 0, 0o644, 0, 0];

  it('takes a well-formed reply', async () => {
    const result = await run(async (h, s) => {
      await s.send({ t: 'entries', id: h.id, e: [fileEntry('b'), fileEntry('extra')] });
      await s.send({ t: 'compared', id: h.id, n: 2 }, new Uint8Array([0b011]));
    });
    const { entries, unchanged } = result as { entries: RemoteEntry[]; unchanged: Uint8Array };
    expect(entries.map((e) => e.path)).toEqual(['b', 'extra']);
    expect([...unchanged]).toEqual([0b011]);
  });

  it.each([
    ['a bitmap of the wrong length', new Uint8Array([1, 0]), 0, [] as unknown[][]],
    ['no bitmap', undefined, 0, []],
    ['bits set past the last entry', new Uint8Array([0b1000]), 0, []],
    ['an entry it also calls unchanged', new Uint8Array([0b100]), 1, [fileEntry('b')]],
    ['a count that is not what came', new Uint8Array([0]), 5, [fileEntry('b')]],
  ])('refuses %s with BAD_MESSAGE', async (_name, bitmap, n, entries) => {
    const error = await run(async (h, s) => {
      if (entries.length > 0) await s.send({ t: 'entries', id: h.id, e: entries });
      await s.send({ t: 'compared', id: h.id, n }, bitmap);
    });
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'BAD_MESSAGE' });
  });

  it('deflates the listing for an agent that takes it so, and only for one', async () => {
    const sent: { z: unknown; raw: unknown; size: unknown; bytes: Uint8Array }[] = [];
    const answer = async (h: Header, s: FrameSession) => {
      await s.send({ t: 'compared', id: h.id, n: 0 }, new Uint8Array([0b111]));
    };
    for (const caps of [[LIST_COMPARE_ZLIB_CAPABILITY], []]) {
      const client = await AgentClient.connect(
        fakeComparingAgent(answer, caps, (h, bytes) => sent.push({ z: h.z, raw: h.raw, size: h.size, bytes })),
        { root: '/x' },
      );
      const { unchanged } = await client.compare(source, { extraneous: false });
      expect([...unchanged]).toEqual([0b111]);
      client.abort(); // the fake agent answers nothing but compare
    }
    const listing = encodeListing(source);
    expect(sent[0]).toMatchObject({ z: true, raw: listing.length, size: sent[0].bytes.length });
    expect(Buffer.from(inflateListing(sent[0].bytes, listing.length)).equals(Buffer.from(listing))).toBe(true);
    expect(sent[1]).toMatchObject({ z: undefined, raw: undefined, size: listing.length });
    expect(Buffer.from(sent[1].bytes).equals(Buffer.from(listing))).toBe(true);
  });

  it('refuses entries that leave the root with a PathError', async () => {
    const error = await run(async (h, s) => {
      await s.send({ t: 'entries', id: h.id, e: [fileEntry('../evil')] });
      await s.send({ t: 'compared', id: h.id, n: 1 }, new Uint8Array([0]));
    });
    expect(error).toBeInstanceOf(PathError);
  });
});
