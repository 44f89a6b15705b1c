/**
 * A remote shell command in place of the built-in SSH client, as rsync's `-e, --rsh`: `ssh` (or a
 * wrapper taking ssh's arguments) runs every remote command, `RSH [options] host COMMAND`, one
 * process per command. Whatever the system's ssh supports then works (certificates, security keys,
 * ControlMaster, GSSAPI, Match exec), with its own host key checks and prompts.
 */
import { spawn } from 'node:child_process';
import { ConnectError, PathError } from '../errors.js';
import { keepTail, watchAgent, type AnnouncedCommands, type RemoteAgentKind, type RemoteAgentStreams, type RemoteShell, type RunResult } from './remote-agent.js';

export interface RshOptions {
  /** The command as written (`ssh`, `ssh -p 2222 -o "Compression yes"`), split into words by splitCommand. */
  command: string;
  host: string;
  user?: string;
  port?: number;
  /** -i: passed on as ssh's -i. */
  identityFile?: string;
  /** -F: passed on as ssh's -F. */
  configFile?: string;
  /** -J: passed on as ssh's -J. */
  jumpHosts?: string;
  /** --accept-new-host-keys: passed on as `-o StrictHostKeyChecking=accept-new`. */
  acceptNewHostKeys?: boolean;
  /** Passed on as `-o UserKnownHostsFile=...`. */
  knownHostsFiles?: string[];
  /** Passed on as `-o ConnectTimeout=...` (whole seconds, rounded up). */
  connectTimeoutMs?: number;
  /** Passed on as `-o ServerAliveInterval=...` (whole seconds, rounded up). */
  keepaliveIntervalMs?: number;
}

/**
 * Splits a command line into words as a POSIX shell does, without expanding anything: blanks
 * separate words; single quotes keep everything up to the next one; double quotes keep everything
 * but `\"`, `\\`, `\$` and `` \` ``, which lose the backslash; a backslash elsewhere keeps the next
 * character. Throws ConnectError('CONFIG') for an unterminated quote or an empty command.
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new ConnectError('CONFIG', `remote shell ${JSON.stringify(text)}: unterminated '`, { command: text });
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1])) j++;
        word += text[j];
      }
      if (j >= text.length) throw new ConnectError('CONFIG', `remote shell ${JSON.stringify(text)}: unterminated "`, { command: text });
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new ConnectError('CONFIG', 'the remote shell command is empty', { command: text });
  return words;
}

/** The argv that runs a remote command: the shell's words, ssh's options from ours, the host (the command goes last). */
export function rshArgv(options: RshOptions): string[] {
  if (options.host.startsWith('-')) {
    throw new PathError('PATH_INVALID', `host ${JSON.stringify(options.host)} begins with "-", which the remote shell would take for an option`, { host: options.host });
  }
  const argv = splitCommand(options.command);
  if (options.user !== undefined) argv.push('-l', options.user);
  if (options.port !== undefined) argv.push('-p', String(options.port));
  if (options.identityFile !== undefined) argv.push('-i', options.identityFile);
  if (options.configFile !== undefined) argv.push('-F', options.configFile);
  if (options.jumpHosts !== undefined) argv.push('-J', options.jumpHosts);
  if (options.acceptNewHostKeys) argv.push('-o', 'StrictHostKeyChecking=accept-new');
  if (options.knownHostsFiles?.length) argv.push('-o', `UserKnownHostsFile=${options.knownHostsFiles.map((f) => (/\s/.test(f) ? `"${f}"` : f)).join(' ')}`);
  if (options.connectTimeoutMs) argv.push('-o', `ConnectTimeout=${Math.ceil(options.connectTimeoutMs / 1000)}`);
  if (options.keepaliveIntervalMs) argv.push('-o', `ServerAliveInterval=${Math.ceil(options.keepaliveIntervalMs / 1000)}`);
  argv.push(options.host);
  return argv;
}

/** A RemoteShell that runs each command as a process: `argv` (from rshArgv) and the command line. */
export function rshShell(argv: readonly string[]): RemoteShell {
  const [program, ...args] = argv;
  const launch = (command: string) => spawn(program, [...args, command], { stdio: ['pipe', 'pipe', 'pipe'] });
  const cannot = (command: string, error: Error) =>
    new ConnectError('CONNECT', `cannot run the remote shell \`${argv.join(' ')}\`: ${error.message}`, { command, rsh: argv.join(' ') });
  return {
    run: (command, timeoutMs, input) =>
      new Promise<RunResult>((resolve, reject) => {
        const child = launch(command);
        let stdout = '';
        let stderr = '';
        const timer =
          timeoutMs > 0
            ? setTimeout(() => {
                reject(new ConnectError('CONNECT', `\`${command}\` did not finish on the remote within ${Math.round(timeoutMs / 1000)} s`, { command, timeoutMs }));
                child.kill('SIGTERM');
              }, timeoutMs)
            : undefined;
        child.stdout.on('data', (chunk: Buffer) => {
          stdout = keepTail(stdout, chunk);
        });
        child.stderr.on('data', (chunk: Buffer) => {
          stderr = keepTail(stderr, chunk);
        });
        child.stdin.on('error', () => {}); // a command that exits without reading its input
        child.on('error', (error) => {
          clearTimeout(timer);
          reject(cannot(command, error));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
        child.stdin.end(input);
      }),
    start: (command: string, kind: RemoteAgentKind, announced?: AnnouncedCommands) =>
      new Promise<RemoteAgentStreams>((resolve, reject) => {
        const child = launch(command);
        child.once('error', (error) => reject(cannot(command, error)));
        child.once('spawn', () => {
          child.stdin.on('error', () => {}); // the agent gone: reported by its exit status on the output side
          resolve(
            watchAgent(
              {
                output: child.stdout,
                input: child.stdin,
                stderr: child.stderr,
                events: child,
                close: () => {
                  child.stdin.end();
                  child.kill('SIGTERM');
                },
              },
              command,
              kind,
              announced,
            ),
          );
        });
      }),
  };
}
