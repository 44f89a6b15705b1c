/**
 * Turns a destination as users write it (`/srv/site`, `web1:/srv/site`, `user@web1:site`,
 * `ssh://user@web1:2222/srv/site`) into a running agent session: a child process (or this process)
 * for a local path, an SSH exec channel for a remote one.
 */
import { ConnectError, TransportError } from './errors.js';
import { childProcessAgent, inProcessAgent } from './local.js';
import { connectSsh, formatDestination, parseDestination, startRemoteAgent, type Destination } from './ssh/index.js';
import type { ByteStreams } from './wire.js';

export interface SshOptions {
  /** -p: port, when the destination does not name one. */
  port?: number;
  /** -i: identity file tried first. */
  identityFile?: string;
  /** -F: ssh config file instead of ~/.ssh/config. */
  configFile?: string;
  knownHostsFiles?: string[];
  /** Learn unknown host keys (appending them to known_hosts) instead of refusing them. */
  acceptNewHostKeys?: boolean;
  /** Run this on the remote instead of finding or uploading the agent. */
  remoteCommand?: string;
  connectTimeoutMs?: number;
}

export interface DestinationOptions {
  ssh?: SshOptions;
  /** Local destinations: an agent in a child process (default; patches on another core) or in this one. */
  localAgent?: 'child' | 'in-process';
}

export interface OpenedDestination {
  /** The destination as the user wrote it, for messages. */
  name: string;
  /** The root as the agent resolves it. */
  root: string;
  streams: ByteStreams;
  close(): void;
}

export async function openDestination(spec: string | Destination, options: DestinationOptions = {}): Promise<OpenedDestination> {
  const destination = typeof spec === 'string' ? parseDestination(spec) : spec;
  const name = typeof spec === 'string' ? spec : formatDestination(destination);
  if (destination.kind === 'local') {
    const streams = options.localAgent === 'in-process' ? inProcessAgent() : childProcessAgent();
    return { name, root: destination.path, streams, close: () => streams.close?.() };
  }
  const ssh = options.ssh ?? {};
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
    });
  } catch (error) {
    if (error instanceof TransportError) throw error;
    throw new ConnectError('CONNECT', `${name}: ${(error as Error).message}`, { destination: name });
  }
  // Requests and replies are small frames: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
  // hold them for tens of milliseconds each.
  client.setNoDelay(true);
  try {
    const streams = await startRemoteAgent(client, { remoteCommand: ssh.remoteCommand });
    return {
      name,
      root: destination.path === '' ? '.' : destination.path,
      streams,
      close: () => {
        streams.close?.();
        client.end();
      },
    };
  } catch (error) {
    client.end();
    throw error;
  }
}
