/**
 * Local destinations: the same agent, in this process (over a pair of in-memory pipes) or in a child
 * process (`node agent-main.js`, so patching runs on another core while this one computes deltas).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { serveAgent, type AgentOptions } from './agent.js';
import type { ByteStreams } from './wire.js';

/** An agent served in this process; `done` settles when its session ends. */
export function inProcessAgent(options: AgentOptions = {}): ByteStreams & { done: Promise<void> } {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const done = serveAgent({ readable: toAgent, writable: fromAgent, close: () => fromAgent.end() }, options);
  done.catch(() => {});
  return {
    readable: fromAgent,
    writable: toAgent,
    close: () => {
      toAgent.end();
    },
    done,
  };
}

/**
 * Path of the agent entry point that runs with plain `node`: dist/agent-main.js beside this module,
 * or, inside the CLI's single-file bundle, the agent bundle copied beside it.
 */
export function agentEntryPath(): string {
  const candidates = [new URL('./agent-main.js', import.meta.url), new URL('./agent.bundle.mjs', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

/**
 * This process's environment for a local agent, less NODE_EXTRA_CA_CERTS: Node 20 reads that file
 * into a certificate store as it starts whenever the variable is set (~90 ms here), and the agent
 * makes no TLS connection (it runs no user command either: a local destination's hooks run from
 * this process).
 */
export function agentEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.NODE_EXTRA_CA_CERTS === undefined) return env;
  const { NODE_EXTRA_CA_CERTS: _unused, ...rest } = env;
  return rest;
}

/**
 * An agent in a child process speaking on its stdin/stdout; stderr is passed through. `exited`
 * settles once the process has gone (after `close`, which kills it if it is still running).
 */
export function childProcessAgent(command: string[] = [process.execPath, agentEntryPath()]): ByteStreams & { exited: Promise<void> } {
  const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: agentEnvironment() });
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve()); // not started: nothing to wait for
  });
  return {
    readable: child.stdout,
    writable: child.stdin,
    close: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
    exited,
  };
}
