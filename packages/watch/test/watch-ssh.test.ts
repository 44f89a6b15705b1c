/**
 * Watch mode over SSH: roots on a real OpenSSH server (one of them reached through a relay the test
 * can cut, to stop and restart that destination) and an in-process ssh2 server. Batches reuse one
 * session per destination; a destination that went down is caught up when it returns.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from '../../transport/test/helpers/sshd.js';
import { hostEntry, startAgentServer, writeSshConfig, type AgentServer } from '../../fanout/test/ssh-servers.js';
import { TcpProxy } from './tcp-proxy.js';
import { startWatch, useTempDirs, waitFor, waitMirrored, type Running } from './watch-helpers.js';

const tempDir = useTempDirs('deltacast-watch-ssh-');
const AGENT_BUNDLE = fileURLToPath(new URL('../../transport/dist/agent.bundle.mjs', import.meta.url));

describe.skipIf(!hasSshd)(`watch to OpenSSH and ssh2 destinations ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  let mem: AgentServer;
  let proxy: TcpProxy;
  let configFile = '';
  let running: Running | undefined;

  beforeAll(async () => {
    if (!existsSync(AGENT_BUNDLE)) throw new Error(`${AGENT_BUNDLE} is missing: run \`pnpm -r run build\` first`);
    sshd = await startSshd();
    mem = await startAgentServer();
    proxy = new TcpProxy(sshd.port);
    await proxy.start();
    const proxyKnownHosts = join(sshd.dir, 'proxy_known_hosts');
    writeFileSync(proxyKnownHosts, `${sshd.hostKeyLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${proxy.port}`)}\n`);
    configFile = writeSshConfig(join(sshd.dir, 'watch_ssh_config'), [
      { alias: 'real', port: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile },
      { alias: 'flaky', port: proxy.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: proxyKnownHosts },
      hostEntry('mem1', mem),
    ]);
  });

  afterEach(async () => {
    await running?.watch.close();
    running = undefined;
  });

  afterAll(async () => {
    await proxy?.stop();
    await mem?.server.close();
    await sshd?.stop();
  });

  it('replicates every change to four destinations over one session each, and catches up one that was stopped and restarted', async () => {
    const base = tempDir();
    const src = join(base, 'src');
    mkdirSync(join(src, 'assets'), { recursive: true });
    writeFileSync(join(src, 'index.html'), '<h1>v1</h1>');
    writeFileSync(join(src, 'assets/app.js'), 'console.log(1);\n'.repeat(5000));
    const roots = ['r1', 'r2', 'r3', 'r4'].map((r) => join(base, r));
    const destinations = [`real:${roots[0]}`, `real:${roots[1]}`, `flaky:${roots[2]}`, `mem1:${roots[3]}`];
    running = await startWatch({
      source: `${src}/`,
      destinations,
      ssh: { configFile, remoteCommand: `node ${AGENT_BUNDLE}` },
      connectRetries: 0,
    });
    await waitMirrored(running, src, roots);
    const sessionsAfterFirst = mem.sessions;

    writeFileSync(join(src, 'index.html'), '<h1>v2</h1>');
    await waitMirrored(running, src, roots);
    writeFileSync(join(src, 'assets/app.js'), `${'console.log(1);\n'.repeat(5000)}console.log(2);\n`);
    renameSync(join(src, 'index.html'), join(src, 'home.html'));
    await waitMirrored(running, src, roots);
    // Three batches, one session: the ssh2 server saw no new exec request after the first sync.
    expect(mem.sessions).toBe(sessionsAfterFirst);
    const edit = running.of('delta').find((d) => d.path === 'assets/app.js' && d.basis === 'shared');
    expect(edit?.destinations.sort()).toEqual([...destinations].sort());
    expect(edit!.deltaBytes).toBeLessThan(1000);

    // Stop the flaky destination: its connections are cut and new ones refused.
    await proxy.stop();
    writeFileSync(join(src, 'while-down.txt'), 'written while flaky was down');
    rmSync(join(src, 'assets/app.js'));
    await waitFor(() => running!.of('destination-down').some((e) => e.destination === destinations[2]), 'flaky to go down');
    await waitFor(() => existsSync(join(roots[0], 'while-down.txt')) && existsSync(join(roots[3], 'while-down.txt')), 'the change on the others');
    expect(existsSync(join(roots[2], 'while-down.txt'))).toBe(false);

    await proxy.start();
    await waitMirrored(running, src, roots, 45_000);
    expect(running.of('destination-up').filter((e) => e.destination === destinations[2]).length).toBeGreaterThanOrEqual(2);
    const catchUp = running.of('batch').find((b) => b.reason === 'catch-up' && b.destinations.includes(destinations[2]));
    expect(catchUp).toMatchObject({ full: true, destinations: [destinations[2]] });
  });
});
