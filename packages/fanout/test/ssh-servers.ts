/**
 * SSH destinations for fan-out tests: in-process ssh2 servers whose exec channels run the agent
 * (in this process, or as a child process the test can kill), and an ssh config naming each server
 * as a Host, so destinations read `mem1:/some/path`.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { serveAgent } from '@deltacast/transport';
import { startSsh2Server, type Ssh2Server, type Ssh2ServerOptions } from '../../transport/test/helpers/ssh2-server.js';
import { requireBuiltAgent } from '../../transport/test/helpers/tree.js';

/** An accepted exec channel (ssh2's ServerChannel; ssh2 is a dependency of the transport, not of this package). */
type ServerChannel = Parameters<NonNullable<Ssh2ServerOptions['onExec']>>[1];

export interface AgentServer {
  server: Ssh2Server;
  /** known_hosts holding this server's key. */
  knownHostsFile: string;
  /** Sessions served so far. */
  sessions: number;
  /** Set to kill the next sessions' agents (SIGKILL) after this many bytes of input; undefined serves normally. */
  killAfterBytes: number | undefined;
  /** Input bytes each killed session had received when its agent was killed. */
  kills: number[];
}

/** Serves every exec request with the agent in this process. */
function serveInProcess(channel: ServerChannel): void {
  serveAgent({ readable: channel, writable: channel }).then(
    () => {
      channel.exit(0);
      channel.end();
    },
    (error: Error) => {
      channel.stderr.write(`agent: ${error.message}\n`);
      channel.exit(1);
      channel.end();
    },
  );
}

/** Runs the built agent as a child process on the channel and SIGKILLs it once `limit` input bytes went its way. */
function serveKillable(channel: ServerChannel, limit: number, onKill: (bytes: number) => void): void {
  const child = spawn(process.execPath, [requireBuiltAgent()], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  child.stderr.resume();
  let bytes = 0;
  let killed = false;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (killed) return callback();
      if (bytes > limit) {
        killed = true;
        child.kill('SIGKILL');
        onKill(bytes);
        return callback();
      }
      callback(null, chunk);
    },
  });
  channel.pipe(counter).pipe(child.stdin);
  child.stdout.pipe(channel, { end: false });
  child.on('exit', (code, signal) => {
    if (signal) channel.exit(signal.replace(/^SIG/, ''), false, 'killed');
    else channel.exit(code ?? 1);
    channel.end();
  });
}

export async function startAgentServer(): Promise<AgentServer> {
  const state: AgentServer = {
    server: undefined as unknown as Ssh2Server,
    knownHostsFile: '',
    sessions: 0,
    killAfterBytes: undefined,
    kills: [],
  };
  state.server = await startSsh2Server({
    onExec: (_command, channel) => {
      state.sessions++;
      if (state.killAfterBytes === undefined) serveInProcess(channel);
      else serveKillable(channel, state.killAfterBytes, (bytes) => state.kills.push(bytes));
    },
  });
  state.knownHostsFile = join(state.server.dir, 'fanout_known_hosts');
  writeFileSync(state.knownHostsFile, `${state.server.hostKeyLine}\n`);
  return state;
}

export interface HostEntry {
  alias: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** ProxyJump for this host. */
  proxyJump?: string;
}

/** An ssh config with one Host block per entry, all on 127.0.0.1. */
export function writeSshConfig(path: string, hosts: HostEntry[]): string {
  const text = hosts
    .map((h) =>
      [
        `Host ${h.alias}`,
        '  HostName 127.0.0.1',
        `  Port ${h.port}`,
        `  User ${h.user}`,
        `  IdentityFile ${h.identityFile}`,
        `  UserKnownHostsFile ${h.knownHostsFile}`,
        ...(h.proxyJump !== undefined ? [`  ProxyJump ${h.proxyJump}`] : []),
        '',
      ].join('\n'),
    )
    .join('\n');
  writeFileSync(path, text);
  return path;
}

export function hostEntry(alias: string, s: AgentServer): HostEntry {
  return { alias, port: s.server.port, user: 'tester', identityFile: s.server.identityFile, knownHostsFile: s.knownHostsFile };
}
