import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_MTIME_MS,
  diffTrees,
  file,
  leftovers,
  pseudoRandom,
  requireBuiltAgent,
  runSync,
  sha256,
  spawnAgent,
  useTempDirs,
  writeTree,
} from './helpers/tree.js';

const MiB = 1024 * 1024;
const tempDir = useTempDirs();

/** Why a root-only setup cannot run here, or undefined when it can. */
function probe(command: string, args: (dir: string) => string[][], undo: (dir: string) => string[][]): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'deltacast-probe-'));
  try {
    writeFileSync(join(dir, 'f'), '');
    for (const a of args(dir)) {
      const run = spawnSync(a[0], a.slice(1), { encoding: 'utf8' });
      if (run.error || run.status !== 0) return `${command} is not permitted here: ${(run.error?.message ?? run.stderr).trim()}`;
    }
    return undefined;
  } finally {
    for (const a of undo(dir)) spawnSync(a[0], a.slice(1));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A child agent killed (SIGKILL) once `limit` bytes of frames went its way. With `written`, the
 * frames after `limit` are held back instead, and the agent is killed once a temporary file in
 * `written.dir` holds `written.bytes` bytes: it has written out what it was sent, whatever the
 * machine's speed.
 */
function agentKilledAfter(limit: number, written?: { dir: string; bytes: number }) {
  const { child, exited } = spawnAgent();
  const sent = { bytes: 0 };
  const kill = () => {
    if (child.exitCode === null && !child.killed) child.kill('SIGKILL');
  };
  let watching: NodeJS.Timeout | undefined;
  const watch = (dir: string, bytes: number) => {
    const started = Date.now();
    watching = setInterval(() => {
      const temps = readdirSync(dir).filter((name) => name.includes('.dctmp-'));
      const largest = Math.max(0, ...temps.map((name) => statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0));
      if (largest >= bytes || Date.now() - started > 10_000) {
        clearInterval(watching);
        kill();
      }
    }, 2);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (sent.bytes > limit && written) return callback(); // held back: the agent never gets it
      sent.bytes += chunk.length;
      if (sent.bytes > limit) {
        if (written) watch(written.dir, written.bytes);
        else kill();
      }
      callback(null, chunk);
    },
  });
  counter.pipe(child.stdin);
  void exited.then(() => clearInterval(watching));
  return { streams: { readable: child.stdout, writable: counter, close: kill }, exited, sent };
}

describe('a connection killed in the middle of a large file', () => {
  it('leaves the old file (or none for a new one), reports an error, and the next run completes', async () => {
    requireBuiltAgent();
    const src = tempDir();
    const dst = tempDir();
    const oldContent = randomBytes(20 * MiB);
    await writeTree(dst, { 'big-update.bin': file(oldContent, { mtimeMs: BASE_MTIME_MS - 60_000 }) });
    await writeTree(src, { 'big-update.bin': file(randomBytes(20 * MiB)), 'big-new.bin': file(randomBytes(8 * MiB)), 'small.txt': file('small') });

    // Killed once 4 MiB went out: both big files are then partly sent.
    const agent = agentKilledAfter(4 * MiB);
    const summary = await runSync(`${src}/`, dst, {}, agent.streams);
    expect(await agent.exited).toBeNull(); // killed by the signal, not exited on its own
    expect(agent.sent.bytes).toBeGreaterThan(4 * MiB);
    expect(agent.sent.bytes).toBeLessThan(20 * MiB);

    expect(summary.ok).toBe(false);
    expect(summary.errors.length).toBeGreaterThan(0);
    for (const e of summary.errors) expect(['CLOSED', 'IO', 'UNEXPECTED_EOF']).toContain(e.code);
    expect(sha256(await readFile(join(dst, 'big-update.bin')))).toBe(sha256(oldContent));
    expect(existsSync(join(dst, 'big-new.bin'))).toBe(false);
    if (existsSync(join(dst, 'small.txt'))) expect(await readFile(join(dst, 'small.txt'), 'utf8')).toBe('small');

    const again = await runSync(`${src}/`, dst, {}, 'child');
    expect(again.errors).toEqual([]);
    expect(again.ok).toBe(true);
    expect(await diffTrees(src, dst)).toEqual([]);
    expect(await leftovers(dst)).toEqual([]);
  });

  // With partial, the next listing keeps the dead run's temp file as `.NAME.dcpartial`, but the
  // client plans the file as a create (partials are not listed) and puts it with basis: false, so
  // nothing is resumed and the .dcpartial file is never removed.
  it('with partial, resumes an interrupted new file from what arrived and leaves nothing behind', async () => {
    requireBuiltAgent();
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { 'big-new.bin': file(randomBytes(8 * MiB)) });
    // Killed once it has written 2 MiB of the 4 MiB it was sent (the rest is held back).
    const agent = agentKilledAfter(4 * MiB, { dir: dst, bytes: 2 * MiB });
    expect((await runSync(`${src}/`, dst, { partial: true }, agent.streams)).ok).toBe(false);
    await agent.exited;

    const again = await runSync(`${src}/`, dst, { partial: true }, 'child');
    expect(again.ok).toBe(true);
    expect(await diffTrees(src, dst)).toEqual([]);
    expect(await leftovers(dst)).toEqual([]);
    expect(again.matchedBytes).toBeGreaterThan(MiB);
  });
});

const immutableUnavailable = probe('chattr +i', (d) => [['chattr', '+i', join(d, 'f')]], (d) => [['chattr', '-i', join(d, 'f')]]);

describe('a destination directory that cannot be written', () => {
  const locked: string[] = [];
  afterAll(() => {
    for (const d of locked) spawnSync('chattr', ['-i', d]);
  });

  // Tests run as root, which ignores mode bits: an immutable directory (chattr +i) refuses root too.
  it.skipIf(immutableUnavailable !== undefined)(
    `gives its paths a typed error while the other files arrive${immutableUnavailable ? ` (skipped: ${immutableUnavailable})` : ''}`,
    async () => {
      const src = tempDir();
      const dst = tempDir();
      await writeTree(src, { 'ro/existing.txt': file('v1'), 'ok/b.txt': file('b'), 'c.txt': file('c') });
      expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, created: 3 });
      await writeTree(src, {
        'ro/existing.txt': file('v2', { mtimeMs: BASE_MTIME_MS + 1000 }),
        'ro/new.txt': file('new'),
        'ok/new.txt': file('ok new'),
        'c.txt': file('c2', { mtimeMs: BASE_MTIME_MS + 1000 }),
      });
      const lock = spawnSync('chattr', ['+i', join(dst, 'ro')], { encoding: 'utf8' });
      expect(lock.status, lock.stderr).toBe(0);
      locked.push(join(dst, 'ro'));
      try {
        const summary = await runSync(`${src}/`, dst);
        expect(summary.ok).toBe(false);
        expect(summary).toMatchObject({ created: 1, updated: 1 });
        const failed = Object.fromEntries(summary.errors.map((e) => [e.path, e.code]));
        expect(failed).toMatchObject({ 'ro/existing.txt': 'EPERM', 'ro/new.txt': 'EPERM' });
        for (const path of Object.keys(failed)) expect(path.startsWith('ro')).toBe(true);
        expect(await readFile(join(dst, 'ro/existing.txt'), 'utf8')).toBe('v1');
        expect(existsSync(join(dst, 'ro/new.txt'))).toBe(false);
        expect(await readFile(join(dst, 'ok/new.txt'), 'utf8')).toBe('ok new');
        expect(await readFile(join(dst, 'c.txt'), 'utf8')).toBe('c2');
      } finally {
        spawnSync('chattr', ['-i', join(dst, 'ro')]);
      }
      expect(await leftovers(dst)).toEqual([]);
    },
  );
});

const mountUnavailable = probe(
  'mount -t tmpfs',
  (d) => [['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]],
  (d) => [['umount', d]],
);

describe('a full disk', () => {
  let dst = '';
  beforeAll(async () => {
    if (mountUnavailable) return;
    dst = join(tempDir(), 'small-disk');
    await mkdir(dst);
    const run = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dst], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`mount failed: ${run.stderr}`);
  });
  afterAll(() => {
    if (!dst) return;
    const run = spawnSync('umount', [dst]);
    if (run.status !== 0) spawnSync('umount', ['-l', dst]);
  });

  it.skipIf(mountUnavailable !== undefined)(
    `fails the files that do not fit with ENOSPC, leaving no temp files and earlier files intact${mountUnavailable ? ` (skipped: ${mountUnavailable})` : ''}`,
    async () => {
      const src = tempDir();
      const early = { 'a1.txt': file(pseudoRandom(50_000, 1)), 'a2.txt': file(pseudoRandom(50_000, 2)) };
      await writeTree(src, early);
      expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, created: 2 });

      // One file at a time, in name order: b-small.txt fits, z-big.bin (2 MiB) cannot.
      await writeTree(src, { 'b-small.txt': file('fits'), 'z-big.bin': file(pseudoRandom(2 * MiB, 3)) });
      const summary = await runSync(`${src}/`, dst, { concurrency: 1 });
      expect(summary.ok).toBe(false);
      expect(summary.errors).toEqual([expect.objectContaining({ path: 'z-big.bin', code: 'ENOSPC' })]);
      expect(summary.created).toBe(1);
      expect(await readFile(join(dst, 'b-small.txt'), 'utf8')).toBe('fits');
      expect(existsSync(join(dst, 'z-big.bin'))).toBe(false);
      expect(await leftovers(dst)).toEqual([]);
      for (const [path, spec] of Object.entries(early)) expect(sha256(await readFile(join(dst, path)))).toBe(sha256(spec.data));
    },
  );

  it.skipIf(mountUnavailable !== undefined)(
    `cleans up every failing file when several are in flight${mountUnavailable ? ` (skipped: ${mountUnavailable})` : ''}`,
    async () => {
    const src = tempDir();
    const files = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`big-${i}.bin`, file(pseudoRandom(200_000, 10 + i))]));
    await writeTree(src, files);
    const summary = await runSync(`${src}/`, dst, { concurrency: 4 });
    expect(summary.ok).toBe(false);
    expect(summary.errors.length).toBeGreaterThan(0);
    for (const e of summary.errors) expect(e.code).toBe('ENOSPC');
    for (const [path, spec] of Object.entries(files)) {
      const full = join(dst, path);
      if (existsSync(full)) expect(sha256(await readFile(full))).toBe(sha256(spec.data));
    }
    expect(await leftovers(dst)).toEqual([]);
    // The space the failed temp files held is free again: only whole files (and a little slack) use it.
    let kept = 0;
    for (const path of Object.keys(files)) if (existsSync(join(dst, path))) kept += 200_000;
    const fs = await statfs(dst);
    expect(512 * 1024 - fs.bavail * fs.bsize).toBeLessThan(kept + 100_000 + 16 * 1024);
    },
  );
});
