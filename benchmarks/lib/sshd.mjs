/**
 * A private OpenSSH server on 127.0.0.1 for the sync benchmarks: its own host key, client key,
 * authorized_keys, known_hosts and a client config (`Host bench`) that both `ssh` (for rsync) and
 * deltacast read with -F, so neither tool touches ~/.ssh. sshd runs in the foreground (-D; it
 * cannot daemonize in every container) and is stopped when this process exits, also on failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './run.mjs';

export const HOST_ALIAS = 'bench';

/** The sshd binary (PATH, then /usr/sbin/sshd) or undefined. */
export function findSshd() {
  return findExecutable('sshd') ?? findExecutable('/usr/sbin/sshd');
}

/** A TCP port that was free a moment ago (the kernel's pick for port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function keygen(path) {
  const result = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deltacast-bench', '-f', path], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ssh-keygen -f ${path} failed: ${result.stderr || result.error}`);
}

/** Resolves once 127.0.0.1:port answers with an SSH banner, or rejects after `timeoutMs`. */
async function waitForBanner(port, timeoutMs, exited) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) throw new Error(exited());
    const banner = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (data) => {
        text += data;
        if (text.includes('\n')) socket.destroy();
      });
      socket.on('error', () => resolve(''));
      socket.on('close', () => resolve(text));
    });
    if (banner.startsWith('SSH-')) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts sshd with everything under `dir`. Returns { port, sshd, configFile, knownHostsFile,
 * clientKey, log, useClientPort(port), stop() }. `configFile` holds `Host bench` (HostName
 * 127.0.0.1, Port, User: the current user, IdentityFile, UserKnownHostsFile, no agent, BatchMode).
 * Logging in needs root (sshd switches to the user); as another user sshd can only serve itself.
 */
export async function startSshd(dir, { sshd = findSshd(), user = userInfo().username, timeoutMs = 10_000 } = {}) {
  if (!sshd) throw new Error('sshd not found (Debian: apt-get install openssh-server)');
  mkdirSync(dir, { recursive: true });
  // sshd's privilege separation directory; Debian creates it at boot only when the service runs.
  mkdirSync('/run/sshd', { recursive: true });
  const at = (name) => join(dir, name);
  keygen(at('hostkey'));
  keygen(at('clientkey'));
  writeFileSync(at('authorized_keys'), readFileSync(at('clientkey.pub')));
  const [keyType, keyData] = readFileSync(at('hostkey.pub'), 'utf8').trim().split(/\s+/);
  const port = await freePort();
  writeFileSync(
    at('sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${at('hostkey')}`,
      `AuthorizedKeysFile ${at('authorized_keys')}`,
      `PidFile ${at('sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UseDNS no',
      'PrintMotd no',
      'LogLevel ERROR',
      // Up to a few connections per run at once (and the test suite's); OpenSSH's default is 10:30:100.
      'MaxStartups 50',
      '',
    ].join('\n'),
  );

  const knownPorts = [port];
  const writeKnownHosts = () =>
    writeFileSync(at('known_hosts'), knownPorts.map((p) => `[127.0.0.1]:${p} ${keyType} ${keyData}\n`).join(''));
  writeKnownHosts();
  const writeConfig = (clientPort) =>
    writeFileSync(
      at('ssh_config'),
      [
        `Host ${HOST_ALIAS}`,
        '  HostName 127.0.0.1',
        `  Port ${clientPort}`,
        `  User ${user}`,
        `  IdentityFile ${at('clientkey')}`,
        '  IdentitiesOnly yes',
        '  IdentityAgent none',
        `  UserKnownHostsFile ${at('known_hosts')}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
        '  ControlMaster no',
        '  ControlPath none',
        '',
      ].join('\n'),
    );
  writeConfig(port);

  const log = at('sshd.log');
  const logStream = createWriteStream(log);
  const child = spawn(sshd, ['-D', '-e', '-f', at('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.pipe(logStream);
  let exitText = '';
  child.on('exit', (code, signal) => {
    exitText = `sshd exited (${code ?? signal}); see ${log}`;
  });
  const stop = () => {
    process.removeListener('exit', stop);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  // 'exit' handlers run on process.exit() and after an uncaught error, so sshd never outlives us.
  process.on('exit', stop);
  try {
    await waitForBanner(port, timeoutMs, () => exitText);
  } catch (error) {
    stop();
    let logText = '';
    try {
      logText = readFileSync(log, 'utf8').trim();
    } catch {
      // no log yet
    }
    throw new Error(`${error.message}${logText ? `\n${logText}` : ''}`);
  }
  return {
    port,
    sshd,
    configFile: at('ssh_config'),
    knownHostsFile: at('known_hosts'),
    clientKey: at('clientkey'),
    log,
    /** Points `Host bench` at another port (a relay in front of sshd) and trusts the host key there too. */
    useClientPort(clientPort) {
      if (!knownPorts.includes(clientPort)) knownPorts.push(clientPort);
      writeKnownHosts();
      writeConfig(clientPort);
    },
    stop,
  };
}

/**
 * A TCP relay on 127.0.0.1 in front of `targetPort` that counts the bytes in each direction, so
 * both tools' traffic can be measured at the same place (SSH framing and encryption included).
 * With `delayMs`, every chunk is passed on that long after it arrived, in each direction (a round
 * trip then takes 2 * delayMs more, as on a distant network; the bandwidth stays loopback's).
 * `take()` waits until the connections of the last run have closed (the client's exit can be seen
 * before the relay has read its last bytes), then returns and resets { up, down }: up = client to server.
 */
export async function startByteCounter(targetPort, { delayMs = 0 } = {}) {
  let up = 0;
  let down = 0;
  const sockets = new Set();
  /** Passes `from`'s bytes to `to`, each chunk `delayMs` late (in order), holding `from` while `to` is full. */
  const forward = (from, to, count) => {
    if (delayMs === 0) {
      from.on('data', count);
      from.pipe(to);
      return;
    }
    let held = 0;
    from.on('data', (d) => {
      count(d);
      held++;
      setTimeout(() => {
        held--;
        if (!to.destroyed && !to.write(d)) from.pause();
      }, delayMs);
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      const finish = () => (held === 0 ? to.end() : setTimeout(finish, delayMs));
      setTimeout(finish, delayMs);
    });
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    // Without this, Nagle's algorithm in the relay holds back small packets and adds delays neither tool would see direct.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client).add(upstream);
    forward(client, upstream, (d) => {
      up += d.length;
    });
    forward(upstream, client, (d) => {
      down += d.length;
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    async take() {
      for (let waited = 0; sockets.size > 0 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      const counts = { up, down };
      up = 0;
      down = 0;
      return counts;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
