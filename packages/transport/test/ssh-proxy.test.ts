/**
 * ProxyJump and ProxyCommand as the config gives them, ssh -J's syntax, and a proxy command's
 * stream. The connections through them are tested against OpenSSH (ssh-openssh-proxy.test.ts)
 * and an in-process ssh2 server (ssh-connect.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectError } from '../src/errors.js';
import { resolveSshConfig } from '../src/ssh/config.js';
import { MAX_JUMP_DEPTH, parseJumpHosts, startProxyCommand } from '../src/ssh/proxy.js';

let dir: string;
let configFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltacast-sshproxy-'));
  configFile = join(dir, 'config');
  writeFileSync(
    configFile,
    `Host behind
  HostName 10.1.2.3
  Port 2222
  User deploy
  ProxyJump ops@bastion:2200,inner

Host viacommand
  HostName target.internal
  ProxyCommand sh -c "nc %h %p" %r %n %%
  ProxyJump ignored-after-proxycommand

Host quoted
  ProxyCommand=ssh -W "[%h]:%p" 'jump host'

Host jumpfirst
  ProxyJump first
  ProxyCommand ignored-after-proxyjump

Host disabled
  ProxyJump none

Host badtoken
  ProxyCommand connect %u %h

Host *
  ProxyJump everyone
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ProxyJump and ProxyCommand in the config', () => {
  it('gives ProxyJump as written', () => {
    const c = resolveSshConfig('behind', { configFile });
    expect(c.proxyJump).toBe('ops@bastion:2200,inner');
    expect(c.proxyCommand).toBeUndefined();
  });

  it('expands ProxyCommand tokens and keeps its quoting; the first of the two settings wins', () => {
    const c = resolveSshConfig('viacommand', { configFile, user: 'alice' });
    expect(c.proxyCommand).toBe('sh -c "nc target.internal 22" alice viacommand %');
    expect(c.proxyJump).toBeUndefined();
    expect(resolveSshConfig('quoted', { configFile }).proxyCommand).toBe(`ssh -W "[quoted]:22" 'jump host'`);
    const first = resolveSshConfig('jumpfirst', { configFile });
    expect(first.proxyJump).toBe('first');
    expect(first.proxyCommand).toBeUndefined();
  });

  it("'none' turns an earlier block's value off for later blocks too", () => {
    const c = resolveSshConfig('disabled', { configFile });
    expect(c.proxyJump).toBeUndefined();
    expect(resolveSshConfig('elsewhere', { configFile }).proxyJump).toBe('everyone');
  });

  it('refuses a token ProxyCommand does not take', () => {
    expect(() => resolveSshConfig('badtoken', { configFile })).toThrow(/ProxyCommand .*%u/);
  });
});

describe('parseJumpHosts', () => {
  it('reads [user@]host[:port], bracketed IPv6, bare IPv6 and ssh:// URIs, first reached first', () => {
    expect(parseJumpHosts('bastion')).toEqual([{ host: 'bastion' }]);
    expect(parseJumpHosts('ops@bastion:2200, inner ,u@[::1]:22')).toEqual([
      { host: 'bastion', user: 'ops', port: 2200 },
      { host: 'inner' },
      { host: '::1', user: 'u', port: 22 },
    ]);
    expect(parseJumpHosts('fe80::1')).toEqual([{ host: 'fe80::1' }]);
    expect(parseJumpHosts('ssh://me@jump.example:2022/,SSH://[::1]')).toEqual([
      { host: 'jump.example', user: 'me', port: 2022 },
      { host: '::1' },
    ]);
    expect(parseJumpHosts('a@b@host')).toEqual([{ host: 'host', user: 'a@b' }]);
  });

  it('refuses empty elements, users and hosts, bad ports, paths and over-long chains with CONFIG', () => {
    for (const bad of ['', 'a,,b', '@host', 'user@', 'host:0', 'host:65536', 'host:x', 'ssh://host/path', '[::1', 'a b']) {
      let error: unknown;
      try {
        parseJumpHosts(bad);
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code, bad).toBe('CONFIG');
    }
    const long = Array.from({ length: MAX_JUMP_DEPTH + 1 }, (_, i) => `h${i}`).join(',');
    expect(() => parseJumpHosts(long)).toThrow(/more than 8 jump hosts/);
  });
});

describe('startProxyCommand', () => {
  it("carries bytes both ways through the command's stdin and stdout", async () => {
    const proxy = startProxyCommand(`tr a-z A-Z`);
    const reply = new Promise<string>((resolve) => {
      let text = '';
      proxy.sock.on('data', (c: Buffer) => (text += c.toString()));
      proxy.sock.on('end', () => resolve(text));
    });
    proxy.sock.end('through the proxy');
    expect(await reply).toBe('THROUGH THE PROXY');
  });

  it('reports how a failed command ended, with its stderr', async () => {
    const proxy = startProxyCommand(`sh -c 'echo no route to host >&2; exit 3'`);
    await new Promise<void>((resolve) => {
      proxy.sock.resume();
      proxy.sock.on('close', () => resolve());
      proxy.sock.on('end', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.failure()).toBe('it exited with status 3: no route to host');
  });

  it('ends a command that still runs when closed', async () => {
    const proxy = startProxyCommand('sleep 30');
    expect(proxy.failure()).toBeUndefined();
    proxy.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.failure()).toBe('it was killed by SIGHUP');
  });
});
