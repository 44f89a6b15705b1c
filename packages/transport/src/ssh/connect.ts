/**
 * Opens an authenticated SSH connection with ssh2 the way `ssh` would for the same host: settings
 * from ~/.ssh/config, keys from ssh-agent then identity files, and the server's host key checked
 * against known_hosts. An unknown key is refused unless the caller opted in to learning it; a
 * changed or revoked key is always refused. The host is reached over TCP, through jump hosts
 * (ProxyJump, ssh -J: each one an ssh2 connection of its own, with its own config, keys and host
 * key check, forwarding to the next), or through a ProxyCommand. Every failure is a ConnectError
 * with a stable code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Duplex } from 'node:stream';
import type { AnyAuthMethod, AuthenticationType, Client, ClientChannel, ConnectConfig, ParsedKey } from 'ssh2';
import { ConnectError } from '../errors.js';
import { connectCoalescing } from './coalescing-socket.js';
import { resolveSshConfig } from './config.js';
import { addHostKey, checkHostKey, knownHostName, lookupHostKeys } from './known-hosts.js';
import { MAX_JUMP_DEPTH, parseJumpHosts, startProxyCommand, type JumpHost } from './proxy.js';

export interface ConnectOptions {
  /** Host as the user wrote it; HostName from the config may replace it. */
  host: string;
  port?: number;
  user?: string;
  /** Tried before any identity from the config (ssh -i). */
  identityFile?: string;
  /** ssh -F: read this config instead of ~/.ssh/config; 'none' for no config. */
  configFile?: string;
  /** Files to check the host key against and to learn new keys into (the first one). Default: UserKnownHostsFile, else ~/.ssh/known_hosts. */
  knownHostsFiles?: string[];
  /**
   * Learn the key of a host seen for the first time (OpenSSH's StrictHostKeyChecking=accept-new):
   * true learns, false refuses. Unset: the config's StrictHostKeyChecking decides (accept-new or no
   * learns; yes, ask or none refuses). A changed or revoked key is refused whatever this says.
   */
  acceptNewHostKeys?: boolean;
  /** ssh-agent socket; default IdentityAgent from the config, else SSH_AUTH_SOCK. `false` or '' disables the agent. */
  agentSocket?: string | false;
  /**
   * Limit for TCP connect, key exchange and authentication together; 0: no limit. Default: the
   * config's ConnectTimeout, else 15000.
   */
  connectTimeoutMs?: number;
  /** SSH-level keepalive interval; 0 disables it. Default: the config's ServerAliveInterval, else none. */
  keepaliveIntervalMs?: number;
  /**
   * ssh -J: reach the host through these jump hosts, written as ProxyJump takes them
   * (`[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated, the first reached first);
   * 'none' connects directly. Unset: the config's ProxyJump or ProxyCommand, if it has one.
   */
  jumpHosts?: string;
}

/** What carries the connection to the host, and how to end it. */
interface Route {
  sock: Duplex;
  /** ' via ...', for messages. */
  via: string;
  /** Why the route itself failed (a proxy command's exit and stderr), if it has. */
  failure(): string | undefined;
  /** Settles when failure() is known: a proxy command's exit (or a second at most); at once for the others. */
  settled(): Promise<void>;
  close(): void;
}

/** Limit for TCP connect, key exchange and authentication when neither the caller nor the config sets one. */
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

/** How long a failed connection waits for its proxy command's exit, to say why it failed. */
const PROXY_EXIT_WAIT_MS = 1000;

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Host key algorithms ssh2 negotiates for each key type found in known_hosts. */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

interface Identity {
  file: string;
  key: ParsedKey;
}

/**
 * Connects and authenticates. Resolves with a ready ssh2 Client; the caller ends it with `client.end()`
 * and watches its 'close' event (later client errors are swallowed so they cannot crash the process;
 * they surface as closed channels). Rejects with ConnectError: 'HOST_KEY_UNKNOWN', 'HOST_KEY_MISMATCH',
 * 'AUTH', 'CONNECT' or 'CONFIG'.
 */
export function connectSsh(options: ConnectOptions): Promise<Client> {
  return connectHop(options, 0);
}

/** connectSsh for a host `depth` jumps away from this machine's own connections. */
async function connectHop(options: ConnectOptions, depth: number): Promise<Client> {
  const home = homedir();
  const config = resolveSshConfig(options.host, { configFile: options.configFile, user: options.user, port: options.port });
  const host = config.hostName;
  const port = config.port ?? 22;
  const username = config.user ?? userInfo().username;
  const target = `${username}@${host}${port === 22 ? '' : `:${port}`}`;

  const knownHostsFiles = options.knownHostsFiles ?? (config.userKnownHostsFiles.length > 0 ? config.userKnownHostsFiles : [join(home, '.ssh', 'known_hosts')]);
  const agentSocket = chooseAgentSocket(options.agentSocket, config.identityAgent);

  // Identities: explicit -i first, then the config's; OpenSSH's defaults only when neither named any.
  const named = [...(options.identityFile ? [options.identityFile] : []), ...config.identityFiles];
  const candidates = named.length > 0 ? named : DEFAULT_IDENTITIES.map((n) => join(home, '.ssh', n));
  const notes: string[] = [];
  const identities = loadIdentities(candidates, named.length > 0, notes);

  const methods: AnyAuthMethod[] = [];
  if (agentSocket) methods.push({ type: 'agent', username, agent: agentSocket });
  for (const id of identities) methods.push({ type: 'publickey', username, key: id.key });
  const tried = [...(agentSocket ? [`ssh-agent (${agentSocket})`] : []), ...identities.map((i) => i.file)];
  if (methods.length === 0) {
    throw new ConnectError('AUTH', `no credentials for ${target}: no ssh-agent and no usable identity file${notes.length ? ` (${notes.join('; ')})` : ''}`, { host, port, user: username });
  }

  // Prefer the key types already on file for this host, as OpenSSH does, so that a host with
  // several keys is checked against the one we know rather than reported as changed.
  const knownTypes = new Set((await lookupHostKeys(host, port, knownHostsFiles)).filter((e) => e.marker === undefined).map((e) => e.keyType));
  const preferred = [...knownTypes].flatMap((t) => ALGORITHMS_FOR_KEY_TYPE[t] ?? []);

  const jumpHosts = options.jumpHosts ?? config.proxyJump;
  const proxyCommand = options.jumpHosts === undefined ? config.proxyCommand : undefined;
  let route: Route;
  if (jumpHosts !== undefined && jumpHosts.toLowerCase() !== 'none') {
    route = await throughJumpHosts(parseJumpHosts(jumpHosts), host, port, options, depth);
  } else if (proxyCommand !== undefined) {
    const proxy = startProxyCommand(proxyCommand);
    route = {
      sock: proxy.sock,
      via: ` via ProxyCommand \`${proxyCommand}\``,
      failure: proxy.failure,
      settled: () => proxy.exited(PROXY_EXIT_WAIT_MS),
      close: proxy.close,
    };
  } else {
    // Connecting already: ssh2 takes a socket that is not `connecting` as connected.
    const sock = connectCoalescing({ host, port });
    route = { sock, via: '', failure: () => undefined, settled: () => Promise.resolve(), close: () => sock.destroy() };
  }
  const routeFailure = () => {
    const why = route.failure();
    return why ? ` (the proxy command failed: ${why})` : '';
  };

  const client = new ssh2.Client();
  let refusal: ConnectError | undefined;
  // StrictHostKeyChecking no learns new keys as accept-new does; a changed key is refused all the same.
  const strict = config.strictHostKeyChecking;
  const acceptNew = options.acceptNewHostKeys ?? (strict === 'accept-new' || strict === 'no');

  const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
    checkHostKey({ host, port, key, files: knownHostsFiles }).then(
      async (status) => {
        if (status === 'known') return verify(true);
        if (status === 'mismatch') {
          refusal = new ConnectError(
            'HOST_KEY_MISMATCH',
            `the host key of ${knownHostName(host, port)} does not match the one in ${knownHostsFiles.join(', ')} (or it is revoked). ` +
              'Someone could be intercepting the connection, or the host was reinstalled; check with its administrator, ' +
              'then remove the old entry (ssh-keygen -R) before trying again.',
            { host, port },
          );
          return verify(false);
        }
        if (!acceptNew) {
          refusal = new ConnectError(
            'HOST_KEY_UNKNOWN',
            `the host key of ${knownHostName(host, port)} is not in ${knownHostsFiles.join(', ')}. ` +
              'Verify its fingerprint, then connect once with `ssh` or pass --accept-new-host-keys to add it.',
            { host, port },
          );
          return verify(false);
        }
        await addHostKey(knownHostsFiles[0], host, port, key);
        verify(true);
      },
      (error: Error) => {
        refusal = new ConnectError('CONNECT', `cannot check the host key of ${host}: ${error.message}`, { host, port });
        verify(false);
      },
    ).catch((error: Error) => {
      refusal = new ConnectError('CONNECT', `cannot record the host key of ${host} in ${knownHostsFiles[0]}: ${error.message}`, { host, port });
      verify(false);
    });
  };

  let next = 0;
  const authHandler = (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, callback: (m: AnyAuthMethod | false) => void): void => {
    if (methodsLeft && !methodsLeft.includes('publickey')) return callback(false);
    callback(next < methods.length ? methods[next++] : false);
  };

  const connectConfig: ConnectConfig = {
    host,
    port,
    username,
    readyTimeout: options.connectTimeoutMs ?? config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    keepaliveInterval: options.keepaliveIntervalMs ?? config.serverAliveIntervalMs ?? 0,
    // Unanswered keepalives before the connection is given up: OpenSSH's default is ssh2's, 3.
    keepaliveCountMax: config.serverAliveCountMax ?? 3,
    hostVerifier,
    authHandler: authHandler as unknown as ConnectConfig['authHandler'],
  };
  if (preferred.length > 0) {
    connectConfig.algorithms = { serverHostKey: { remove: preferred, prepend: preferred } as never };
  }

  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    /**
     * Ends the attempt. A failure of the connection itself is given as a function, called once the
     * route has settled, so that a proxy command's exit status and stderr make it into the message.
     */
    const fail = (error: ConnectError | (() => ConnectError)) => {
      if (settled) return;
      settled = true;
      const finish = () => {
        client.end();
        route.close();
        reject(typeof error === 'function' ? error() : error);
      };
      if (typeof error === 'function') void route.settled().then(finish);
      else finish();
    };
    // Once the connection is over, so is what carried it (a jump host's connection, a proxy command).
    client.on('close', () => route.close());
    // The handshake and authentication are a series of small round trips: without TCP_NODELAY each
    // one waits on Nagle's algorithm and delayed ACKs (measured: 228 ms to ready, 45 ms with it).
    client.on('connect', () => client.setNoDelay(true));
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('error');
      client.on('error', () => {}); // later errors surface on channels and 'close'
      resolve(client);
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      if (error.level === 'agent') {
        notes.push(`ssh-agent: ${error.message}`);
        return; // ssh2 goes on with the next method
      }
      if (refusal) return fail(refusal);
      if (error.level === 'client-authentication') {
        const detail = [`tried ${tried.join(', ') || 'nothing'}`, ...notes].join('; ');
        return fail(new ConnectError('AUTH', `authentication failed for ${target}: ${detail}`, { host, port, user: username }));
      }
      if (error.level === 'client-timeout') {
        return fail(
          () => new ConnectError('CONNECT', `timed out connecting to ${host} port ${port}${route.via} after ${connectConfig.readyTimeout} ms${routeFailure()}`, { host, port }),
        );
      }
      const cause = error.code ? `${error.code}: ` : '';
      fail(
        () =>
          new ConnectError('CONNECT', `cannot connect to ${host} port ${port}${route.via}: ${cause}${error.message}${routeFailure()}`, {
            host,
            port,
            cause: error.code ?? '',
          }),
      );
    });
    client.on('close', () => {
      if (refusal) return fail(refusal);
      fail(() => new ConnectError('CONNECT', `connection to ${host} port ${port}${route.via} closed during set-up${routeFailure()}`, { host, port }));
    });
    try {
      client.connect({ ...connectConfig, sock: route.sock as never });
    } catch (error) {
      fail(new ConnectError('CONNECT', `cannot connect to ${host} port ${port}${route.via}: ${(error as Error).message}`, { host, port }));
    }
  });
}

/**
 * A route to `host` through `hops`: the last one is connected to (through those before it, or its
 * own config's ProxyJump or ProxyCommand when it is the only one), then asked to forward to the host,
 * as `ssh -J` does. Each jump host is a connection of its own: its config, keys and host key check.
 */
async function throughJumpHosts(hops: JumpHost[], host: string, port: number, options: ConnectOptions, depth: number): Promise<Route> {
  if (depth + 1 > MAX_JUMP_DEPTH) {
    throw new ConnectError('CONFIG', `jump hosts nested more than ${MAX_JUMP_DEPTH} deep on the way to ${host} (does a jump host's ProxyJump lead back to itself?)`, { host });
  }
  const last = hops[hops.length - 1];
  const before = hops.slice(0, -1).map(formatJumpHost).join(',');
  const name = formatJumpHost(last);
  let jump: SharedJump;
  try {
    jump = await sharedJump(
      {
        host: last.host,
        port: last.port,
        user: last.user,
        configFile: options.configFile,
        knownHostsFiles: options.knownHostsFiles,
        acceptNewHostKeys: options.acceptNewHostKeys,
        agentSocket: options.agentSocket,
        connectTimeoutMs: options.connectTimeoutMs,
        keepaliveIntervalMs: options.keepaliveIntervalMs,
        jumpHosts: before === '' ? undefined : before,
      },
      depth + 1,
    );
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    // The jump host's own failure, with its code (a host key refused stays HOST_KEY_UNKNOWN).
    throw new ConnectError(error.code, `jump host ${name}: ${error.message}`, { ...error.details, jumpHost: name });
  }
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    jump.client.forwardOut('127.0.0.1', 0, host, port, (error, ch) => {
      if (!error) return resolve(ch);
      jump.release();
      reject(new ConnectError('CONNECT', `jump host ${name} could not reach ${host} port ${port}: ${error.message}`, { host, port, jumpHost: name }));
    });
  });
  return { sock: channel, via: ` via jump host ${name}`, failure: () => undefined, settled: () => Promise.resolve(), close: jump.release };
}

interface SharedJump {
  client: Client;
  /** This user is done with the connection (once; later calls do nothing). */
  release(): void;
}

/**
 * Jump connections in use, by everything that defines one. Destinations behind the same jump host
 * (a fan-out to web1..web8 through one bastion) share one connection to it, each with a forwarded
 * channel of its own: one handshake, one authentication and one host key check for the jump host.
 * A connection ends with its last user, and is forgotten when it closes or fails.
 */
const jumpConnections = new Map<string, { client: Promise<Client>; users: number }>();

async function sharedJump(options: ConnectOptions, depth: number): Promise<SharedJump> {
  // The depth too: a config whose jump host jumps to itself must reach the depth limit, not wait on itself.
  const key = JSON.stringify([depth, options]);
  let entry = jumpConnections.get(key);
  if (!entry) {
    const made = { client: connectHop(options, depth), users: 0 };
    const forget = () => {
      if (jumpConnections.get(key) === made) jumpConnections.delete(key);
    };
    made.client.then((client) => client.on('close', forget), forget);
    jumpConnections.set(key, made);
    entry = made;
  }
  const shared = entry;
  shared.users++;
  let client: Client;
  try {
    client = await shared.client;
  } catch (error) {
    shared.users--;
    throw error;
  }
  let released = false;
  return {
    client,
    release: () => {
      if (released) return;
      released = true;
      if (--shared.users > 0) return;
      if (jumpConnections.get(key) === shared) jumpConnections.delete(key);
      client.end();
    },
  };
}

/** Jump host connections open and shared now (for tests and diagnostics). */
export function openJumpConnections(): number {
  return jumpConnections.size;
}

/** A jump host as ProxyJump writes it. */
function formatJumpHost(hop: JumpHost): string {
  const host = hop.host.includes(':') ? `[${hop.host}]` : hop.host;
  return `${hop.user !== undefined ? `${hop.user}@` : ''}${host}${hop.port !== undefined ? `:${hop.port}` : ''}`;
}

function chooseAgentSocket(option: string | false | undefined, identityAgent: string | undefined): string | undefined {
  let socket: string | undefined;
  if (option !== undefined) socket = option || undefined;
  else if (identityAgent === 'none') socket = undefined;
  else if (identityAgent !== undefined && identityAgent !== 'SSH_AUTH_SOCK') socket = identityAgent;
  else socket = process.env.SSH_AUTH_SOCK || undefined;
  // A stale SSH_AUTH_SOCK would only add a failed attempt; skip it.
  return socket && existsSync(socket) ? socket : undefined;
}

/** Reads and parses private keys; an unreadable or encrypted key is noted and skipped, as ssh warns and goes on. */
function loadIdentities(files: string[], named: boolean, notes: string[]): Identity[] {
  const identities: Identity[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (error) {
      if (named) notes.push(`${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      continue;
    }
    const parsed = ssh2.utils.parseKey(data);
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    if (key instanceof Error) {
      notes.push(/encrypted/i.test(key.message) ? `${file}: encrypted (add it to ssh-agent to use it)` : `${file}: ${key.message}`);
      continue;
    }
    if (!key.isPrivateKey()) {
      notes.push(`${file}: not a private key`);
      continue;
    }
    identities.push({ file, key });
  }
  return identities;
}
