/**
 * Turns a destination as users write it (`/srv/site`, `web1:/srv/site`, `user@web1:site`,
 * `ssh://user@web1:2222/srv/site`) into a running agent session: a child process (or this process)
 * for a local path, an SSH exec channel for a remote one.
 */
import { limitRate } from './rate-limit.js';
import { ConnectError, TransportError } from './errors.js';
import { childProcessAgent, inProcessAgent } from './local.js';
import { connectSsh, formatDestination, parseDestination, shellQuote, startRemoteAgent, type Destination } from './ssh/index.js';
import { rshArgv, rshShell } from './ssh/rsh.js';
import { sshShell, type RemoteShell } from './ssh/remote-agent.js';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { ByteStreams } from './wire.js';

export interface SshOptions {
  /** -p: port, when the destination does not name one. */
  port?: number;
  /** -i: identity file tried first. */
  identityFile?: string;
  /** -F: ssh config file instead of ~/.ssh/config. */
  configFile?: string;
  knownHostsFiles?: string[];
  /**
   * Learn unknown host keys (appending them to known_hosts) instead of refusing them; false refuses
   * them. Unset: as the ssh config's StrictHostKeyChecking says (accept-new or no learns).
   */
  acceptNewHostKeys?: boolean;
  /** Run this on the remote instead of finding or uploading the agent. */
  remoteCommand?: string;
  /** -J: jump hosts to go through (see ConnectOptions.jumpHosts); unset: the config's ProxyJump or ProxyCommand. */
  jumpHosts?: string;
  /**
   * -e, --rsh: reach remote destinations with this command (`ssh`, `ssh -p 2222 -o ...`) instead of the
   * built-in SSH client, one process per remote command, as rsync does (src/ssh/rsh.ts). The options
   * above go to it as ssh's own (-l, -p, -i, -F, -J, -o StrictHostKeyChecking=accept-new, ...).
   */
  rsh?: string;
  /**
   * Limit for reaching a host (TCP, key exchange, authentication), and for each step of starting its
   * agent; 0: no limit. Default: the ssh config's ConnectTimeout for the connection, else 15 s.
   */
  connectTimeoutMs?: number;
  /**
   * Send an SSH keepalive after this long without traffic (ssh's ServerAliveInterval; three unanswered
   * ones end the connection). For sessions kept open between runs, so a dead peer is noticed while idle.
   */
  keepaliveIntervalMs?: number;
}

export interface DestinationOptions {
  ssh?: SshOptions;
  /** Local destinations: an agent in a child process (default; patches on another core) or in this one. */
  localAgent?: 'child' | 'in-process';
  /**
   * rsync's --bwlimit: what the session sends to the destination is paced to this many bytes per
   * second (rate-limit.ts); 0 or unset: no limit. The agent's replies, commit hooks and the upload of
   * the agent are not paced.
   */
  bwlimit?: number;
}

export interface HookResult {
  code: number;
  /** The end of what the command wrote to stderr (for messages). */
  stderr: string;
}

export interface OpenedDestination {
  /** The destination as the user wrote it, for messages. */
  name: string;
  /** The root as the agent resolves it. */
  root: string;
  /** On another host (reached over SSH), not a local path. */
  remote: boolean;
  streams: ByteStreams;
  /**
   * Runs a shell command on the destination's host, in its root, with DELTACAST_ROOT and
   * DELTACAST_DESTINATION set (commit hooks).
   */
  exec(command: string): Promise<HookResult>;
  /**
   * Ends the session's transport. Settles once a local agent has ended, so its lock on the root is
   * gone and the next session can start at once; a remote agent ends on its host when its channel closes.
   */
  close(): Promise<void>;
}

const STDERR_KEEP = 4096;

function hookEnv(name: string, root: string): Record<string, string> {
  return { DELTACAST_ROOT: root, DELTACAST_DESTINATION: name };
}

export async function openDestination(spec: string | Destination, options: DestinationOptions = {}): Promise<OpenedDestination> {
  const rate = options.bwlimit;
  if (rate !== undefined && !(Number.isFinite(rate) && rate >= 0)) {
    throw new TransportError('INVALID_OPTION', `bwlimit must be a number of bytes per second from 0 up, not ${rate}`, { bwlimit: rate });
  }
  const opened = await openTransport(spec, options);
  return options.bwlimit ? { ...opened, streams: limitRate(opened.streams, options.bwlimit) } : opened;
}

async function openTransport(spec: string | Destination, options: DestinationOptions): Promise<OpenedDestination> {
  const destination = typeof spec === 'string' ? parseDestination(spec) : spec;
  const name = typeof spec === 'string' ? spec : formatDestination(destination);
  if (destination.kind === 'local') {
    const streams = options.localAgent === 'in-process' ? inProcessAgent() : childProcessAgent();
    const ended = 'done' in streams ? streams.done : streams.exited;
    const root = resolve(destination.path);
    return {
      name,
      root: destination.path,
      remote: false,
      streams,
      exec: (command) =>
        new Promise((done) => {
          const child = spawn('sh', ['-c', command], { cwd: root, env: { ...process.env, ...hookEnv(name, root) }, stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
          child.on('error', (error) => done({ code: 127, stderr: error.message }));
          child.on('close', (code) => done({ code: code ?? 128, stderr }));
        }),
      close: () => {
        streams.close?.();
        return ended.catch(() => {});
      },
    };
  }
  const ssh = options.ssh ?? {};
  const remote = await connectShell(destination, name, ssh);
  try {
    const streams = await startRemoteAgent(remote.shell, { remoteCommand: ssh.remoteCommand, timeoutMs: ssh.connectTimeoutMs });
    const root = destination.path === '' ? '.' : destination.path;
    return {
      name,
      root,
      remote: true,
      streams,
      exec: hookRunner(remote.shell, name, root),
      close: async () => {
        streams.close?.();
        remote.end();
      },
    };
  } catch (error) {
    remote.end();
    throw error;
  }
}

/** A host's remote shell, and how to let go of it. */
export interface ConnectedShell {
  shell: RemoteShell;
  /** Ends the connection (the built-in client's; a remote shell command's processes end on their own). */
  end(): void;
}

/**
 * Reaches `destination`'s host: with the built-in SSH client (one connection, each remote command
 * an exec channel), or with SshOptions.rsh (each remote command a process of its own). `name`
 * labels a failure to connect.
 */
export async function connectShell(destination: Extract<Destination, { kind: 'ssh' }>, name: string, ssh: SshOptions): Promise<ConnectedShell> {
  if (ssh.rsh !== undefined) return { shell: rshShellFor(destination, ssh), end: () => {} };
  let client;
  try {
    client = await connectSsh({
      host: destination.host,
      port: destination.port ?? ssh.port,
      user: destination.user,
      identityFile: ssh.identityFile,
      configFile: ssh.configFile,
      knownHostsFiles: ssh.knownHostsFiles,
      acceptNewHostKeys: ssh.acceptNewHostKeys,
      connectTimeoutMs: ssh.connectTimeoutMs,
      keepaliveIntervalMs: ssh.keepaliveIntervalMs,
      jumpHosts: ssh.jumpHosts,
    });
  } catch (error) {
    if (error instanceof TransportError) throw error;
    throw new ConnectError('CONNECT', `${name}: ${(error as Error).message}`, { destination: name });
  }
  const connected = client;
  return { shell: sshShell(connected), end: () => connected.end() };
}

/**
 * Commit hooks on a remote host, through `shell`: `cd ROOT && env DELTACAST_... sh -c COMMAND`, with
 * no time limit; its exit status (255 when it could not run or gave none) and the end of its stderr.
 */
function hookRunner(shell: RemoteShell, name: string, root: string): OpenedDestination['exec'] {
  const env = Object.entries(hookEnv(name, root))
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join(' ');
  return async (command) => {
    try {
      const result = await shell.run(`cd ${shellQuote(root)} && env ${env} sh -c ${shellQuote(command)}`, 0);
      return { code: result.code ?? 255, stderr: result.stderr.slice(-STDERR_KEEP) };
    } catch (error) {
      return { code: 255, stderr: (error as Error).message };
    }
  };
}

/** The remote shell command (SshOptions.rsh) that reaches `destination`'s host, instead of ssh2. */
function rshShellFor(destination: Extract<Destination, { kind: 'ssh' }>, ssh: SshOptions): RemoteShell {
  // A malformed command or host throws its ConnectError (CONFIG) or PathError here.
  return rshShell(
    rshArgv({
      command: ssh.rsh!,
      host: destination.host,
      user: destination.user,
      port: destination.port ?? ssh.port,
      identityFile: ssh.identityFile,
      configFile: ssh.configFile,
      jumpHosts: ssh.jumpHosts,
      acceptNewHostKeys: ssh.acceptNewHostKeys,
      knownHostsFiles: ssh.knownHostsFiles,
      connectTimeoutMs: ssh.connectTimeoutMs,
      keepaliveIntervalMs: ssh.keepaliveIntervalMs,
    }),
  );
}
