/**
 * Against the real OpenSSH server: connection with identity and known_hosts, exec, and the three
 * ways the remote agent starts (explicit command, `deltacast` on PATH, uploaded bundle).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import { ConnectError } from '../src/errors.js';
import { connectSsh } from '../src/ssh/connect.js';
import { AgentClient } from '../src/agent-client.js';
import { bundleCacheName, defaultBundlePath, sshShell, startRemoteAgent, type RemoteAgentStreams, type RemoteShell } from '../src/ssh/remote-agent.js';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from './helpers/sshd.js';
import { requireBuiltAgent } from './helpers/tree.js';

function exec(client: Client, command: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(error);
      let stdout = '';
      let code: number | null = null;
      channel.on('data', (c: Buffer) => (stdout += c.toString()));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ code, stdout }));
      channel.stderr.resume();
    });
  });
}

function readAll(readable: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    readable.on('data', (c: Buffer) => chunks.push(c));
    readable.on('end', () => resolve(Buffer.concat(chunks).toString()));
    readable.on('error', reject);
  });
}

/** Sends `text`, ends our side and returns everything the agent wrote back. */
async function roundTrip(streams: RemoteAgentStreams, text: string): Promise<string> {
  const reply = readAll(streams.readable);
  streams.writable.end(text);
  return reply;
}

describe.skipIf(!hasSshd)(`OpenSSH server ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  let client: Client;
  let bundlePath: string;
  let bundleName: string;

  beforeAll(async () => {
    sshd = await startSshd();
    client = await connectSsh({
      host: sshd.host,
      port: sshd.port,
      identityFile: sshd.identityFile,
      knownHostsFiles: [sshd.knownHostsFile],
      configFile: 'none',
      agentSocket: false,
    });
    // A stand-in agent: echoes stdin, upper-cased so the test can tell it ran and not `cat`.
    // The nonce makes its hash, and so its cache name, unique to this run.
    bundlePath = join(sshd.dir, 'test-agent.mjs');
    writeFileSync(
      bundlePath,
      `// ${randomBytes(8).toString('hex')}\nprocess.stdin.on('data', (c) => process.stdout.write(c.toString().toUpperCase()));\n`,
    );
    bundleName = bundleCacheName(readFileSync(bundlePath));
  });

  afterAll(async () => {
    client?.end();
    await sshd?.stop();
  });

  it('connects with an identity file and known_hosts, and runs a command', async () => {
    expect(await exec(client, 'echo hi')).toEqual({ code: 0, stdout: 'hi\n' });
  });

  it('refuses the server when known_hosts holds another key for it', async () => {
    const file = join(sshd.dir, 'other_known_hosts');
    writeFileSync(file, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const error = await connectSsh({ host: sshd.host, port: sshd.port, identityFile: sshd.identityFile, knownHostsFiles: [file], configFile: 'none', agentSocket: false }).then(
      (c) => {
        c.end();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe('HOST_KEY_MISMATCH');
  });

  it('startRemoteAgent with an explicit command gives the exec channel as ByteStreams', async () => {
    const streams = await startRemoteAgent(client, { remoteCommand: 'cat' });
    expect(streams.kind).toBe('command');
    expect(await roundTrip(streams, 'through cat\n')).toBe('through cat\n');
  });

  it('passes env and quotes values for the remote shell', async () => {
    const streams = await startRemoteAgent(client, { remoteCommand: 'sh -c \'printf "%s" "$GREETING"; cat\'', env: { GREETING: "it's $HOME `x`" } });
    expect(await roundTrip(streams, '!')).toBe("it's $HOME `x`!");
  });

  it('reports the stderr of an agent that fails at start-up', async () => {
    const streams = await startRemoteAgent(client, { remoteCommand: 'echo "agent: cannot start" >&2; exit 3' });
    const error = await readAll(streams.readable).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).message).toContain('exited with status 3 before the session started: agent: cannot start');
  });

  it('ends a session once the agent has closed its output, without waiting for its process to exit', async () => {
    const root = join(sshd.dir, `root-${randomBytes(4).toString('hex')}`);
    mkdirSync(root);
    const marker = join(sshd.dir, `exited-${randomBytes(4).toString('hex')}`);
    // The agent, then a process that lives on with its output closed (as an agent freeing a large
    // file's old blocks at its last close does), then a mark that it went on.
    const streams = await startRemoteAgent(client, {
      remoteCommand: `${process.execPath} ${requireBuiltAgent()}; exec >/dev/null 2>&1; sleep 3; touch ${marker}`,
    });
    const agent = await AgentClient.connect(streams, { root });
    await agent.mkdir('made', 0o755);
    await agent.close();
    expect(existsSync(marker)).toBe(false);
    expect(statSync(join(root, 'made')).isDirectory()).toBe(true);
    expect(readdirSync(root)).toEqual(['made']); // the lock is gone: the agent released it before closing its output
  });

  it('finds the agent with one remote command: the probe and the start are one script', async () => {
    const cached = join(sshd.home, '.cache', 'deltacast', bundleName);
    rmSync(cached, { force: true });
    await roundTrip(await startRemoteAgent(client, { bundlePath }), 'upload'); // not there: probe, upload, start
    const base = sshShell(client);
    const commands: string[] = [];
    const shell: RemoteShell = {
      run: (command, timeoutMs, input) => (commands.push(command), base.run(command, timeoutMs, input)),
      start: (command, kind, announced) => (commands.push(command), base.start(command, kind, announced)),
    };
    const streams = await startRemoteAgent(shell, { bundlePath });
    expect(commands).toHaveLength(1);
    expect(streams.kind).toBe('bundle');
    expect(streams.command).toBe(`node ~/.cache/deltacast/${bundleName}`);
    expect(await roundTrip(streams, 'one command')).toBe('ONE COMMAND');
    expect(streams.stderr()).toBe(''); // the script's announcement is not the agent's stderr
  });

  it('uploads the bundle once into ~/.cache/deltacast when the remote lacks deltacast, then reuses it', async () => {
    rmSync(join(sshd.home, '.cache', 'deltacast'), { recursive: true, force: true });
    const cacheDir = join(sshd.home, '.cache', 'deltacast');
    const cached = join(cacheDir, bundleName);
    expect(existsSync(cached)).toBe(false);

    const first = await startRemoteAgent(client, { bundlePath });
    expect(first.kind).toBe('bundle');
    expect(first.command).toBe(`node ~/.cache/deltacast/${bundleName}`);
    expect(await roundTrip(first, 'first run')).toBe('FIRST RUN');
    expect(readFileSync(cached)).toEqual(readFileSync(bundlePath));
    expect(readdirSync(cacheDir)).toEqual([bundleName]); // no temporary file left behind

    // Same size: kept. A new upload would arrive through mv and so change the inode.
    const inode = statSync(cached).ino;
    const second = await startRemoteAgent(client, { bundlePath });
    expect(second.command).toBe(`node ~/.cache/deltacast/${bundleName}`);
    expect(await roundTrip(second, 'second run')).toBe('SECOND RUN');
    expect(statSync(cached).ino).toBe(inode);

    writeFileSync(cached, 'truncated'); // wrong size: replaced
    const third = await startRemoteAgent(client, { bundlePath });
    expect(await roundTrip(third, 'third run')).toBe('THIRD RUN');
    expect(readFileSync(cached)).toEqual(readFileSync(bundlePath));
  });

  it('runs `deltacast agent` when deltacast is on the remote PATH', async () => {
    const fake = join(sshd.bin, 'deltacast');
    writeFileSync(fake, '#!/bin/sh\n[ "$1" = agent ] || exit 64\nprintf "deltacast agent: "\nexec cat\n');
    chmodSync(fake, 0o755);
    try {
      const streams = await startRemoteAgent(client, { bundlePath, env: { DELTACAST_TEST: 'x y' } });
      expect(streams.kind).toBe('deltacast');
      expect(streams.command).toBe("env 'DELTACAST_TEST=x y' deltacast agent");
      expect(await roundTrip(streams, 'hello')).toBe('deltacast agent: hello');
    } finally {
      rmSync(fake);
    }
  });

  it('refuses with NO_REMOTE_NODE when the remote node is too old', async () => {
    rmSync(join(sshd.home, '.cache', 'deltacast'), { recursive: true, force: true });
    const fake = join(sshd.bin, 'node');
    writeFileSync(fake, '#!/bin/sh\necho v18.19.0\n');
    chmodSync(fake, 0o755);
    try {
      const error = await startRemoteAgent(client, { bundlePath }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe('NO_REMOTE_NODE');
      expect((error as ConnectError).message).toContain('v18.19.0');
    } finally {
      rmSync(fake);
    }
  });

  // The real bundle comes from `pnpm build` (dist/agent.bundle.mjs); without a build there is nothing to upload.
  it.skipIf(!existsSync(defaultBundlePath()))('uploads the built agent bundle, which answers a hello over SSH', async () => {
    const streams = await startRemoteAgent(client);
    expect(streams.kind).toBe('bundle');
    const root = join(sshd.home, 'site');
    const agent = await AgentClient.connect(streams, { root });
    try {
      expect(agent.info?.root).toBe(root);
      expect(await agent.list()).toEqual([]);
    } finally {
      await agent.close();
    }
  });

  it.skipIf(!existsSync(defaultBundlePath()))('a cached bundle run by a Node.js older than 20 says so before the session starts', async () => {
    await roundTrip(await startRemoteAgent(client), '').catch(() => {}); // cached (an agent given no hello fails: no matter)
    // The real node, made to report 18 before the bundle runs.
    const old = join(sshd.dir, 'node-18.mjs');
    writeFileSync(old, "Object.defineProperty(process, 'version', { value: 'v18.19.0' }); Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '18.19.0' } });\n");
    const fake = join(sshd.bin, 'node');
    writeFileSync(fake, `#!/bin/sh\nexec ${process.execPath} --import ${old} "$@"\n`);
    chmodSync(fake, 0o755);
    try {
      const streams = await startRemoteAgent(client);
      expect(streams.kind).toBe('bundle');
      const error = await roundTrip(streams, '').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toContain('exited with status 1 before the session started: deltacast agent: Node.js v18.19.0 is too old; the agent needs Node.js 20 or later');
    } finally {
      rmSync(fake);
    }
  });
});
