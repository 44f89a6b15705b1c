/**
 * The two indirect ways ssh_config(5) reaches a host, as OpenSSH reads them: ProxyJump (jump
 * hosts, each reached through the one before it; connect.ts opens them) and ProxyCommand (a
 * command whose stdin and stdout carry the connection).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { ConnectError } from '../errors.js';

export interface JumpHost {
  host: string;
  user?: string;
  port?: number;
}

/** Jump chains longer than this are refused (a config whose jump host jumps to itself would loop). */
export const MAX_JUMP_DEPTH = 8;

/**
 * Parses a ProxyJump value (or ssh -J's argument): comma-separated `[user@]host[:port]`, with an
 * IPv6 address in brackets, or `ssh://[user@]host[:port]`. The first host is the one reached
 * first. Throws ConnectError('CONFIG') for an empty element, host or user, or a bad port.
 */
export function parseJumpHosts(spec: string): JumpHost[] {
  const hops = spec.split(',').map((element) => parseJumpHost(element.trim(), spec));
  if (hops.length > MAX_JUMP_DEPTH) {
    throw new ConnectError('CONFIG', `ProxyJump ${spec}: more than ${MAX_JUMP_DEPTH} jump hosts`, { spec });
  }
  return hops;
}

function parseJumpHost(element: string, spec: string): JumpHost {
  const bad = (why: string) => new ConnectError('CONFIG', `ProxyJump ${spec}: ${why}`, { spec });
  let rest = element;
  if (/^ssh:\/\//i.test(rest)) {
    rest = rest.slice('ssh://'.length);
    if (rest.endsWith('/')) rest = rest.slice(0, -1);
    if (rest.includes('/')) throw bad(`${JSON.stringify(element)} has a path`);
  }
  if (rest === '') throw bad('an empty jump host');
  const at = rest.lastIndexOf('@');
  const user = at === -1 ? undefined : rest.slice(0, at);
  if (user === '') throw bad(`${JSON.stringify(element)} has an empty user name`);
  const hostPort = at === -1 ? rest : rest.slice(at + 1);
  // `[v6]:port`, `[v6]`, `host:port`, `host`; a bare address with several colons is an IPv6 host.
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(hostPort);
  const colons = hostPort.split(':').length - 1;
  const m = bracketed ?? (colons === 1 ? /^([^:]*):(.*)$/.exec(hostPort) : undefined);
  const host = m ? m[1] : hostPort;
  if (host === '' || /[\s[\]]/.test(host)) throw bad(`${JSON.stringify(element)} has no valid host`);
  const hop: JumpHost = { host };
  if (user !== undefined) hop.user = user;
  if (m?.[2] !== undefined) {
    const port = Number(m[2]);
    if (!/^\d+$/.test(m[2]) || port < 1 || port > 65535) throw bad(`port ${JSON.stringify(m[2])} is not in 1..65535`);
    hop.port = port;
  }
  return hop;
}

/** A ProxyCommand running, its stdin and stdout as one stream for ssh2. */
export interface ProxyCommandSocket {
  sock: Duplex;
  /** Why the command failed, if it has (exit status and the end of its stderr), for messages. */
  failure(): string | undefined;
  /** Settles once the command has exited, or after `ms`: its failure is known by then. */
  exited(ms: number): Promise<void>;
  /** Ends the command (SIGHUP, as ssh does) if it still runs. */
  close(): void;
}

const STDERR_KEEP = 4096;

/**
 * Starts `command` as OpenSSH does: `$SHELL -c "exec <command>"` (/bin/sh when SHELL is unset),
 * with its stderr kept for messages rather than shown.
 */
export function startProxyCommand(command: string): ProxyCommandSocket {
  const shell = process.env.SHELL || '/bin/sh';
  const child = spawn(shell, ['-c', `exec ${command}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let ended: string | undefined;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });
  child.on('error', (error) => {
    ended = `cannot run it: ${error.message}`;
  });
  child.on('exit', (code, signal) => {
    ended ??= code !== null ? `it exited with status ${code}` : `it was killed by ${signal}`;
  });
  const sock = new ProxyStream(child);
  const gone = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  return {
    exited: (ms) =>
      Promise.race([
        gone,
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          timer.unref();
        }),
      ]),
    sock,
    failure: () => {
      if (ended === undefined) return undefined;
      const said = stderr.trim();
      return said ? `${ended}: ${said}` : ended;
    },
    close: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGHUP');
    },
  };
}

/**
 * A command's stdout and stdin as one Duplex. The command's end is the stream's end and close, never
 * an error: a write after it has gone (EPIPE) is dropped, as the connection is over anyway, and ssh2
 * learns of that from the close.
 */
class ProxyStream extends Duplex {
  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    super();
    child.stdin.on('error', () => {});
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stdout.on('end', () => this.push(null));
    child.stdout.on('error', () => this.push(null));
    child.on('close', () => this.destroy());
    child.on('error', () => this.destroy());
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const stdin = this.child.stdin;
    if (stdin.destroyed || !stdin.writable) return done();
    if (stdin.write(chunk)) done();
    else stdin.once('drain', () => done()).once('close', () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    this.child.stdin.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    done(error);
  }
}
