/**
 * Faults on one destination of several: its agent killed mid-transfer, a full disk, a directory that
 * cannot be written. The faulty destination reports the failure (never holding a partial file); the
 * healthy ones commit everything; the next run repairs what it can.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_MTIME_MS,
  expectAllIdentical,
  file,
  hashOf,
  leftovers,
  pseudoRandom,
  resultFor,
  runFanout,
  snapshotOf,
  sha256,
  useTempDirs,
  writeTree,
} from './helpers.js';
import { hostEntry, startAgentServer, writeSshConfig, type AgentServer } from './ssh-servers.js';
import { FrameSession, PROTOCOL_VERSION } from '@deltacast/transport';
import { fanout } from '../src/fanout.js';
import { startSsh2Server } from '../../transport/test/helpers/ssh2-server.js';

const MiB = 1024 * 1024;
const tempDir = useTempDirs('deltacast-fanout-faults-');

/** Why a root-only setup cannot run here, or undefined when it can. */
function probe(what: string, setup: (dir: string) => string[][], undo: (dir: string) => string[][]): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'deltacast-probe-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    mkdirSync(join(dir, 'm'));
    for (const a of setup(dir)) {
      const run = spawnSync(a[0], a.slice(1), { encoding: 'utf8' });
      if (run.error || run.status !== 0) return `${what} is not permitted here: ${(run.error?.message ?? run.stderr).trim()}`;
    }
    return undefined;
  } finally {
    for (const a of undo(dir)) spawnSync(a[0], a.slice(1));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** TCP handles this process holds (client and in-process server ends of SSH connections). */
function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPWRAP' || r === 'TCPSocketWrap').length;
}

describe('one destination’s agent killed mid-transfer', () => {
  let killer: AgentServer;
  let configFile = '';
  const privateTmp = tempDir();
  const savedTmp = process.env.TMPDIR;

  beforeAll(async () => {
    killer = await startAgentServer();
    configFile = writeSshConfig(join(killer.server.dir, 'fanout_ssh_config'), [hostEntry('killer', killer)]);
  });
  afterAll(() => killer?.server.close());
  afterEach(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });

  it('fails that destination alone, which keeps old or no files, and the next run repairs it', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    const roots = [join(base, 'dst1'), join(base, 'dst2'), join(base, 'dst3')];
    const oldBig = randomBytes(10 * MiB);
    for (const root of roots) await writeTree(root, { 'big-update.bin': file(oldBig, { mtimeMs: BASE_MTIME_MS - 60_000 }) });
    // A new 10 MiB of content: its shared delta is all literal, more than the spool keeps in memory.
    await writeTree(src, {
      'big-update.bin': file(randomBytes(10 * MiB)),
      'big-new.bin': file(randomBytes(4 * MiB)),
      'small.txt': file('small'),
    });
    const destinations = [roots[0], roots[1], `killer:${roots[2]}`];
    const ssh = { configFile, remoteCommand: 'deltacast agent' };

    // Spools spill under the temp dir; a private one shows what they leave behind.
    process.env.TMPDIR = privateTmp;
    killer.killAfterBytes = 3 * MiB;
    const tcpBefore = tcpHandles();
    const run = await runFanout({ source: `${src}/`, destinations, ssh, localAgent: 'in-process' });
    killer.killAfterBytes = undefined;
    expect(readdirSync(privateTmp)).toEqual([]);
    // The failed destination's SSH connection is closed too (both ends live in this process).
    for (let i = 0; i < 40 && tcpHandles() > tcpBefore; i++) await sleep(50);
    expect(tcpHandles()).toBeLessThanOrEqual(tcpBefore);

    expect(killer.kills).toHaveLength(1);
    expect(run.result.ok).toBe(false);
    expect(run.result.destinations.map((d) => d.ok)).toEqual([true, true, false]);
    const killed = resultFor(run.result, destinations[2]).summary;
    expect(killed.errors.length).toBeGreaterThan(0);
    // The session's end is reported once, for the destination as a whole.
    expect(killed.errors.filter((e) => e.path === '')).toHaveLength(1);
    for (const e of killed.errors) expect(['CLOSED', 'IO']).toContain(e.code);
    await expectAllIdentical(src, roots.slice(0, 2));
    for (const d of run.deltas) {
      expect(d.destinations).toContain(roots[0]);
      expect(d.destinations).toContain(roots[1]);
    }

    // Old or nothing, never part of the new file.
    expect(await hashOf(roots[2], 'big-update.bin')).toBe(sha256(oldBig));
    expect([undefined, await hashOf(src, 'big-new.bin')]).toContain(await hashOf(roots[2], 'big-new.bin'));
    expect([undefined, sha256('small')]).toContain(await hashOf(roots[2], 'small.txt'));

    const repair = await runFanout({ source: `${src}/`, destinations, ssh, localAgent: 'in-process' });
    expect(repair.errors).toEqual([]);
    expect(repair.result.ok).toBe(true);
    expect(resultFor(repair.result, roots[0]).summary).toMatchObject({ created: 0, updated: 0 });
    expect(resultFor(repair.result, destinations[2]).summary.updated).toBe(1);
    // The temp files the killed agent left are removed by the next listing.
    await expectAllIdentical(src, roots);
    expect(await leftovers(roots[2])).toEqual([]);
  });

  it('with all-or-none, a destination killed while staging keeps every destination as it was', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    const roots = [join(base, 'dst1'), join(base, 'dst2'), join(base, 'dst3')];
    for (const root of roots) await writeTree(root, { 'big-update.bin': file(randomBytes(MiB), { mtimeMs: BASE_MTIME_MS - 60_000 }) });
    await writeTree(src, { 'big-update.bin': file(randomBytes(6 * MiB)), 'small.txt': file('small') });
    const destinations = [roots[0], roots[1], `killer:${roots[2]}`];
    const ssh = { configFile, remoteCommand: 'deltacast agent' };
    const before = await Promise.all(roots.map((r) => snapshotOf(r)));
    const killedBefore = await hashOf(roots[2], 'big-update.bin');
    killer.killAfterBytes = 2 * MiB;
    const run = await runFanout({ source: `${src}/`, destinations, ssh, localAgent: 'in-process', commit: 'all-or-none' });
    killer.killAfterBytes = undefined;
    expect(run.result.ok).toBe(false);
    expect(run.result.destinations.map((d) => d.committed)).toEqual([false, false, false]);
    // The killed agent's staging directory stays behind until the next listing; nothing else changed.
    const after = await Promise.all(roots.map((r) => snapshotOf(r)));
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(await hashOf(roots[2], 'big-update.bin')).toBe(killedBefore);
  });
});

const immutableUnavailable = probe('chattr +i', (d) => [['chattr', '+i', join(d, 'f')]], (d) => [['chattr', '-i', join(d, 'f')]]);

describe('a directory that cannot be written on one destination', () => {
  const locked: string[] = [];
  afterAll(() => {
    for (const d of locked) spawnSync('chattr', ['-i', d]);
  });

  // Tests run as root, which ignores mode bits: an immutable directory refuses root too.
  it.skipIf(immutableUnavailable !== undefined)(
    `fails its paths there while every other destination gets everything${immutableUnavailable ? ` (skipped: ${immutableUnavailable})` : ''}`,
    async () => {
      const base = tempDir();
      const src = join(base, 'src');
      const roots = [join(base, 'dst1'), join(base, 'dst2'), join(base, 'dst3')];
      await writeTree(src, { 'ro/existing.txt': file('v1'), 'ok/b.txt': file('b'), 'c.txt': file('c') });
      expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
      await writeTree(src, {
        'ro/existing.txt': file('v2', { mtimeMs: BASE_MTIME_MS + 1000 }),
        'ro/new.txt': file('new'),
        'ok/new.txt': file('ok new'),
        'c.txt': file('c2', { mtimeMs: BASE_MTIME_MS + 1000 }),
      });
      const ro = join(roots[2], 'ro');
      const lock = spawnSync('chattr', ['+i', ro], { encoding: 'utf8' });
      expect(lock.status, lock.stderr).toBe(0);
      locked.push(ro);
      try {
        const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'child' });
        expect(run.result.ok).toBe(false);
        expect(run.result.destinations.map((d) => d.ok)).toEqual([true, true, false]);
        const summary = resultFor(run.result, roots[2]).summary;
        const failed = Object.fromEntries(summary.errors.map((e) => [e.path, e.code]));
        expect(failed).toMatchObject({ 'ro/existing.txt': 'EPERM', 'ro/new.txt': 'EPERM' });
        for (const path of Object.keys(failed)) expect(path.startsWith('ro')).toBe(true);
        expect(summary).toMatchObject({ created: 1, updated: 1 });
        expect(readFileSync(join(ro, 'existing.txt'), 'utf8')).toBe('v1');
        expect(existsSync(join(ro, 'new.txt'))).toBe(false);
        expect(readFileSync(join(roots[2], 'ok/new.txt'), 'utf8')).toBe('ok new');
        expect(readFileSync(join(roots[2], 'c.txt'), 'utf8')).toBe('c2');
        await expectAllIdentical(src, roots.slice(0, 2));
        // The healthy destinations shared each delta; the locked one was in every group but failed its ro/ files.
        expect(run.result).toMatchObject({ files: 4, deltasComputed: 4, destinationFiles: 10 });
      } finally {
        spawnSync('chattr', ['-i', ro]);
      }
      expect(await leftovers(roots[2])).toEqual([]);
    },
  );
});

describe('a dry run against a destination it may not write', () => {
  const locked: string[] = [];
  afterAll(() => {
    for (const d of locked) spawnSync('chattr', ['-i', d]);
  });

  // A dry run only lists and compares, so a read-only destination is checked like any other (rsync
  // -n needs no write access either): no lock file is made there.
  it.skipIf(immutableUnavailable !== undefined)(
    `reports its plan${immutableUnavailable ? ` (skipped: ${immutableUnavailable})` : ''}`,
    async () => {
      const base = tempDir();
      const src = join(base, 'src');
      const roots = [join(base, 'dst1'), join(base, 'dst2')];
      await writeTree(src, { 'a.txt': file('a'), 'b.txt': file('b') });
      expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
      await writeTree(src, { 'b.txt': file('b2', { mtimeMs: BASE_MTIME_MS + 1000 }) });
      const lock = spawnSync('chattr', ['+i', roots[1]], { encoding: 'utf8' });
      expect(lock.status, lock.stderr).toBe(0);
      locked.push(roots[1]);
      try {
        const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', dryRun: true });
        expect(resultFor(run.result, roots[1]).summary.errors).toEqual([]);
        expect(run.result.destinations.map((d) => d.summary)).toEqual([
          expect.objectContaining({ ok: true, dryRun: true, updated: 1 }),
          expect.objectContaining({ ok: true, dryRun: true, updated: 1 }),
        ]);
      } finally {
        spawnSync('chattr', ['-i', roots[1]]);
      }
    },
  );
});

const mountUnavailable = probe('mount -t tmpfs', (d) => [['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', join(d, 'm')]], (d) => [['umount', join(d, 'm')]]);

/** A 512 KiB tmpfs for the describe block it is called in (mounted before its tests, unmounted after). */
function useSmallDisk(name: string): () => string {
  let small = '';
  beforeAll(() => {
    if (mountUnavailable) return;
    small = join(tempDir(), name);
    mkdirSync(small);
    const run = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', small], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`mount failed: ${run.stderr}`);
  });
  afterAll(() => {
    if (!small) return;
    if (spawnSync('umount', [small]).status !== 0) spawnSync('umount', ['-l', small]);
  });
  return () => small;
}

describe('a full disk on one destination', () => {
  const smallDisk = useSmallDisk('small-disk');
  let small = '';
  beforeAll(() => {
    small = smallDisk();
  });

  it.skipIf(mountUnavailable !== undefined)(
    `fails what does not fit there with ENOSPC while the others commit everything${mountUnavailable ? ` (skipped: ${mountUnavailable})` : ''}`,
    async () => {
      const base = tempDir();
      const src = join(base, 'src');
      const roots = [join(base, 'dst1'), join(base, 'dst2')];
      const spec = {
        'a.txt': file('alpha'),
        'b.bin': file(pseudoRandom(60_000, 31)),
        'dir/c.txt': file('charlie'),
        'z-big.bin': file(pseudoRandom(2 * MiB, 32)),
      };
      await writeTree(src, spec);
      const destinations = [roots[0], small, roots[1]];

      const run = await runFanout({ source: `${src}/`, destinations, localAgent: 'in-process' });
      expect(run.result.ok).toBe(false);
      expect(run.result.destinations.map((d) => d.ok)).toEqual([true, false, true]);
      await expectAllIdentical(src, roots);
      const full = resultFor(run.result, small).summary;
      expect(full.errors.map((e) => e.path)).toContain('z-big.bin');
      for (const e of full.errors) expect(e.code).toBe('ENOSPC');
      // Every file on the full disk is whole, or absent with an error for its path.
      const failed = new Set(full.errors.map((e) => e.path));
      for (const [path, entry] of Object.entries(spec)) {
        const hash = await hashOf(small, path);
        if (failed.has(path)) expect(hash).toBeUndefined();
        else expect(hash).toBe(sha256(entry.data));
      }
      expect(full.created).toBe(Object.keys(spec).length - failed.size);
      expect(await leftovers(small)).toEqual([]);
      for (const d of run.deltas) {
        expect(d.destinations).toContain(roots[0]);
        expect(d.destinations).toContain(roots[1]);
      }
    },
  );
});

describe('a full disk on one destination, with whole-tree commits', () => {
  const smallDisk = useSmallDisk('small-disk-tree');
  let small = '';
  beforeAll(() => {
    small = smallDisk();
  });

  const setUp = async () => {
    const base = tempDir();
    const src = join(base, 'src');
    const roots = [join(base, 'dst1'), join(base, 'dst2')];
    await writeTree(src, { 'a.txt': file('v1'), 'dir/c.txt': file('charlie') });
    for (const d of [...roots, small]) rmSync(join(d, 'dir'), { recursive: true, force: true });
    const first = await runFanout({ source: `${src}/`, destinations: [roots[0], small, roots[1]], localAgent: 'in-process' });
    expect(first.result.ok).toBe(true);
    // The second version does not fit on the small disk.
    await writeTree(src, { 'a.txt': file('v2', { mtimeMs: BASE_MTIME_MS + 5000 }), 'z-big.bin': file(pseudoRandom(2 * MiB, 33)) });
    return { src, roots };
  };

  it.skipIf(mountUnavailable !== undefined)(
    `with all-or-none commits nowhere and leaves every destination exactly as it was${mountUnavailable ? ` (skipped: ${mountUnavailable})` : ''}`,
    async () => {
      const { src, roots } = await setUp();
      const before = await Promise.all([roots[0], small, roots[1]].map((r) => snapshotOf(r)));
      const run = await runFanout({ source: `${src}/`, destinations: [roots[0], small, roots[1]], localAgent: 'in-process', commit: 'all-or-none' });
      expect(run.result.ok).toBe(false);
      expect(run.result.destinations.map((d) => d.committed)).toEqual([false, false, false]);
      const after = await Promise.all([roots[0], small, roots[1]].map((r) => snapshotOf(r)));
      expect(after).toEqual(before);
      for (const r of [roots[0], small, roots[1]]) expect(readdirSync(r).filter((n) => n.startsWith('.deltacast'))).toEqual([]);
    },
  );

  it.skipIf(mountUnavailable !== undefined)(
    `with best effort commits the healthy destinations and leaves the full one as it was${mountUnavailable ? ` (skipped: ${mountUnavailable})` : ''}`,
    async () => {
      const { src, roots } = await setUp();
      const before = await snapshotOf(small);
      const run = await runFanout({ source: `${src}/`, destinations: [roots[0], small, roots[1]], localAgent: 'in-process', atomic: 'tree' });
      expect(run.result.destinations.map((d) => d.committed)).toEqual([true, false, true]);
      await expectAllIdentical(src, roots);
      expect(await snapshotOf(small)).toEqual(before);
    },
  );
});

describe('a directory that cannot be written on one destination, with all-or-none', () => {
  const locked: string[] = [];
  afterAll(() => {
    for (const d of locked) spawnSync('chattr', ['-i', d]);
  });

  it.skipIf(immutableUnavailable !== undefined)(
    `fails that destination while staging, so none commits and every one stays as it was${immutableUnavailable ? ` (skipped: ${immutableUnavailable})` : ''}`,
    async () => {
      const base = tempDir();
      const src = join(base, 'src');
      const roots = [join(base, 'dst1'), join(base, 'dst2'), join(base, 'dst3')];
      await writeTree(src, { 'ro/existing.txt': file('v1'), 'ok/b.txt': file('b') });
      expect((await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process' })).result.ok).toBe(true);
      await writeTree(src, { 'ro/new.txt': file('new'), 'ok/c.txt': file('c') });
      const ro = join(roots[1], 'ro');
      const lock = spawnSync('chattr', ['+i', ro], { encoding: 'utf8' });
      expect(lock.status, lock.stderr).toBe(0);
      locked.push(ro);
      try {
        const before = await Promise.all(roots.map((r) => snapshotOf(r)));
        const run = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', commit: 'all-or-none' });
        expect(run.result.ok).toBe(false);
        expect(run.result.destinations.map((d) => d.committed)).toEqual([false, false, false]);
        expect(resultFor(run.result, roots[1]).summary.errors.map((e) => e.path)).toContain('ro/new.txt');
        expect(await Promise.all(roots.map((r) => snapshotOf(r)))).toEqual(before);
      } finally {
        spawnSync('chattr', ['-i', ro]);
      }
    },
  );
});

describe('one destination that hangs', () => {
  let hung: Awaited<ReturnType<typeof startSsh2Server>>;
  let configFile = '';

  beforeAll(async () => {
    // An agent that answers the hello and then never again: the peer is connected but hung.
    hung = await startSsh2Server({
      onExec: (_command, channel) => {
        const session = new FrameSession({ readable: channel, writable: channel });
        session.onFrame((frame) => {
          if (frame.header.t === 'hello') void session.send({ t: 'hello', v: PROTOCOL_VERSION, caps: [], root: '/hung', version: 'hung', uid: 0 });
        });
      },
    });
    const knownHostsFile = join(hung.dir, 'known_hosts_hung');
    writeFileSync(knownHostsFile, `${hung.hostKeyLine}\n`);
    configFile = writeSshConfig(join(hung.dir, 'ssh_config_hung'), [
      { alias: 'hung', port: hung.port, user: 'tester', identityFile: hung.identityFile, knownHostsFile },
    ]);
  });

  afterAll(async () => {
    await hung?.close();
  });

  it('is given up after the idle timeout and reported, while the others complete', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a'), 'dir/b.bin': file(pseudoRandom(100_000, 5)) });
    const healthy = [join(base, 'd1'), join(base, 'd2')];
    const destinations = [healthy[0], 'hung:/srv/site', healthy[1]];
    const ssh = { configFile, remoteCommand: 'agent' };
    const { result } = await runFanout({ source: `${src}/`, destinations, ssh, idleTimeoutMs: 500, connectRetries: 0 });
    const outcome = result.destinations.map((d) => ({ ok: d.ok, errors: d.summary.errors.map((e) => `${e.path}:${e.code}:${e.message}`) }));
    expect(outcome).toEqual([{ ok: true, errors: [] }, { ok: false, errors: [expect.stringMatching(/^:TIMEOUT:no reply from the agent/)] }, { ok: true, errors: [] }]);
    await expectAllIdentical(src, healthy);
  });

  it('is given up when the remote never starts the agent (a shell that hangs)', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a') });
    const healthy = join(base, 'd1');
    // No --remote-command: the script that finds and starts the agent never says which it started.
    const { result } = await runFanout({ source: `${src}/`, destinations: ['hung:/srv/site', healthy], ssh: { configFile, connectTimeoutMs: 1000 }, connectRetries: 0 });
    expect(result.destinations.map((d) => d.ok)).toEqual([false, true]);
    const [error] = resultFor(result, 'hung:/srv/site').summary.errors;
    expect(error).toMatchObject({ path: '', code: 'CONNECT' });
    expect(error.message).toMatch(/the remote did not start the agent within 1 s/);
    await expectAllIdentical(src, [healthy]);
  });
});

describe('a source scan that fails after the destinations connected', () => {
  it('rejects with the scan’s error, leaving no lock, stage or temporary file behind', async () => {
    const src = join(tempDir(), 'site');
    await writeTree(src, { 'a.txt': file('a\n') });
    const dests = [join(tempDir(), 'd1'), join(tempDir(), 'd2')];
    // "site" without a slash sends the directory itself: a scope path outside it fails the scan,
    // which now runs while the destinations connect (and lock).
    const error = await fanout({ source: src, destinations: dests, paths: ['elsewhere/x'], localAgent: 'child' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PATH_INVALID' });
    for (const d of dests) {
      // The agents' hellos made the roots; nothing else is there, the lock released.
      expect(readdirSync(d)).toEqual([]);
    }
    // The next run takes the locks at once.
    const { result } = await runFanout({ source: `${src}/`, destinations: dests, localAgent: 'child' });
    expect(result.ok).toBe(true);
  });

  it('reports a missing source before connecting anywhere', async () => {
    const dest = join(tempDir(), 'never-made');
    const error = await fanout({ source: join(tempDir(), 'missing'), destinations: [dest] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOENT' });
    expect(existsSync(dest)).toBe(false);
  });
});
