/**
 * The fan-out over SSH: three roots on one real OpenSSH server (the agent bundle run with
 * `ssh.remoteCommand`, so nothing is uploaded) and two in-process ssh2 servers, all named in one ssh
 * config. Every destination ends identical to the source, an edit travels as one shared delta, and
 * no SSH connection outlives the fan-out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from '../../transport/test/helpers/sshd.js';
import { openJumpConnections } from '@deltacast/transport';
import { BASE_MTIME_MS, expectAllIdentical, file, pseudoRandom, runFanout, useTempDirs, writeTree } from './helpers.js';
import { hostEntry, startAgentServer, writeSshConfig, type AgentServer } from './ssh-servers.js';

const MiB = 1024 * 1024;
const tempDir = useTempDirs('deltacast-fanout-ssh-');
const AGENT_BUNDLE = fileURLToPath(new URL('../../transport/dist/agent.bundle.mjs', import.meta.url));

/** TCP handles this process holds (client and in-process server sides of SSH connections). */
function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPWRAP' || r === 'TCPSocketWrap').length;
}

/** Waits (up to two seconds) for closed connections to be released; returns the count then. */
async function settledTcpHandles(baseline: number): Promise<number> {
  for (let i = 0; i < 40 && tcpHandles() > baseline; i++) await sleep(50);
  return tcpHandles();
}

describe.skipIf(!hasSshd)(`five SSH destinations: three roots on OpenSSH, two ssh2 servers ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  const servers: AgentServer[] = [];
  let configFile = '';

  beforeAll(async () => {
    if (!existsSync(AGENT_BUNDLE)) throw new Error(`${AGENT_BUNDLE} is missing: run \`pnpm -r run build\` first`);
    sshd = await startSshd();
    servers.push(await startAgentServer(), await startAgentServer());
    configFile = writeSshConfig(join(sshd.dir, 'fanout_ssh_config'), [
      { alias: 'real', port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile },
      // The same server reached through itself as the jump host.
      { alias: 'behind', port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile, proxyJump: 'real' },
      hostEntry('mem1', servers[0]),
      hostEntry('mem2', servers[1]),
    ]);
  });

  afterAll(async () => {
    for (const s of servers) await s.server.close();
    await sshd?.stop();
  });

  it('makes every destination identical, then sends an edit as one shared delta', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, {
      'big.bin': file(pseudoRandom(3 * MiB, 21)),
      'index.html': file('<h1>site</h1>\n'),
      'assets/app.js': file(pseudoRandom(50_000, 22)),
      'assets/empty.css': file(''),
      'assets/logo': { kind: 'link', target: '../index.html', mtimeMs: BASE_MTIME_MS },
    });
    const roots = ['d1', 'd2', 'd3', 'd4', 'd5'].map((d) => join(base, d));
    const destinations = [`real:${roots[0]}`, `real:${roots[1]}`, `real:${roots[2]}`, `mem1:${roots[3]}`, `mem2:${roots[4]}`];
    const ssh = { configFile, remoteCommand: `node ${AGENT_BUNDLE}` };

    const first = await runFanout({ source: `${src}/`, destinations, ssh });
    expect(first.errors).toEqual([]);
    expect(first.result).toMatchObject({ ok: true, files: 4, deltasComputed: 4, destinationFiles: 20, sourceReads: 4 });
    expect(first.result.destinations.map((d) => d.destination)).toEqual(destinations);
    for (const d of first.deltas) expect([...d.destinations].sort()).toEqual([...destinations].sort());
    await expectAllIdentical(src, roots);
    expect(servers.map((s) => s.sessions)).toEqual([1, 1]);

    const edited = pseudoRandom(3 * MiB, 21);
    edited.set(pseudoRandom(64, 23), 2 * MiB + 17);
    await writeTree(src, { 'big.bin': file(edited, { mtimeMs: BASE_MTIME_MS + 1000 }) });
    const second = await runFanout({ source: `${src}/`, destinations, ssh, compress: true });
    expect(second.errors).toEqual([]);
    expect(second.result).toMatchObject({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 5, sourceReads: 1 });
    expect(second.deltas).toHaveLength(1);
    expect(second.deltas[0]).toMatchObject({ path: 'big.bin', basis: 'shared' });
    expect([...second.deltas[0].destinations].sort()).toEqual([...destinations].sort());
    expect(second.deltas[0].deltaBytes).toBeLessThan(16 * 1024);
    for (const d of second.result.destinations) expect(d.summary).toMatchObject({ updated: 1, created: 0 });
    await expectAllIdentical(src, roots);
  });

  // An SSH connection left open keeps the process alive: `deltacast sync SRC h:/a h:/b` would print
  // its result and never exit.
  it('closes every SSH connection it opened', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('a') });
    const destinations = [`real:${join(base, 'd1')}`, `mem1:${join(base, 'd2')}`, `mem2:${join(base, 'd3')}`];
    const baseline = tcpHandles();
    const run = await runFanout({ source: `${src}/`, destinations, ssh: { configFile, remoteCommand: `node ${AGENT_BUNDLE}` } });
    expect(run.result.ok).toBe(true);
    // Three client ends, and the two in-process servers' ends, are released once closed.
    expect(await settledTcpHandles(baseline)).toBeLessThanOrEqual(baseline);
  });

  it('reaches destinations behind one jump host over one shared connection to it, and closes it', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'page.html': file('<p>behind the bastion</p>\n'), 'data.bin': file(pseudoRandom(200_000, 31)) });
    const roots = ['j1', 'j2', 'j3'].map((d) => join(base, d));
    const destinations = roots.map((r) => `behind:${r}`);
    const baseline = tcpHandles();
    let sharedJumps = 0;
    const run = await runFanout({ source: `${src}/`, destinations, ssh: { configFile, remoteCommand: `node ${AGENT_BUNDLE}` } }, () => {
      sharedJumps = Math.max(sharedJumps, openJumpConnections());
    });
    expect(run.errors).toEqual([]);
    expect(run.result).toMatchObject({ ok: true, files: 2, deltasComputed: 2, destinationFiles: 6 });
    await expectAllIdentical(src, roots);
    expect(sharedJumps).toBe(1);
    // Released as the connections behind it close, which may finish just after the fan-out returns.
    expect(await settledTcpHandles(baseline)).toBeLessThanOrEqual(baseline);
    for (let i = 0; i < 40 && openJumpConnections() > 0; i++) await sleep(50);
    expect(openJumpConnections()).toBe(0);
  });

  it('runs commit hooks on the remote host, in the root, and reports a failing one with its stderr', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    await writeTree(src, { 'a.txt': file('hooked') });
    const [ok, failing] = [join(base, 'h1'), join(base, 'h2')];
    const destinations = [`real:${ok}`, `real:${failing}`];
    const marker = join(base, 'after-commit');
    const run = await runFanout({
      source: `${src}/`,
      destinations,
      ssh: { configFile, remoteCommand: `node ${AGENT_BUNDLE}` },
      beforeCommit: `test "$PWD" != ${JSON.stringify(failing)} || { echo "not this one" >&2; exit 3; }`,
      afterCommit: `echo "$DELTACAST_DESTINATION $DELTACAST_ROOT" >> ${JSON.stringify(marker)}`,
    });
    expect(run.result.ok).toBe(false);
    expect(run.errors.map((e) => [e.destination, e.code, e.message])).toEqual([[`real:${failing}`, 'HOOK_FAILED', 'before-commit hook exited 3: not this one']]);
    expect(readFileSync(join(ok, 'a.txt'), 'utf8')).toBe('hooked');
    expect(existsSync(join(failing, 'a.txt'))).toBe(false);
    expect(readFileSync(marker, 'utf8')).toBe(`real:${ok} ${ok}\n`);
  });
});
