/**
 * `deltacast sync host:SRC DEST`, a pull, end to end against a real OpenSSH server: the CLI's
 * bundle is uploaded and runs `deltacast sender` on the "remote" side, this side serves DEST. Trees
 * are compared entry by entry and by `rsync -ani`; itemized lines against `rsync -ai` pulling the
 * same tree over the same server. The tests run in order and share one source and destination.
 */
import type { SyncEvent, SyncSummary } from '@deltacast/transport';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from '../../transport/test/helpers/sshd.js';
import { BASE_MTIME_MS, dir, file, hasRsync, link, writeTree, type TreeSpec } from '../../transport/test/helpers/tree.js';
import { bin, deltacast, makeTempDir, parseNdjson, pseudoRandom } from './helpers.js';
import { editForSecondRun, expectIdentical, writeBenchConfig } from './openssh-helpers.js';

const T = BASE_MTIME_MS;
const BIG_SIZE = (3 << 20) + 4_321;

const SOURCE_SPEC: TreeSpec = {
  'big.bin': file(pseudoRandom(BIG_SIZE, 11), { mtimeMs: T + 1_000 }),
  'one-byte': file('x', { mode: 0o600, mtimeMs: T + 2_000 }),
  'empty-file': file('', { mtimeMs: T + 3_000 }),
  bin: dir({ mode: 0o755, mtimeMs: T + 4_000 }),
  'bin/run.sh': file('#!/bin/sh\necho run\n', { mode: 0o755, mtimeMs: T + 5_000 }),
  'a/b/deep.txt': file('deep\n', { mtimeMs: T + 6_000 }),
  'empty-dir': dir({ mode: 0o750, mtimeMs: T + 7_000 }),
  'links/relative': link('../bin/run.sh', { mtimeMs: T + 8_000 }),
  'links/absolute': link('/etc/hostname', { mtimeMs: T + 9_000 }),
  'with space.txt': file('spaces\n', { mtimeMs: T + 10_000 }),
  'ünïcödé.txt': file('unicode\n', { mtimeMs: T + 11_000 }),
  '-leading-dash': file('dash\n', { mtimeMs: T + 12_000 }),
  'new\nline': file('newline in the name\n', { mtimeMs: T + 13_000 }),
  'to-rename.txt': file(pseudoRandom(20_000, 3), { mtimeMs: T + 14_000 }),
  'to-delete.txt': file('delete me\n', { mtimeMs: T + 15_000 }),
};

function summaryOf(stdout: Buffer): { events: SyncEvent[]; summary: SyncSummary } {
  const events = parseNdjson(stdout) as unknown as SyncEvent[];
  const summaries = events.filter((e) => e.type === 'summary');
  expect(summaries).toHaveLength(1);
  return { events, summary: summaries[0].result };
}

describe.skipIf(!hasSshd)(`pull over OpenSSH ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  let work: string;
  let cleanup: () => void;
  let src: string;
  let dest: string;
  let config: string;

  const sync = (...args: string[]) => deltacast(['sync', '-F', config, ...args], work);

  beforeAll(async () => {
    sshd = await startSshd();
    ({ dir: work, cleanup } = makeTempDir('pull-openssh'));
    src = join(work, 'remote-src');
    dest = join(work, 'local-dest');
    await writeTree(src, SOURCE_SPEC);
    config = writeBenchConfig(join(work, 'ssh_config'), sshd);
  });

  afterAll(async () => {
    await sshd?.stop();
    cleanup?.();
  });

  it('a dry run into a missing directory makes nothing, and itemizes what rsync -ai would', () => {
    const run = sync('-n', '--itemize-changes', `bench:${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(dest)).toBe(false);
    const lines = run.stdout.toString().split('\n').filter((l) => l !== '' && !l.startsWith('(dry run)'));
    expect(lines).toContain('>f+++++++++ big.bin');
    expect(lines).toContain('cL+++++++++ links/absolute -> /etc/hostname');
    if (hasRsync) {
      const rsync = spawnSync('rsync', ['-ani', '-e', `ssh -F ${config}`, `bench:${src}/`, join(work, 'rsync-dest')], { encoding: 'utf8' });
      expect(rsync.status).toBe(0);
      // rsync quotes the name with a newline as \#012 and says it created the directory.
      const theirs = rsync.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('created directory') && !l.includes('\\#012'));
      const ours = lines.filter((l) => !l.includes('line'));
      expect([...ours].sort()).toEqual([...theirs].sort());
    }
  });

  it('the first pull uploads the CLI bundle to the source host and reproduces the tree locally', async () => {
    const run = sync('--json', `bench:${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { events, summary } = summaryOf(run.stdout);
    expect(events[0]).toMatchObject({ type: 'start', destination: dest, dryRun: false });
    expect(summary).toMatchObject({ ok: true, created: 11, updated: 0, deleted: 0, unchanged: 0, errors: [] });
    expect(events.find((e) => e.type === 'item' && e.path === 'big.bin')).toMatchObject({ itemized: '>f+++++++++' });
    await expectIdentical(src, dest);
    const cached = readdirSync(join(sshd.home, '.cache/deltacast'));
    expect(cached.filter((n) => /^cli-[0-9a-f]{16}\.cjs$/.test(n))).toHaveLength(1);
  });

  it('a second pull with --delete sends a small edit of a big file as a delta and handles rename, delete, add', async () => {
    await editForSecondRun(src);

    const run = sync('--json', '--delete', `bench:${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { events, summary } = summaryOf(run.stdout);
    expect(summary).toMatchObject({ ok: true, created: 2, updated: 1, deleted: 2, errors: [] });
    const bigFile = events.find((e) => e.type === 'file' && e.path === 'big.bin') as Extract<SyncEvent, { type: 'file' }>;
    expect(bigFile.matchedBytes).toBeGreaterThan(BIG_SIZE / 2);
    expect(bigFile.literalBytes).toBeLessThan(64 * 1024);
    await expectIdentical(src, dest);

    const again = sync('--json', '--delete', `bench:${src}/`, dest);
    expect(again.status).toBe(0);
    expect(summaryOf(again.stdout).summary).toMatchObject({ ok: true, created: 0, updated: 0, deleted: 0, sentBytes: 0 });
  });

  it('--files-from names what to send; a listed path the source lacks is reported and the run exits 23', async () => {
    const list = join(work, 'list');
    writeFileSync(list, 'bin/run.sh\nnot-there.txt\n');
    const target = join(work, 'some');
    const run = sync('--files-from', list, `bench:${src}`, target);
    expect(run.status).toBe(23);
    expect(run.stderr).toContain('not-there.txt: NO_SUCH_FILE: listed in --files-from, not in the source');
    expect(readFileSync(join(target, 'bin/run.sh'), 'utf8')).toBe('#!/bin/sh\necho run\n');
    expect(readdirSync(target)).toEqual(['bin']);
  });

  it('a missing source exits 23 with the sender\'s message and makes no destination', () => {
    const target = join(work, 'never');
    const run = sync(`bench:${join(work, 'no-such-dir')}/`, target);
    expect(run.status).toBe(23);
    expect(run.stderr).toContain('no-such-dir/: NO_SUCH_FILE: the source does not exist');
    expect(existsSync(target)).toBe(false);
  });

  it('--stats counts from the pulling side, as rsync does: the data is received, not sent', () => {
    const run = sync('--stats', `bench:${src}/`, join(work, 'with-stats'));
    expect(run.status).toBe(0);
    const text = run.stdout.toString();
    const figure = (name: string) => Number(new RegExp(`^${name}: ([\\d,]+)`, 'm').exec(text)![1].replace(/,/g, ''));
    expect(text).toMatch(/^Number of regular files transferred: 11$/m);
    expect(figure('Total bytes received')).toBeGreaterThan(figure('Total file size') - 100);
    expect(figure('Total bytes sent')).toBeLessThan(figure('Total bytes received') / 10);
  });

  it("pulls through the system's ssh (-e), with -z and -c, to the same tree", async () => {
    const target = join(work, 'via-rsh');
    const first = sync('-e', `ssh -F ${config}`, '-z', `bench:${src}/`, target);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    await expectIdentical(src, target);
    // -c: a file changed without its size or time changing is found by content.
    const one = readFileSync(join(src, 'with space.txt'));
    writeFileSync(join(target, 'with space.txt'), Buffer.from(one.toString().toUpperCase()));
    utimesSync(join(target, 'with space.txt'), (T + 10_000) / 1000, (T + 10_000) / 1000);
    const quick = sync('-e', `ssh -F ${config}`, '--json', `bench:${src}/`, target);
    expect(summaryOf(quick.stdout).summary).toMatchObject({ ok: true, updated: 0 });
    const checked = sync('-e', `ssh -F ${config}`, '--json', '-c', `bench:${src}/`, target);
    expect(checked.status).toBe(0);
    expect(summaryOf(checked.stdout).summary).toMatchObject({ ok: true, updated: 1 });
    await expectIdentical(src, target);
  });

  it('refuses two remote sides, several destinations and the fan-out\'s commit modes (usage, exit 2)', () => {
    expect(sync(`bench:${src}/`, `bench:${dest}`).stderr).toMatch(/both remote/);
    expect(sync(`bench:${src}/`, dest, join(work, 'other')).status).toBe(2);
    const release = sync('--release', `bench:${src}/`, dest);
    expect(release.status).toBe(2);
    expect(release.stderr).toContain('--release: not with a pull');
  });

  it('a sender killed in the middle of a large file leaves the old file, and the next pull completes with no leftovers', async () => {
    const before = readFileSync(join(dest, 'big.bin'));
    writeFileSync(join(src, 'big.bin'), pseudoRandom(BIG_SIZE, 77)); // all new: sent whole
    utimesSync(join(src, 'big.bin'), (T + 40_000) / 1000, (T + 40_000) / 1000);
    const child = spawn(process.execPath, [bin, 'sync', '-F', config, '--bwlimit', '256K', `bench:${src}/`, dest], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Once the sender is on its way (~1 s of a ~12 s transfer), it dies.
    let killed = false;
    for (let i = 0; i < 100 && !killed; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const found = spawnSync('pgrep', ['-f', 'cli-[0-9a-f]*\\.cjs sender'], { encoding: 'utf8' }).stdout.trim();
      if (found && i >= 10) {
        for (const pid of found.split('\n')) process.kill(Number(pid), 'SIGKILL');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    const code = await exited;
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/deltacast: sync: bench:/);
    expect(readFileSync(join(dest, 'big.bin')).equals(before)).toBe(true);

    const run = sync('--delete', `bench:${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    await expectIdentical(src, dest);
  }, 60_000);
});
