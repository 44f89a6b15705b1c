/**
 * A real OpenSSH server for tests: `/usr/sbin/sshd -D -e` on 127.0.0.1 and a free high port, with
 * host and client keys made by ssh-keygen in a temp dir and everything (authorized keys, pid file)
 * kept there. Sessions get HOME=<dir>/home and a PATH of <dir>/bin plus the system directories, so
 * tests control what the remote finds on its PATH and where it caches files.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const SSHD = '/usr/sbin/sshd';

function onPath(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const hasSshd = existsSync(SSHD) && onPath('ssh-keygen');
export const sshdSkipReason = hasSshd ? '' : `OpenSSH server tests need ${SSHD} and ssh-keygen (apt-get install openssh-server)`;

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** Client private key that the server accepts. */
  identityFile: string;
  /** known_hosts with the server's key under `[127.0.0.1]:port`. */
  knownHostsFile: string;
  hostKeyLine: string;
  /** The temp dir: config, keys, `home/` (the sessions' HOME) and `bin/` (first on their PATH). */
  dir: string;
  home: string;
  bin: string;
  /** What sshd wrote to stderr (it runs with -e). */
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<Sshd> {
  if (!hasSshd) throw new Error(sshdSkipReason);
  // Privilege separation directory; sshd refuses to start without it.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'deltacast-sshd-'));
  const home = join(dir, 'home');
  const bin = join(dir, 'bin');
  mkdirSync(home);
  mkdirSync(bin);
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deltacast-test', '-f', file], { stdio: 'ignore' });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const identityFile = join(dir, 'id_ed25519');
  keygen(hostKey);
  keygen(identityFile);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${identityFile}.pub`));
  const [keyType, keyBase64] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);

  const nodeDir = dirname(process.execPath);
  const path = [bin, nodeDir, '/usr/local/bin', '/usr/bin', '/bin'].filter((d, i, all) => all.indexOf(d) === i).join(':');

  let lastError: Error | undefined;
  // The free port can be taken between probing and sshd's bind; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PrintMotd no',
        'PrintLastLog no',
        'UseDNS no',
        'LogLevel ERROR',
        `SetEnv HOME=${home} PATH=${path}`,
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8');
    });
    try {
      await waitForPort(port, child, () => log);
    } catch (error) {
      lastError = error as Error;
      await stopChild(child);
      continue;
    }
    const hostKeyLine = `[127.0.0.1]:${port} ${keyType} ${keyBase64}`;
    const knownHostsFile = join(dir, 'known_hosts');
    writeFileSync(knownHostsFile, `${hostKeyLine}\n`);
    return {
      host: '127.0.0.1',
      port,
      user: userInfo().username,
      identityFile,
      knownHostsFile,
      hostKeyLine,
      dir,
      home,
      bin,
      log: () => log,
      stop: async () => {
        await stopChild(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new Error('sshd did not start');
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

/** Polls until sshd accepts a TCP connection; fails at once if it exits (bad config, port taken). */
async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (let i = 0; i < 200; i++) {
    if (exited) throw new Error(`sshd exited: ${log().trim()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok && !exited) return;
    await sleep(25);
  }
  throw new Error(`sshd did not accept connections on port ${port}: ${log().trim()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}
