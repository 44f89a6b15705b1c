import { execFileSync, spawn } from 'node:child_process';
import { generateSshKeyPair } from '../src/ssh/keys.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import type { Client } from 'ssh2';
import { ConnectError } from '../src/errors.js';
import { connectSsh, type ConnectOptions } from '../src/ssh/connect.js';
import { startRemoteAgent } from '../src/ssh/remote-agent.js';
import { startSsh2Server, type Ssh2Server } from './helpers/ssh2-server.js';

let server: Ssh2Server;

const hasAgent = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v ssh-agent && command -v ssh-add'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  server = await startSsh2Server({
    onExec: (command, channel) => {
      if (command === 'echo-stdin') {
        channel.pipe(channel); // echo until the client ends its side
        channel.on('end', () => {
          channel.exit(0);
          channel.end();
        });
      } else {
        channel.stderr.write(`no such command: ${command}\n`);
        channel.exit(127);
        channel.end();
      }
    },
  });
});
afterAll(() => server.close());

function options(extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    host: server.host,
    port: server.port,
    user: 'tester',
    identityFile: server.identityFile,
    configFile: 'none',
    agentSocket: false,
    knownHostsFiles: [server.knownHostsFile],
    connectTimeoutMs: 10_000,
    ...extra,
  };
}

async function connectError(opts: ConnectOptions): Promise<ConnectError> {
  try {
    const client = await connectSsh(opts);
    client.end();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error('connectSsh succeeded');
}

describe('connectSsh against an in-process ssh2 server', () => {
  it('refuses an unknown host key and says how to accept it', async () => {
    const error = await connectError(options());
    expect(error.code).toBe('HOST_KEY_UNKNOWN');
    expect(error.message).toContain('--accept-new-host-keys');
    expect(error.message).toContain(`[127.0.0.1]:${server.port}`);
    expect(existsSync(server.knownHostsFile)).toBe(false);
  });

  it('learns an unknown key with acceptNewHostKeys; the next connection needs no flag', async () => {
    const learned = join(server.dir, 'learned_known_hosts');
    const first = await connectSsh(options({ knownHostsFiles: [learned], acceptNewHostKeys: true }));
    first.end();
    expect(readFileSync(learned, 'utf8')).toContain(server.hostKey.toString('base64'));
    const second = await connectSsh(options({ knownHostsFiles: [learned] }));
    second.end();
  });

  it("learns an unknown key when the config says StrictHostKeyChecking accept-new (or no); false refuses all the same", async () => {
    for (const value of ['accept-new', 'no']) {
      const learned = join(server.dir, `config_learned_known_hosts_${value}`);
      const config = join(server.dir, `config_strict_${value}`);
      writeFileSync(config, `Host *\n  StrictHostKeyChecking ${value}\n`);
      const refused = await connectError(options({ knownHostsFiles: [learned], configFile: config, acceptNewHostKeys: false }));
      expect(refused.code).toBe('HOST_KEY_UNKNOWN');
      expect(existsSync(learned)).toBe(false);
      const first = await connectSsh(options({ knownHostsFiles: [learned], configFile: config }));
      first.end();
      expect(readFileSync(learned, 'utf8')).toContain(server.hostKey.toString('base64'));
    }
    const yes = join(server.dir, 'config_strict_yes');
    writeFileSync(yes, 'Host *\n  StrictHostKeyChecking yes\n');
    expect((await connectError(options({ knownHostsFiles: [join(server.dir, 'never_learned')], configFile: yes }))).code).toBe('HOST_KEY_UNKNOWN');
    expect(existsSync(join(server.dir, 'never_learned'))).toBe(false);
  });

  it('refuses a changed host key even with StrictHostKeyChecking no in the config', async () => {
    const other = ssh2.utils.parseKey(generateSshKeyPair('ed25519').public);
    if (other instanceof Error || Array.isArray(other)) throw new Error('key');
    const file = join(server.dir, 'changed_known_hosts_config');
    writeFileSync(file, `[127.0.0.1]:${server.port} ssh-ed25519 ${other.getPublicSSH().toString('base64')}\n`);
    const config = join(server.dir, 'config_strict_no_changed');
    writeFileSync(config, 'Host *\n  StrictHostKeyChecking no\n');
    const error = await connectError(options({ knownHostsFiles: [file], configFile: config }));
    expect(error.code).toBe('HOST_KEY_MISMATCH');
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('refuses a changed host key even with acceptNewHostKeys', async () => {
    const other = ssh2.utils.parseKey(generateSshKeyPair('ed25519').public);
    if (other instanceof Error || Array.isArray(other)) throw new Error('key');
    const file = join(server.dir, 'changed_known_hosts');
    writeFileSync(file, `[127.0.0.1]:${server.port} ssh-ed25519 ${other.getPublicSSH().toString('base64')}\n`);
    const error = await connectError(options({ knownHostsFiles: [file], acceptNewHostKeys: true }));
    expect(error.code).toBe('HOST_KEY_MISMATCH');
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('refuses a revoked host key', async () => {
    const file = join(server.dir, 'revoked_known_hosts');
    writeFileSync(file, `${server.hostKeyLine}\n@revoked * ssh-ed25519 ${server.hostKey.toString('base64')}\n`);
    expect((await connectError(options({ knownHostsFiles: [file] }))).code).toBe('HOST_KEY_MISMATCH');
  });

  it('prefers the host key type on file, so a second key of another type is not taken for a change', async () => {
    const file = join(server.dir, 'ecdsa_known_hosts');
    writeFileSync(file, `[127.0.0.1]:${server.port} ecdsa-sha2-nistp256 ${server.ecdsaHostKey.toString('base64')}\n`);
    const client = await connectSsh(options({ knownHostsFiles: [file] }));
    client.end();
  });

  describe('with the host key on file', () => {
    let knownHostsFiles: string[];
    beforeAll(() => {
      const file = join(server.dir, 'good_known_hosts');
      writeFileSync(file, `${server.hostKeyLine}\n`);
      knownHostsFiles = [file];
    });

    it('fails with AUTH for a key the server does not accept, naming what was tried', async () => {
      const wrong = join(server.dir, 'wrong_key');
      writeFileSync(wrong, generateSshKeyPair('ed25519').private, { mode: 0o600 });
      const error = await connectError(options({ knownHostsFiles, identityFile: wrong }));
      expect(error.code).toBe('AUTH');
      expect(error.message).toContain(wrong);
    });

    it('skips encrypted and missing identities and says so', async () => {
      const encrypted = join(server.dir, 'encrypted_key');
      writeFileSync(encrypted, generateSshKeyPair('ed25519', { passphrase: 'secret', cipher: 'aes256-ctr', rounds: 1 }).private);
      const noCredentials = await connectError(options({ knownHostsFiles, identityFile: encrypted }));
      expect(noCredentials.code).toBe('AUTH');
      expect(noCredentials.message).toContain('encrypted');

      const config = join(server.dir, 'config_with_fallback');
      writeFileSync(config, `Host *\n  IdentityFile ${join(server.dir, 'missing_key')}\n  IdentityFile ${server.identityFile}\n`);
      const client = await connectSsh(options({ knownHostsFiles, identityFile: encrypted, configFile: config }));
      client.end();
    });

    it('fails with CONNECT when nothing listens', async () => {
      const probe = await startSsh2Server();
      const port = probe.port;
      await probe.close();
      const error = await connectError(options({ knownHostsFiles, port }));
      expect(error.code).toBe('CONNECT');
      expect(error.message).toContain('ECONNREFUSED');
    });

    it('fails with CONNECT when the server never answers within connectTimeoutMs', async () => {
      const sockets: Socket[] = [];
      const silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const error = await connectError(options({ knownHostsFiles, port: (silent.address() as AddressInfo).port, connectTimeoutMs: 200 }));
        expect(error.code).toBe('CONNECT');
        expect(error.message).toContain('timed out');
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });

    it("takes the limit from the config's ConnectTimeout when the caller sets none; the caller's wins", async () => {
      const sockets: Socket[] = [];
      const silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const config = join(server.dir, 'config_connect_timeout');
      writeFileSync(config, 'Host *\n  ConnectTimeout 1\n');
      try {
        const port = (silent.address() as AddressInfo).port;
        const fromConfig = await connectError(options({ knownHostsFiles, port, configFile: config, connectTimeoutMs: undefined }));
        expect(fromConfig.code).toBe('CONNECT');
        expect(fromConfig.message).toContain('timed out connecting to 127.0.0.1');
        expect(fromConfig.message).toContain('after 1000 ms');
        const explicit = await connectError(options({ knownHostsFiles, port, configFile: config, connectTimeoutMs: 300 }));
        expect(explicit.message).toContain('after 300 ms');
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });

    it('ends a connection whose peer falls silent after ServerAliveInterval x ServerAliveCountMax from the config', async () => {
      // A relay to the server that stops passing bytes on when told: the peer is there, but dumb.
      let frozen = false;
      const sockets: Socket[] = [];
      const relay = createServer((inbound) => {
        const outbound = createConnection({ host: '127.0.0.1', port: server.port });
        sockets.push(inbound, outbound);
        inbound.on('data', (chunk) => void (frozen || outbound.write(chunk)));
        outbound.on('data', (chunk) => void (frozen || inbound.write(chunk)));
        inbound.on('error', () => {});
        outbound.on('error', () => {});
      });
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      const config = join(server.dir, 'config_keepalive');
      writeFileSync(config, 'Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 1\n');
      try {
        const port = (relay.address() as AddressInfo).port;
        const relayKnownHosts = join(server.dir, 'relay_known_hosts');
        writeFileSync(relayKnownHosts, `[127.0.0.1]:${port} ssh-ed25519 ${server.hostKey.toString('base64')}\n`);
        const client = await connectSsh(options({ knownHostsFiles: [relayKnownHosts], port, configFile: config }));
        const ended = new Promise<Error | undefined>((resolve) => {
          client.on('error', (error) => resolve(error));
          client.on('close', () => resolve(undefined));
        });
        frozen = true;
        const error = await ended;
        expect(error?.message).toMatch(/keepalive/i);
      } finally {
        for (const s of sockets) s.destroy();
        relay.close();
      }
    });

    it.skipIf(!hasAgent)('authenticates with a key held by ssh-agent, before any identity file', async () => {
      const socket = join(server.dir, 'agent.sock');
      const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      try {
        for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10));
        execFileSync('ssh-add', [server.identityFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
        const wrong = join(server.dir, 'wrong_key_for_agent_test');
        writeFileSync(wrong, generateSshKeyPair('ed25519').private, { mode: 0o600 });
        server.offeredKeys.length = 0;
        const client = await connectSsh(options({ knownHostsFiles, identityFile: wrong, agentSocket: socket }));
        client.end();
        const parsed = ssh2.utils.parseKey(readFileSync(server.identityFile));
        if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('identity');
        const agentKey = parsed.getPublicSSH().toString('base64');
        expect(server.offeredKeys).toEqual([agentKey]); // the agent's key first, so the wrong file was never needed
      } finally {
        agent.kill();
      }
    });

    it('takes host, port and user from the config; explicit options win', async () => {
      const config = join(server.dir, 'config_alias');
      writeFileSync(config, `Host box\n  HostName 127.0.0.1\n  Port ${server.port}\n  User from-config\n  IdentityFile ${server.identityFile}\n`);
      const client = await connectSsh({ host: 'box', configFile: config, agentSocket: false, knownHostsFiles });
      client.end();
      const wrongPort = await connectError({ host: 'box', port: 1, configFile: config, agentSocket: false, knownHostsFiles });
      expect(wrongPort.code).toBe('CONNECT');
    });

    it('startRemoteAgent: exec channel as ByteStreams; a failing command reports its stderr', async () => {
      const client: Client = await connectSsh(options({ knownHostsFiles }));
      try {
        const streams = await startRemoteAgent(client, { remoteCommand: 'echo-stdin' });
        const chunks: Buffer[] = [];
        streams.readable.on('data', (c: Buffer) => chunks.push(c));
        const ended = new Promise((resolve, reject) => {
          streams.readable.on('end', resolve);
          streams.readable.on('error', reject);
        });
        streams.writable.write('hello ');
        streams.writable.end('agent');
        await ended;
        expect(Buffer.concat(chunks).toString()).toBe('hello agent');

        const failing = await startRemoteAgent(client, { remoteCommand: 'nonexistent-agent' });
        const error = await new Promise<Error>((resolve) => {
          failing.readable.on('error', resolve);
          failing.readable.resume();
        });
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe('CONNECT');
        expect(error.message).toContain('exited with status 127 before the session started: no such command: nonexistent-agent');
      } finally {
        client.end();
      }
      expect(server.commands).toContain('nonexistent-agent');
    });
  });
});
