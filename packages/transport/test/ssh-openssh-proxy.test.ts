/**
 * Jump hosts and proxy commands against the real OpenSSH server: the server is its own jump host
 * (sshd forwards a direct-tcpip channel to its own port), and a proxy command is a small TCP relay
 * that leaves a mark when it runs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectError } from '../src/errors.js';
import { connectSsh, openJumpConnections } from '../src/ssh/connect.js';
import { hasSshd, sshdSkipReason, startSshd, type Sshd } from './helpers/sshd.js';

function run(client: Client, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(error);
      let stdout = '';
      channel.on('data', (c: Buffer) => (stdout += c.toString()));
      channel.stderr.resume();
      channel.on('close', () => resolve(stdout));
    });
  });
}

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    const client = (await promise) as Client;
    client.end();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error('connected, but a refusal was expected');
}

describe.skipIf(!hasSshd)(`jump hosts and proxy commands through OpenSSH ${sshdSkipReason}`, () => {
  let sshd: Sshd;
  let config: string;
  let relayMark: string;

  beforeAll(async () => {
    sshd = await startSshd();
    relayMark = join(sshd.dir, 'relay-ran');
    const relay = join(sshd.dir, 'relay.mjs');
    // A ProxyCommand: stdin and stdout joined to a TCP connection to argv[2]:argv[3], and a mark left.
    writeFileSync(
      relay,
      [
        "import { connect } from 'node:net';",
        "import { appendFileSync } from 'node:fs';",
        `appendFileSync(${JSON.stringify(relayMark)}, process.argv.slice(2).join(' ') + '\\n');`,
        'const socket = connect(Number(process.argv[3]), process.argv[2]);',
        'process.stdin.pipe(socket).pipe(process.stdout);',
        "socket.on('error', (e) => { process.stderr.write('relay: ' + e.message + '\\n'); process.exit(1); });",
        '',
      ].join('\n'),
    );
    const emptyKnownHosts = join(sshd.dir, 'known_hosts.empty');
    writeFileSync(emptyKnownHosts, '');
    const common = (knownHosts = sshd.knownHostsFile) => [
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.identityFile}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '  IdentityAgent none',
    ];
    config = join(sshd.dir, 'ssh_config');
    writeFileSync(
      config,
      [
        'Host jump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        ...common(),
        'Host behind',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  ProxyJump jump',
        ...common(),
        'Host twice',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  ProxyJump jump,jump',
        ...common(),
        'Host unknown-jump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  ProxyJump stranger',
        ...common(),
        'Host stranger',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        ...common(emptyKnownHosts),
        'Host closed-jump',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        '  ProxyJump closedport',
        ...common(),
        'Host closedport',
        '  HostName 127.0.0.1',
        '  Port 1',
        ...common(),
        'Host nowhere',
        '  HostName 127.0.0.1',
        '  Port 1',
        '  ProxyJump jump',
        ...common(),
        'Host loop',
        '  ProxyJump loop',
        ...common(),
        'Host relayed',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  ProxyCommand "${process.execPath}" "${relay}" %h %p`,
        ...common(),
        'Host relay-fails',
        '  HostName 127.0.0.1',
        '  Port 1',
        `  ProxyCommand "${process.execPath}" "${relay}" %h %p`,
        ...common(),
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it('reaches a host through the jump host its config names, and closes the jump connection with it', async () => {
    const client = await connectSsh({ host: 'behind', configFile: config, agentSocket: false });
    expect(await run(client, 'echo through the jump')).toBe('through the jump\n');
    // The connection rides a forwarded channel, not a TCP socket of its own.
    expect((client as unknown as { _sock: { remotePort?: number } })._sock.remotePort).toBeUndefined();
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.end();
    await closed;
  });

  it('shares one jump connection among the connections behind it, and ends it with the last', async () => {
    expect(openJumpConnections()).toBe(0);
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => connectSsh({ host: 'behind', configFile: config, agentSocket: false })));
    expect(openJumpConnections()).toBe(1);
    expect(await Promise.all([a, b, c].map((client, i) => run(client, `echo ${i}`)))).toEqual(['0\n', '1\n', '2\n']);
    const closed = (client: Client) => new Promise<void>((resolve) => client.on('close', () => resolve()));
    a.end();
    await closed(a);
    b.end();
    await closed(b);
    expect(openJumpConnections()).toBe(1);
    expect(await run(c, 'echo still')).toBe('still\n');
    c.end();
    await closed(c);
    expect(openJumpConnections()).toBe(0);
  });

  it('goes through a chain of jump hosts, and -J overrides the config', async () => {
    const twice = await connectSsh({ host: 'twice', configFile: config, agentSocket: false });
    expect(await run(twice, 'echo two hops')).toBe('two hops\n');
    twice.end();
    // -J none: straight to the host, though its config names a jump host that cannot be reached.
    const direct = await connectSsh({ host: 'closed-jump', configFile: config, agentSocket: false, jumpHosts: 'none' });
    expect(await run(direct, 'echo direct')).toBe('direct\n');
    direct.end();
    // -J jump: through the jump host, in place of the config's unreachable one.
    const jumped = await connectSsh({ host: 'closed-jump', configFile: config, agentSocket: false, jumpHosts: 'jump' });
    expect((jumped as unknown as { _sock: { remotePort?: number } })._sock.remotePort).toBeUndefined();
    jumped.end();
  });

  it("checks the jump host's own key: an unknown one is refused as HOST_KEY_UNKNOWN, naming the jump host", async () => {
    const error = await refusal(connectSsh({ host: 'unknown-jump', configFile: config, agentSocket: false }));
    expect(error.code).toBe('HOST_KEY_UNKNOWN');
    expect(error.message).toMatch(/^jump host stranger: the host key of \[127\.0\.0\.1\]:\d+ is not in/);
  });

  it('reports a jump host that cannot be reached, and a host the jump host cannot reach, as CONNECT', async () => {
    const unreachable = await refusal(connectSsh({ host: 'closed-jump', configFile: config, agentSocket: false, connectTimeoutMs: 5000 }));
    expect(unreachable.code).toBe('CONNECT');
    expect(unreachable.message).toMatch(/^jump host closedport: cannot connect to 127\.0\.0\.1 port 1: ECONNREFUSED/);
    const beyond = await refusal(connectSsh({ host: 'nowhere', configFile: config, agentSocket: false }));
    expect(beyond.code).toBe('CONNECT');
    expect(beyond.message).toMatch(/^jump host jump could not reach 127\.0\.0\.1 port 1: /);
  });

  it('refuses a jump host whose config jumps back to itself, as CONFIG', async () => {
    const error = await refusal(connectSsh({ host: 'loop', configFile: config, agentSocket: false }));
    expect(error.code).toBe('CONFIG');
    expect(error.message).toMatch(/nested more than 8 deep/);
  });

  it('connects through a ProxyCommand, with its tokens expanded', async () => {
    const client = await connectSsh({ host: 'relayed', configFile: config, agentSocket: false });
    expect(await run(client, 'echo relayed')).toBe('relayed\n');
    client.end();
    expect(readFileSync(relayMark, 'utf8')).toBe(`127.0.0.1 ${sshd.port}\n`);
  });

  it("reports a ProxyCommand that fails, with its exit status and stderr", async () => {
    const error = await refusal(connectSsh({ host: 'relay-fails', configFile: config, agentSocket: false }));
    expect(error.code).toBe('CONNECT');
    expect(error.message).toMatch(
      /^cannot connect to 127\.0\.0\.1 port 1 via ProxyCommand `"[^`]*relay\.mjs" 127\.0\.0\.1 1`: .*\(the proxy command failed: it exited with status 1: relay: connect ECONNREFUSED 127\.0\.0\.1:1\)$/,
    );
    expect(existsSync(relayMark)).toBe(true);
  });
});
