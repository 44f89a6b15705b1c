/**
 * Starts the destination agent on an SSH connection and hands back its stdin/stdout as ByteStreams.
 * Order: an explicit remote command; else `deltacast agent` if it is on the remote PATH; else the
 * single-file agent bundle, uploaded once into ~/.cache/deltacast (named by its content hash, so
 * different versions never collide) and run with the remote `node`. Remote commands go through the
 * user's login shell, so every argument is single-quoted; scripts run under `sh -c` so that the
 * login shell's own syntax (csh, fish) does not matter.
 *
 * Finding the agent costs no command of its own: one script looks for deltacast and the cached
 * bundle and runs whichever it finds, saying which on stderr first (autoStartScript). Only when it
 * finds neither does it report the remote's Node.js and end, and the bundle is uploaded and started
 * with two more commands. Each remote command pays a round trip and the login shell's start-up
 * files, which on some hosts take longer than the agent's whole run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { EventEmitter } from 'node:events';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { ConnectError, TransportError } from '../errors.js';
import type { ByteStreams } from '../wire.js';

export interface RemoteAgentOptions {
  /** Run exactly this command line on the remote instead of finding the agent (--remote-command). */
  remoteCommand?: string;
  /** The agent bundle to upload when the remote lacks deltacast (default: this package's dist/agent.bundle.mjs). */
  bundlePath?: string;
  /**
   * Another deltacast command than the agent (a pull's sender, pull.ts): its arguments, run as
   * `deltacast ARGS` where deltacast is installed, else as `node BUNDLE ARGS` with this bundle (the
   * CLI's, which runs any command; cached as cli-<hash>.cjs). Unset: the agent.
   */
  program?: { args: string[]; bundlePath: string };
  /** Environment for the agent, set with `env NAME=value` in the command (sshd ignores most SSH env requests). */
  env?: Record<string, string>;
  /**
   * The probe of the remote (a shell that hangs in its start-up files, a hung home directory) fails
   * after this long; the bundle upload gets four times as long. Default 30 s.
   */
  timeoutMs?: number;
}

export type RemoteAgentKind = 'command' | 'deltacast' | 'bundle';

/** What a short remote command did. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Where remote commands run: an ssh2 connection's exec channels (sshShell), or a remote shell
 * command started once per command, as rsync's -e (rsh.ts). Commands are shell command lines.
 */
export interface RemoteShell {
  /**
   * Runs a command, feeding it `input`, and collects its exit status and the end of its output
   * (keepTail), within `timeoutMs` (0: no limit, for commit hooks).
   */
  run(command: string, timeoutMs: number, input?: Uint8Array): Promise<RunResult>;
  /**
   * Starts the agent: its stdin and stdout as the session's streams. With `announced`, the command
   * is an autoStartScript: its streams' `announcement` says what it ran.
   */
  start(command: string, kind: RemoteAgentKind, announced?: AnnouncedCommands): Promise<RemoteAgentStreams>;
}

/** The exec channels of an ssh2 connection as a RemoteShell. */
export function sshShell(client: Client): RemoteShell {
  return {
    run: (command, timeoutMs, input) => runRemote(client, command, timeoutMs, input),
    start: (command, kind, announced) => execAgent(client, command, kind, announced),
  };
}

export interface RemoteAgentStreams extends ByteStreams {
  /** How the agent was started. */
  kind: RemoteAgentKind;
  /** The command line that was executed on the remote. */
  command: string;
  /** What the remote command wrote to stderr so far (the last 64 KiB). */
  stderr(): string;
  /** For an autoStartScript: what it ran, once its stderr has said so, or that it ended without running an agent. */
  announcement?: Promise<Announcement>;
  /** Its stderr as it comes (an autoStartScript's line included); `stderr()` keeps the tail. */
  stderrStream: Readable;
  /** Its exit status, once it has ended (null and null: it closed without one). */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** The command lines an autoStartScript's two agents are reported as (in messages and `command`). */
export interface AnnouncedCommands {
  deltacast: string;
  bundle: string;
}

/**
 * What an autoStartScript did: started `deltacast agent` or the cached bundle, or found neither and
 * ended (`node`: the remote's `node --version`, empty without one; undefined when it ended without
 * saying, as a login shell or an ssh that fails would, with its exit status).
 */
export type Announcement =
  | { kind: 'deltacast' | 'bundle' }
  | { kind: 'ended'; node: string | undefined; exit?: { code: number | null; signal: string | null } };

/** The line an autoStartScript writes to stderr before it runs an agent or ends. */
const ANNOUNCE_PREFIX = 'deltacast-start: ';
const ANNOUNCE_LINE = /(?:^|\n)deltacast-start: (deltacast|bundle|none node=([^\n]*))\n/;

/**
 * The shell script that starts the agent in one remote command: `deltacast agent` when it is on the
 * PATH, else the bundle cached as `cacheName` when it is there whole (`size` bytes), else nothing.
 * With `args` (quoted), another command: `deltacast ARGS`, or `node BUNDLE ARGS`.
 * Before it runs either it writes `deltacast-start: deltacast` or `deltacast-start: bundle` to
 * stderr (the agent's stdout is the session's alone); when it runs neither it writes
 * `deltacast-start: none node=VERSION` and exits 0. `withEnv` puts the agent's environment in front
 * of a command.
 */
export function autoStartScript(bundle: { cacheName: string; size: number } | undefined, withEnv: (command: string) => string, args?: string): string {
  const say = (what: string) => `echo ${shellQuote(ANNOUNCE_PREFIX + what)} >&2`;
  const tail = args === undefined ? '' : ` ${args}`;
  return [
    `if command -v deltacast >/dev/null 2>&1; then ${say('deltacast')}; exec ${withEnv(args === undefined ? 'deltacast agent' : `deltacast${tail}`)}; fi`,
    ...(bundle
      ? [
          `f="$HOME/${CACHE_DIR}/${bundle.cacheName}"`,
          // Unquoted $(wc ...): some wc pad the number with blanks.
          `if [ -f "$f" ] && [ $(wc -c < "$f") -eq ${bundle.size} ] 2>/dev/null; then ${say('bundle')}; exec ${withEnv(`node "$f"${tail}`)}; fi`,
        ]
      : []),
    `echo "${ANNOUNCE_PREFIX}none node=$(node --version 2>/dev/null)" >&2`,
  ].join('\n');
}

/** Oldest Node.js the bundle is built for (esbuild target node20). */
export const MIN_REMOTE_NODE_MAJOR = 20;
const CACHE_DIR = '.cache/deltacast';
const DEFAULT_REMOTE_TIMEOUT = 30_000;
const STDERR_LIMIT = 64 * 1024;
/** What a short remote command's stdout and stderr keep: their last 64 KiB each. */
const RUN_OUTPUT_LIMIT = 64 * 1024;

/** `kept` with `chunk` added, cut to its last RUN_OUTPUT_LIMIT characters (RemoteShell.run's outputs). */
export function keepTail(kept: string, chunk: Buffer): string {
  const text = kept + chunk.toString('utf8');
  return text.length > RUN_OUTPUT_LIMIT ? text.slice(-RUN_OUTPUT_LIMIT) : text;
}

/** Quotes one argument for a POSIX shell: single quotes, with each ' written as '\''. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Name of the cached bundle on the remote: agent-<first 16 hex digits of its SHA-256>.mjs, or for
 * the CLI's bundle (`kind` 'cli', a CommonJS file) cli-<...>.cjs.
 */
export function bundleCacheName(bundle: Uint8Array, kind: 'agent' | 'cli' = 'agent'): string {
  return `${kind}-${createHash('sha256').update(bundle).digest('hex').slice(0, 16)}.${kind === 'agent' ? 'mjs' : 'cjs'}`;
}

/** The agent bundle that ships with this package (dist/agent.bundle.mjs). */
export function defaultBundlePath(): string {
  // From dist/ssh/ the bundle is ../agent.bundle.mjs; when running from src/ssh/ (tests) it is
  // ../../dist/; inside the CLI's single-file bundle it sits beside it (./agent.bundle.mjs).
  const candidates = [
    new URL('../agent.bundle.mjs', import.meta.url),
    new URL('../../dist/agent.bundle.mjs', import.meta.url),
    new URL('./agent.bundle.mjs', import.meta.url),
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

/**
 * Starts the agent and returns its streams. Rejects with ConnectError 'NO_REMOTE_NODE' when the
 * remote has neither deltacast nor Node.js >= 20, 'CONNECT' when a channel cannot be opened or the
 * upload fails. If the agent exits with an error before writing anything, the returned readable
 * fails with a ConnectError carrying its stderr.
 */
export async function startRemoteAgent(on: Client | RemoteShell, options: RemoteAgentOptions = {}): Promise<RemoteAgentStreams> {
  const shell = 'run' in on && 'start' in on ? on : sshShell(on);
  const envPrefix = Object.entries(options.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ConnectError('CONNECT', `bad environment variable name ${JSON.stringify(k)}`, { name: k });
    return shellQuote(`${k}=${v}`);
  });
  const withEnv = (argv: string) => (envPrefix.length > 0 ? `env ${envPrefix.join(' ')} ${argv}` : argv);

  if (options.remoteCommand !== undefined) {
    return shell.start(withEnv(options.remoteCommand), 'command');
  }

  const program = options.program;
  const bundlePath = program?.bundlePath ?? options.bundlePath ?? defaultBundlePath();
  let bundle: Buffer | undefined;
  try {
    bundle = await readFile(bundlePath);
  } catch {
    bundle = undefined; // only needed if the remote lacks deltacast; reported then
  }
  const cacheName = bundle ? bundleCacheName(bundle, program ? 'cli' : 'agent') : undefined;
  const remotePath = cacheName ? `~/${CACHE_DIR}/${cacheName}` : undefined;
  const args = program ? ` ${program.args.map(shellQuote).join(' ')}` : '';

  const timeoutMs = options.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT;
  const script = autoStartScript(bundle && cacheName ? { cacheName, size: bundle.length } : undefined, withEnv, program ? program.args.map(shellQuote).join(' ') : undefined);
  const started = await shell.start(`sh -c ${shellQuote(script)}`, 'bundle', {
    deltacast: withEnv(program ? `deltacast${args}` : 'deltacast agent'),
    bundle: withEnv(remotePath ? `node ${remotePath}${args}` : 'node'),
  });
  const announced = await announcement(started, timeoutMs);
  if (announced.kind !== 'ended') return { ...started, kind: announced.kind };
  // It ran no agent: its streams end (or fail, if the login shell did: watchAgent keeps that quiet) with nothing to say.
  started.readable.resume();
  if (announced.node === undefined) {
    const text = started.stderr().trim();
    const exit = announced.exit;
    const status = exit === undefined ? '' : exit.code !== null ? ` (exit ${exit.code})` : ` (signal ${exit.signal})`;
    throw new ConnectError('CONNECT', `starting the agent on the remote failed${status}${text ? `: ${text}` : ''}`, { stderr: started.stderr(), exit });
  }

  const nodeVersion = announced.node;
  const major = /^v(\d+)\./.exec(nodeVersion);
  if (!major || Number(major[1]) < MIN_REMOTE_NODE_MAJOR) {
    throw new ConnectError(
      'NO_REMOTE_NODE',
      `the remote has no deltacast on its PATH and ${nodeVersion ? `its Node.js is ${nodeVersion}` : 'no Node.js'}; ` +
        `install deltacast there, or Node.js ${MIN_REMOTE_NODE_MAJOR} or later so the agent can be uploaded, ` +
        'or name the agent command with --remote-command',
      { node: nodeVersion },
    );
  }
  if (!bundle || !cacheName || !remotePath) {
    throw new ConnectError('CONNECT', `the remote lacks deltacast and the agent bundle ${bundlePath} is missing; build it with \`pnpm --filter @deltacast/transport build\``, { bundlePath });
  }
  await uploadBundle(shell, bundle, cacheName, timeoutMs * 4);
  return shell.start(withEnv(`node ${remotePath}${args}`), 'bundle');
}

/**
 * What an autoStartScript did, once it said so; a ConnectError if it said nothing for `timeoutMs`
 * (a login shell that hangs in its start-up files, a hung home directory).
 */
async function announcement(streams: RemoteAgentStreams, timeoutMs: number): Promise<Announcement> {
  if (!streams.announcement) throw new Error('the remote shell did not watch for the start script\'s announcement');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      streams.close?.();
      reject(new ConnectError('CONNECT', `the remote did not start the agent within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}${streams.stderr().trim() ? `: ${streams.stderr().trim()}` : ''}`, { timeoutMs, stderr: streams.stderr() }));
    }, timeoutMs);
  });
  try {
    return await Promise.race([streams.announcement, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function uploadBundle(shell: RemoteShell, bundle: Buffer, cacheName: string, timeoutMs: number): Promise<void> {
  // Written to a temporary name and renamed, so a cut connection never leaves a short file that a
  // later run would take for the agent (the size check alone would catch it, the rename makes it atomic).
  const final = `"$HOME/${CACHE_DIR}/${cacheName}"`;
  const tmp = `"$HOME/${CACHE_DIR}/${cacheName}.tmp.$$"`;
  const script = `mkdir -p "$HOME/${CACHE_DIR}" && cat > ${tmp} && mv -f ${tmp} ${final} || { rm -f ${tmp}; exit 1; }`;
  const result = await shell.run(`sh -c ${shellQuote(script)}`, timeoutMs, bundle);
  if (result.code !== 0) {
    throw new ConnectError('CONNECT', `uploading the ${cacheName.startsWith('cli-') ? 'deltacast' : 'agent'} bundle to ~/${CACHE_DIR}/${cacheName} failed (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`, { stderr: result.stderr });
  }
}

/**
 * Opens an exec channel. `watch` runs inside ssh2's callback, before any later packet is handled:
 * a command that fails at once may have its exit status in the same read as the channel's
 * confirmation, and an 'exit' emitted before listeners are attached would be lost.
 */
function openExec<T>(client: Client, command: string, watch: (channel: ClientChannel) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, (error, channel) => {
        if (error) reject(new ConnectError('CONNECT', `cannot run \`${command}\` on the remote: ${error.message}`, { command }));
        else resolve(watch(channel));
      });
    } catch (error) {
      reject(new ConnectError('CONNECT', `cannot run \`${command}\` on the remote: ${(error as Error).message}`, { command }));
    }
  });
}

/** Runs a short command, feeding it `input`, and collects its output and exit status, within `timeoutMs`. */
async function runRemote(client: Client, command: string, timeoutMs: number, input?: Uint8Array): Promise<RunResult> {
  const done = await openExec(
    client,
    command,
    (channel) =>
      new Promise<RunResult>((resolve, reject) => {
        const timer =
          timeoutMs > 0
            ? setTimeout(() => {
                reject(new ConnectError('CONNECT', `\`${command}\` did not finish on the remote within ${Math.round(timeoutMs / 1000)} s`, { command, timeoutMs }));
                channel.close();
              }, timeoutMs)
            : undefined;
        channel.on('close', () => clearTimeout(timer));
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        let signal: string | null = null;
        channel.on('data', (chunk: Buffer) => {
          stdout = keepTail(stdout, chunk);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr = keepTail(stderr, chunk);
        });
        channel.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? null;
        });
        channel.on('error', (error: Error) => reject(new ConnectError('CONNECT', `\`${command}\` failed on the remote: ${error.message}`, { command })));
        channel.on('close', () => resolve({ code, signal, stdout, stderr }));
        channel.end(input);
      }),
  );
  return done;
}

function execAgent(client: Client, command: string, kind: RemoteAgentKind, announced?: AnnouncedCommands): Promise<RemoteAgentStreams> {
  return openExec(client, command, (channel) =>
    watchAgent(
      {
        output: channel,
        input: channel,
        stderr: channel.stderr,
        events: channel,
        close: () => channel.close(),
      },
      command,
      kind,
      announced,
    ),
  );
}

/**
 * A running agent command, however it runs: its stdout (`output`, which ends), stdin (`input`),
 * stderr, and `events` that emit 'exit' (code, signal), 'close' and 'error': an exec channel
 * (these are the channel itself), or a child process of a remote shell command (rsh.ts).
 */
export interface AgentProcess {
  output: Readable;
  input: Writable;
  stderr: Readable;
  events: EventEmitter;
  /** Ends it from our side. */
  close(): void;
}

/**
 * The session's streams over a started agent. Its output is passed on once the exit status is
 * known: an agent that fails before writing anything fails the stream with a ConnectError (its
 * status and stderr), one that fails later with a TransportError (IO).
 *
 * With `announced`, the command is an autoStartScript: its line on stderr resolves `announcement`
 * (and is left out of `stderr()`), and from then on the agent is named by its command in
 * `announced`; an end without that line resolves it as ended.
 */
export function watchAgent(agent: AgentProcess, command: string, kind: RemoteAgentKind, announced?: AnnouncedCommands): RemoteAgentStreams {
  let stderr = '';
  let announce: ((what: Announcement) => void) | undefined;
  const announcement = announced ? new Promise<Announcement>((resolve) => (announce = resolve)) : undefined;
  agent.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_LIMIT);
    if (!announce || !announced) return;
    const line = ANNOUNCE_LINE.exec(stderr);
    if (!line) return;
    stderr = stderr.slice(0, line.index) + stderr.slice(line.index + line[0].length);
    const said = line[1] === 'deltacast' || line[1] === 'bundle' ? line[1] : undefined;
    if (said) {
      command = announced[said];
      readable.off('error', quiet);
    }
    announce(said ? { kind: said } : { kind: 'ended', node: line[2].trim() });
    announce = undefined;
  });

  // stdout goes through a PassThrough so that its end can wait for the exit status: a clean end of
  // input must not be reported before we know the agent did not fail at start-up.
  const readable = new PassThrough();
  // Until the start script has said what it runs, an end of it is what `announcement` reports, not
  // an error of the stream (whose reader is not attached yet).
  const quiet = (): void => {};
  if (announce) readable.on('error', quiet);
  let sawData = false;
  let ended = false;
  let closed = false;
  let closedByUs = false;
  let settled = false;
  let exit: { code: number | null; signal: string | null } | undefined;
  agent.output.on('data', () => {
    sawData = true;
  });
  agent.output.pipe(readable, { end: false });
  const settle = () => {
    if (settled || !ended || (exit === undefined && !closed)) return;
    settled = true;
    if (readable.destroyed) return;
    const failed = !closedByUs && (exit !== undefined ? exit.code !== 0 : !sawData);
    if (!failed) return void readable.end();
    // Deferred: a command that fails at once gets here before the caller has attached listeners,
    // and the last of its stderr may still be on its way.
    setImmediate(() => {
      const status = exit === undefined ? 'closed without an exit status' : exit.code !== null ? `exited with status ${exit.code}` : `was killed by signal ${exit.signal}`;
      const text = stderr.trim();
      const message = `remote agent \`${command}\` ${status}${sawData ? '' : ' before the session started'}${text ? `: ${text}` : ''}`;
      readable.destroy(sawData ? new TransportError('IO', message, { command, stderr }) : new ConnectError('CONNECT', message, { command, stderr }));
    });
  };
  let outputEnded!: () => void;
  const outputDone = new Promise<void>((resolve) => (outputEnded = resolve));
  agent.output.on('end', () => {
    ended = true;
    outputEnded();
    settle();
  });
  agent.events.on('exit', (code: number | null, signal?: string | null) => {
    exit = { code, signal: signal ?? null };
    settle();
  });
  let exited!: (status: { code: number | null; signal: string | null }) => void;
  const exitStatus = new Promise<{ code: number | null; signal: string | null }>((resolve) => (exited = resolve));
  agent.events.on('close', () => {
    exited(exit ?? { code: null, signal: null });
    // Ended without saying what it ran (stderr is read to its end by now).
    announce?.({ kind: 'ended', node: undefined, exit });
    announce = undefined;
    closed = true;
    ended = true; // emitted only after the output ended (or was destroyed)
    outputEnded();
    settle();
  });
  agent.events.on('error', (error: Error) => readable.destroy(new TransportError('IO', `remote agent channel: ${error.message}`, { command })));

  return {
    readable,
    writable: agent.input,
    outputEnded: outputDone,
    close: () => {
      closedByUs = true;
      agent.close();
    },
    kind,
    get command() {
      return command;
    },
    stderr: () => stderr,
    announcement,
    stderrStream: agent.stderr,
    exited: exitStatus,
  };
}
