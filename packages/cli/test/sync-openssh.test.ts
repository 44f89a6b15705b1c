/**
 * `deltacast sync` end to end against a real OpenSSH server (the transport tests' sshd harness): the
 * built CLI as a child process, an ssh config given with -F, trees compared entry by entry and by
 * `rsync -ani`. The tests run in order and share one source tree and destination, as a user's
 * successive runs would.
 */
import type { SyncEvent, SyncSummary } from '@deltacast/transport';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from '../../transport/test/helpers/sshd.js';
import { BASE_MTIME_MS, diffTrees, dir, file, hasRsync, link, pinNaturalTimes, snapshotTree, writeTree, type TreeSpec } from '../../transport/test/helpers/tree.js';
import { bin, deltacast, makeTempDir, parseNdjson, pseudoRandom, type Run } from './helpers.js';
import { editForSecondRun, expectIdentical, writeBenchConfig } from './openssh-helpers.js';

const T = BASE_MTIME_MS;
const BIG_SIZE = (3 << 20) + 12_345;
/** Compressible text, to see that -z compresses. */
const LOG_TEXT = Array.from({ length: 8000 }, (_, i) => `${i.toString().padStart(6, '0')} request served in 3 ms\n`).join('');

const SOURCE_SPEC: TreeSpec = {
  'big.bin': file(pseudoRandom(BIG_SIZE, 1), { mtimeMs: T + 1_000 }),
  'medium.dat': file(pseudoRandom(100_000, 2), { mtimeMs: T + 2_123 }),
  'one-byte': file('x', { mode: 0o600, mtimeMs: T + 3_000 }),
  'empty-file': file('', { mtimeMs: T + 4_000 }),
  'logs/app.log': file(LOG_TEXT, { mtimeMs: T + 5_000 }),
  bin: dir({ mode: 0o755, mtimeMs: T + 6_000 }),
  'bin/run.sh': file('#!/bin/sh\necho run\n', { mode: 0o755, mtimeMs: T + 7_000 }),
  secret: dir({ mode: 0o700, mtimeMs: T + 8_000 }),
  'secret/key': file('not really a key\n', { mode: 0o600, mtimeMs: T + 9_000 }),
  'a/b/c/deep.txt': file('deep\n', { mtimeMs: T + 10_000 }),
  'a/empty-nested': dir({ mtimeMs: T + 11_000 }),
  'empty-dir': dir({ mode: 0o750, mtimeMs: T + 12_000 }),
  'links/relative': link('../bin/run.sh', { mtimeMs: T + 13_000 }),
  'links/absolute': link('/etc/hostname', { mtimeMs: T + 14_000 }),
  'links/dangling with space': link('nowhere/at all', { mtimeMs: T + 15_000 }),
  'with space.txt': file('spaces\n', { mtimeMs: T + 16_000 }),
  'ünïcödé-日本語.txt': file('unicode\n', { mtimeMs: T + 17_000 }),
  '-leading-dash': file('dash\n', { mtimeMs: T + 18_000 }),
  'new\nline': file('newline in the name\n', { mtimeMs: T + 19_000 }),
  'to-rename.txt': file(pseudoRandom(20_000, 3), { mtimeMs: T + 20_000 }),
  'to-delete.txt': file('delete me\n', { mtimeMs: T + 21_000 }),
};

interface JsonRun {
  events: SyncEvent[];
  summary: SyncSummary;
  items: Extract<SyncEvent, { type: 'item' }>[];
  files: Map<string, Extract<SyncEvent, { type: 'file' }>>;
}

/** Parses --json output; every line must be an event, and exactly one summary must close it. */
function jsonRun(run: Run): JsonRun {
  const events = parseNdjson(run.stdout) as unknown as SyncEvent[];
  const summaries = events.filter((e) => e.type === 'summary');
  expect(summaries).toHaveLength(1);
  expect(events.at(-1)?.type).toBe('summary');
  for (const e of events) expect(['start', 'item', 'file', 'error', 'summary']).toContain(e.type);
  return {
    events,
    summary: summaries[0].result,
    items: events.filter((e) => e.type === 'item'),
    files: new Map(events.filter((e) => e.type === 'file').map((e) => [e.path, e])),
  };
}

/** Itemized lines of a -v run (the closing summary line left out). */
function itemLines(run: Run): string[] {
  const lines = run.stdout.toString('utf8').split('\n').filter((l) => l !== '');
  return lines.slice(0, -1).sort();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe.skipIf(!hasSshd)(`sync over OpenSSH ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  let work: string;
  let cleanup: () => void;
  let src: string;
  let dest: string;
  let config: string;
  let wrapperLog: string;

  /** An ssh config for Host `bench` pointing at the harness, with overrides. */
  function sshConfig(name: string, overrides: { port?: number; identityFile?: string; knownHostsFile?: string } = {}): string {
    return writeBenchConfig(join(work, name), sshd, overrides);
  }

  const sync = (...args: string[]) => deltacast(['sync', ...args], work);

  beforeAll(async () => {
    sshd = await startSshd();
    ({ dir: work, cleanup } = makeTempDir('sync-openssh'));
    src = join(work, 'src');
    dest = join(work, 'dest');
    await writeTree(src, SOURCE_SPEC);
    config = sshConfig('ssh_config');
    wrapperLog = join(work, 'wrapper.log');
  });

  afterAll(async () => {
    await sshd?.stop();
    cleanup?.();
  });

  it('first sync uploads the agent bundle (no deltacast on the remote PATH) and reproduces the tree', async () => {
    const run = sync('--json', '-F', config, `${src}/`, `bench:${dest}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { events, summary, items, files } = jsonRun(run);
    expect(events[0]).toMatchObject({ type: 'start', destination: `bench:${dest}`, dryRun: false });
    expect(summary).toMatchObject({ ok: true, created: 14, updated: 0, deleted: 0, unchanged: 0, errors: [] });
    expect(summary.symlinks).toBe(3);
    expect(summary.literalBytes).toBe(summary.totalBytes);
    expect(items.map((i) => i.path)).toEqual(expect.arrayContaining(['new\nline', '-leading-dash', 'ünïcödé-日本語.txt', 'a/empty-nested']));
    expect(items.find((i) => i.path === 'links/absolute')).toMatchObject({ kind: 'symlink', linkTarget: '/etc/hostname' });
    expect(files.get('big.bin')).toMatchObject({ kind: 'create', size: BIG_SIZE, literalBytes: BIG_SIZE, matchedBytes: 0 });
    // Without -z the data goes as it is: at least every byte of the file.
    expect(files.get('logs/app.log')!.sentBytes).toBeGreaterThanOrEqual(LOG_TEXT.length);

    await expectIdentical(src, dest);
    const cached = readdirSync(join(sshd.home, '.cache/deltacast'));
    expect(cached.filter((n) => /^agent-[0-9a-f]{16}\.mjs$/.test(n))).toHaveLength(1);
  });

  it('uses `deltacast agent` from the remote PATH when it is there', () => {
    writeFileSync(
      join(sshd.bin, 'deltacast'),
      `#!/bin/sh\necho "$*" >> '${wrapperLog}'\nexec '${process.execPath}' '${bin}' "$@"\n`,
    );
    chmodSync(join(sshd.bin, 'deltacast'), 0o755);
    // Nothing changed since the first run, so this run only lists and compares.
    const run = sync('--json', '-F', config, `${src}/`, `bench:${dest}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(jsonRun(run).summary).toMatchObject({ ok: true, created: 0, updated: 0, deleted: 0 });
    expect(readFileSync(wrapperLog, 'utf8')).toBe('agent\n');
  });

  it('second sync with --delete sends a small edit of a big file as a delta and handles rename, delete, add', async () => {
    await editForSecondRun(src);

    const run = sync('--json', '--delete', '-F', config, `${src}/`, `bench:${dest}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { summary, items, files } = jsonRun(run);
    expect(summary).toMatchObject({ ok: true, created: 2, updated: 1, deleted: 2, directories: 1, errors: [] });
    expect(items.filter((i) => i.kind === 'delete').map((i) => i.path).sort()).toEqual(['to-delete.txt', 'to-rename.txt']);
    // The edit is 100 bytes: nearly all of the big file is reused from the destination's copy.
    expect(files.get('big.bin')).toMatchObject({ kind: 'update', size: BIG_SIZE });
    expect(files.get('big.bin')!.matchedBytes).toBeGreaterThan(BIG_SIZE - 16_384);
    expect(files.get('big.bin')!.literalBytes).toBeLessThan(16_384);
    // The renamed file is new to the destination (20 kB literal); the rest is small.
    expect(summary.matchedBytes).toBeGreaterThan(BIG_SIZE - 16_384);
    expect(summary.literalBytes).toBeLessThan(40_000);
    expect(summary.sentBytes).toBeLessThan(64_000);
    await expectIdentical(src, dest);
  });

  it('a third sync changes nothing and sends nothing', async () => {
    const before = await snapshotTree(dest, { includeRoot: true });
    const run = sync('--json', '--delete', '-F', config, `${src}/`, `bench:${dest}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { summary, items, files } = jsonRun(run);
    expect(summary).toMatchObject({
      ok: true,
      created: 0,
      updated: 0,
      deleted: 0,
      directories: 0,
      symlinks: 0,
      attributes: 0,
      literalBytes: 0,
      matchedBytes: 0,
      sentBytes: 0,
      totalBytes: 0,
    });
    // Files and symlinks; directories are not counted.
    expect(summary.unchanged).toBe(14 + 3);
    expect(items).toEqual([]);
    expect(files.size).toBe(0);
    expect(await diffTrees(src, dest)).toEqual([]);
    expect(await snapshotTree(dest, { includeRoot: true })).toEqual(before);
  });

  it('-n lists what would change and changes nothing; -v then itemizes the same changes as it makes them', async () => {
    writeFileSync(join(src, 'one-byte'), 'y');
    utimesSync(join(src, 'one-byte'), (T + 40_000) / 1000, (T + 40_000) / 1000);
    chmodSync(join(src, 'with space.txt'), 0o600);
    writeFileSync(join(src, 'dry new.txt'), 'new\n');
    mkdirSync(join(src, 'dry-dir'));
    execFileSync('ln', ['-s', 'dry new.txt', join(src, 'dry-link')]);
    rmSync(join(src, 'medium.dat'));
    // The root changed: its own mtime is set apart from any earlier run's (rsync's `./`).
    utimesSync(src, (T + 45_000) / 1000, (T + 45_000) / 1000);
    await pinNaturalTimes(src);
    const expected = ['.d  ./', '*deleting medium.dat', '.f  with space.txt', '>f+ dry new.txt', '>f. one-byte', 'cL+ dry-link -> dry new.txt', 'cd+ dry-dir/'].sort();

    const before = await snapshotTree(dest, { includeRoot: true });
    const dry = sync('-n', '--delete', '-F', config, `${src}/`, `bench:${dest}`);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(itemLines(dry)).toEqual(expected);
    expect(dry.stdout.toString()).toMatch(/^\(dry run\) would change: 1 created, 1 updated, 1 deleted, /m);
    expect(await snapshotTree(dest, { includeRoot: true })).toEqual(before);

    const real = sync('-v', '--delete', '-F', config, `${src}/`, `bench:${dest}`);
    expect(real.stderr).toBe('');
    expect(real.status).toBe(0);
    expect(itemLines(real)).toEqual(expected);
    expect(real.stdout.toString()).toMatch(/^1 created, 1 updated, 1 deleted, \d+ unchanged, 1 directories, 1 symlinks; sent /m);
    await expectIdentical(src, dest);
  });

  it.skipIf(!hasRsync)('--itemize-changes prints the lines rsync -i prints for the same changes over the same server (files sent: `<`)', async () => {
    writeFileSync(join(src, 'one-byte'), 'zz');
    utimesSync(join(src, 'one-byte'), (T + 50_000) / 1000, (T + 50_000) / 1000);
    chmodSync(join(src, 'bin/run.sh'), 0o700);
    utimesSync(join(src, 'with space.txt'), (T + 51_000) / 1000, (T + 51_000) / 1000);
    mkdirSync(join(src, 'itemized'));
    writeFileSync(join(src, 'itemized/new.txt'), 'new\n');
    rmSync(join(src, 'links/relative'));
    execFileSync('ln', ['-s', '../one-byte', join(src, 'links/relative')]);
    rmSync(join(src, 'a/b'), { recursive: true });
    rmSync(join(src, 'empty-file'));
    // Directories whose contents changed get times of their own, unlike any an earlier run set.
    for (const [path, ms] of [['', 56_000], ['a', 57_000], ['links', 58_000]] as const) utimesSync(join(src, path), (T + ms) / 1000, (T + ms) / 1000);
    await pinNaturalTimes(src);

    // rsync -i without -o/-g (deltacast keeps owners only with -o), as a dry run on the same destination.
    const rsync = spawnSync('rsync', ['-rlptD', '-i', '-n', '--delete', '-e', `ssh -F ${config}`, `${src}/`, `bench:${dest}/`], { encoding: 'utf8' });
    expect(rsync.stderr).toBe('');
    expect(rsync.status).toBe(0);
    const rsyncLines = rsync.stdout.split('\n').filter((l) => l !== '');

    const run = sync('--itemize-changes', '--delete', '-F', config, `${src}/`, `bench:${dest}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = itemLines(run);
    expect(lines).toEqual(
      [
        '.d..t...... ./',
        '<f.st...... one-byte',
        '.f...p..... bin/run.sh',
        '<f..t...... with space.txt',
        'cd+++++++++ itemized/',
        '<f+++++++++ itemized/new.txt',
        'cLc.t...... links/relative -> ../one-byte',
        '.d..t...... links/',
        '*deleting   a/b/c/deep.txt',
        '*deleting   a/b/c/',
        '*deleting   a/b/',
        '.d..t...... a/',
        '*deleting   empty-file',
      ].sort(),
    );
    expect(lines).toEqual(rsyncLines.sort());
    await expectIdentical(src, dest);
  });

  it('-z gives the same tree and compresses compressible data', async () => {
    const dest2 = join(work, 'dest-z');
    const run = sync('-z', '--json', '-F', config, `${src}/`, `bench:${dest2}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { summary, files } = jsonRun(run);
    expect(summary.ok).toBe(true);
    expect(files.get('logs/app.log')!.sentBytes).toBeLessThan(LOG_TEXT.length / 4);
    await expectIdentical(src, dest2);
  });

  describe('connection failures exit 255 with one line naming the cause', () => {
    const tiny = () => {
      const path = join(work, 'tiny');
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'f.txt'), 'tiny\n');
      return path;
    };

    it('HOST_KEY_UNKNOWN, then --accept-new-host-keys learns the key, then the next run works without it', () => {
      const knownHosts = join(work, 'empty_known_hosts');
      writeFileSync(knownHosts, '');
      const cfg = sshConfig('ssh_config_unknown_host', { knownHostsFile: knownHosts });
      const target = join(work, 'dest-hostkey');

      const refused = sync('-F', cfg, `${tiny()}/`, `bench:${target}`);
      expect(refused.status).toBe(255);
      expect(refused.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(refused.stderr).toContain('HOST_KEY_UNKNOWN');
      expect(refused.stdout.toString()).toBe('');
      expect(readFileSync(knownHosts, 'utf8')).toBe('');
      expect(existsSync(target)).toBe(false);

      const learned = sync('--accept-new-host-keys', '-F', cfg, `${tiny()}/`, `bench:${target}`);
      expect(learned.stderr).toBe('');
      expect(learned.status).toBe(0);
      const hostKey = sshd.hostKeyLine.split(' ').slice(1).join(' ');
      expect(readFileSync(knownHosts, 'utf8')).toContain(hostKey);
      expect(readFileSync(join(target, 'f.txt'), 'utf8')).toBe('tiny\n');

      writeFileSync(join(work, 'tiny/g.txt'), 'second\n');
      const again = sync('-F', cfg, `${tiny()}/`, `bench:${target}`);
      expect(again.stderr).toBe('');
      expect(again.status).toBe(0);
      expect(readFileSync(join(target, 'g.txt'), 'utf8')).toBe('second\n');
    });

    it('CONNECT for a closed port', async () => {
      const cfg = sshConfig('ssh_config_closed', { port: await freePort() });
      const run = sync('-F', cfg, `${tiny()}/`, 'bench:/nonexistent/never');
      expect(run.status).toBe(255);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain('CONNECT');
    });

    it('CONNECT after --contimeout (or the config\'s ConnectTimeout) for a server that never answers', async () => {
      // Accepted by the kernel while this process waits for the CLI; never a byte back.
      const silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const cfg = sshConfig('ssh_config_silent', { port: (silent.address() as AddressInfo).port });
        const run = sync('-F', cfg, '--contimeout', '1', `${tiny()}/`, 'bench:/nonexistent/never');
        expect(run.status).toBe(255);
        expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(run.stderr).toContain('CONNECT: timed out connecting to 127.0.0.1');
        expect(run.stderr).toContain('after 1000 ms');
        writeFileSync(cfg, `${readFileSync(cfg, 'utf8')}  ConnectTimeout 2\n`);
        const fromConfig = sync('-F', cfg, `${tiny()}/`, 'bench:/nonexistent/never');
        expect(fromConfig.status).toBe(255);
        expect(fromConfig.stderr).toContain('after 2000 ms');
      } finally {
        silent.close();
      }
    });

    it('CONNECT when the agent never answers (--timeout) or its output is not the protocol', () => {
      const target = join(work, 'dest-no-agent');
      const hung = sync('-F', config, '--timeout', '1', '--remote-command', 'cat >/dev/null', `${tiny()}/`, `bench:${target}`);
      expect(hung.status).toBe(255);
      expect(hung.stderr).toBe(`deltacast: sync: bench:${target}: CONNECT: no session with the agent: no reply from the agent for 1 s\n`);
      const chatty = sync('-F', config, '--remote-command', 'echo Welcome to bench', `${tiny()}/`, `bench:${target}`);
      expect(chatty.status).toBe(255);
      expect(chatty.stderr).toContain(`bench:${target}: CONNECT: no session with the agent:`);
      expect(chatty.stderr).toContain('does the remote command, or a login script of its shell, write to stdout?');
      expect(existsSync(target)).toBe(false);
    });

    it("StrictHostKeyChecking accept-new in the config learns the host key, as --accept-new-host-keys does", () => {
      const knownHosts = join(work, 'config_learned_known_hosts');
      writeFileSync(knownHosts, '');
      const cfg = sshConfig('ssh_config_accept_new', { knownHostsFile: knownHosts });
      writeFileSync(cfg, `${readFileSync(cfg, 'utf8')}  StrictHostKeyChecking accept-new\n`);
      const target = join(work, 'dest-config-accept-new');
      const run = sync('-F', cfg, `${tiny()}/`, `bench:${target}`);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(readFileSync(knownHosts, 'utf8')).toContain(sshd.hostKeyLine.split(' ').slice(1).join(' '));
      expect(readFileSync(join(target, 'f.txt'), 'utf8')).toBe('tiny\n');
    });

    it('AUTH for an identity the server does not accept', () => {
      const wrongKey = join(work, 'id_wrong');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey], { stdio: 'ignore' });
      const cfg = sshConfig('ssh_config_wrong_key', { identityFile: wrongKey });
      const target = join(work, 'dest-auth');
      const run = sync('-F', cfg, `${tiny()}/`, `bench:${target}`);
      expect(run.status).toBe(255);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain('AUTH');
      expect(existsSync(target)).toBe(false);
    });
  });

  it("reaches the destination through a jump host: the config's ProxyJump, and -J in its place", async () => {
    const jumpConfig = join(work, 'ssh_config_jump');
    const closed = await freePort();
    writeFileSync(
      jumpConfig,
      [
        // `behind` goes through `bench` as its jump host (the same server, forwarding to itself).
        'Host behind',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  ProxyJump bench',
        'Host nojump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  ProxyJump 127.0.0.1:${closed}`,
        'Host *',
        `  User ${sshd.user}`,
        `  IdentityFile ${sshd.identityFile}`,
        `  UserKnownHostsFile ${sshd.knownHostsFile}`,
        '  IdentityAgent none',
        'Host bench',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '',
      ].join('\n'),
    );
    const target = join(work, 'dest-jump');
    const first = sync('--json', '-F', jumpConfig, `${src}/`, `behind:${target}`);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(jsonRun(first).summary).toMatchObject({ ok: true, errors: [] });
    await expectIdentical(src, target);

    // The config's jump host for `nojump` is closed: the run fails there, naming it...
    writeFileSync(join(src, 'via-jump.txt'), 'came through -J\n');
    const refused = sync('-F', jumpConfig, `${src}/`, `nojump:${target}`);
    expect(refused.status).toBe(255);
    expect(refused.stderr).toContain(`jump host 127.0.0.1:${closed}`);
    // ...and -J goes through `bench` instead.
    const jumped = sync('--json', '-F', jumpConfig, '-J', 'bench', `${src}/`, `nojump:${target}`);
    expect(jumped.stderr).toBe('');
    expect(jumped.status).toBe(0);
    expect(jsonRun(jumped).summary).toMatchObject({ ok: true, created: 1, errors: [] });
    await expectIdentical(src, target);
    rmSync(join(src, 'via-jump.txt'));
  });

  it("-e ssh: the system's ssh reaches the destination, uploads the agent, and runs commit hooks", async (ctx) => {
    if (spawnSync('sh', ['-c', 'command -v ssh']).status !== 0) ctx.skip('no ssh client (apt-get install openssh-client)');
    // Neither deltacast on the remote PATH nor a cached bundle: the agent is uploaded through ssh.
    rmSync(join(sshd.bin, 'deltacast'), { force: true });
    rmSync(join(sshd.home, '.cache'), { recursive: true, force: true });
    const target = join(work, 'dest-rsh');
    const first = sync('--json', '-e', 'ssh -o BatchMode=yes', '-F', config, `${src}/`, `bench:${target}`);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(jsonRun(first).summary).toMatchObject({ ok: true, errors: [] });
    await expectIdentical(src, target);
    expect(readdirSync(join(sshd.home, '.cache/deltacast')).filter((n) => /^agent-[0-9a-f]{16}\.mjs$/.test(n))).toHaveLength(1);

    // An edit, committed as a whole tree behind a hook that runs through ssh too.
    writeFileSync(join(src, 'via-rsh.txt'), 'sent by ssh\n');
    const marker = join(work, 'rsh-hook-ran');
    const second = sync('-e', 'ssh -o BatchMode=yes', '-F', config, '--atomic', 'tree', '--before-commit', `echo "$DELTACAST_ROOT" > '${marker}'`, `${src}/`, `bench:${target}`);
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(readFileSync(marker, 'utf8')).toBe(`${target}\n`);
    await expectIdentical(src, target);
    rmSync(join(src, 'via-rsh.txt'));

    // What ssh says when it cannot connect, with the exit status of a connection failure.
    const refused = sync('-e', `ssh -o BatchMode=yes -p ${await freePort()}`, '-F', config, `${src}/`, `bench:${target}`);
    expect(refused.status).toBe(255);
    expect(refused.stderr).toMatch(/CONNECT: starting the agent on the remote failed \(exit 255\): ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused/);
  });

  it('exits 23 when part of the destination cannot be written, and the rest arrives', async (ctx) => {
    const from = join(work, 'partial-src');
    const to = join(work, 'partial-dest');
    await writeTree(from, { 'locked/old.txt': 'old\n', 'open/old.txt': 'old\n' });
    expect(sync('-F', config, `${from}/`, `bench:${to}`).status).toBe(0);

    // Root ignores mode bits, so an immutable directory is what refuses the writes.
    const chattr = spawnSync('chattr', ['+i', join(to, 'locked')], { encoding: 'utf8' });
    if (chattr.status !== 0) {
      ctx.skip(`chattr +i failed (needs root and a filesystem with the immutable flag): ${chattr.stderr.trim() || chattr.error?.message}`);
    }
    try {
      writeFileSync(join(from, 'locked/new.txt'), 'new\n');
      writeFileSync(join(from, 'open/new.txt'), 'new\n');
      await pinNaturalTimes(from);
      const run = sync('-F', config, `${from}/`, `bench:${to}`);
      expect(run.status).toBe(23);
      const errors = run.stderr.trimEnd().split('\n');
      expect(errors.find((l) => l.includes('locked/new.txt'))).toMatch(/^deltacast: sync: locked\/new\.txt: E[A-Z]+: /);
      expect(readFileSync(join(to, 'open/new.txt'), 'utf8')).toBe('new\n');
      expect(existsSync(join(to, 'locked/new.txt'))).toBe(false);
      expect(run.stdout.toString()).toMatch(/; \d+ failed$/m);
    } finally {
      spawnSync('chattr', ['-i', join(to, 'locked')]);
    }
  });
});
