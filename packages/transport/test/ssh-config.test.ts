import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectError } from '../src/errors.js';
import { resolveSshConfig } from '../src/ssh/config.js';
import { matchHostPatterns, matchPattern } from '../src/ssh/pattern.js';

let dir: string;
let configFile: string;
const localUser = userInfo().username;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltacast-sshconfig-'));
  mkdirSync(join(dir, 'conf.d'));
  configFile = join(dir, 'config');
  writeFileSync(
    configFile,
    `# global settings come first and apply to every host
IdentityFile ~/.ssh/global_%h
Include ${join(dir, 'conf.d')}/*.conf

Host web? !web9
  HostName %h.internal.example
  User deploy
  Port 2201

Host web1 db
  User first-wins-not
  Port 9999
  IdentityFile /keys/%r@%h:%p

Host *.example.com
  HostName=10.0.0.5
  IdentityFile "%d/keys/with space"

Match originalhost db user admin
  Port 5432

Match host 10.0.0.* !user nobody
  IdentityFile /keys/matched-by-hostname

Match exec "touch ${join(dir, 'exec-ran')}"
  User exec-should-not-run

Host *
  User fallback
  Port 22
`,
  );
  writeFileSync(join(dir, 'conf.d', '10-cache.conf'), 'Host cache\n  HostName cache.internal\n  Port 2400\n');
  writeFileSync(join(dir, 'conf.d', 'ignored.txt'), 'Host cache\n  Port 1\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveSshConfig', () => {
  it('applies wildcard blocks, first value wins, expands %h in HostName and tokens in IdentityFile', () => {
    const c = resolveSshConfig('web1', { configFile });
    expect(c).toEqual({
      hostName: 'web1.internal.example',
      user: 'deploy',
      port: 2201,
      identityFiles: [
        join(homedir(), '.ssh/global_web1.internal.example'),
        '/keys/deploy@web1.internal.example:2201',
      ],
      userKnownHostsFiles: [],
    });
  });

  it('a negated pattern vetoes the block even when another pattern matches', () => {
    const c = resolveSshConfig('web9', { configFile });
    expect(c.hostName).toBe('web9');
    expect(c.user).toBe('fallback');
    expect(c.port).toBe(22);
  });

  it('? matches exactly one character', () => {
    expect(resolveSshConfig('web12', { configFile }).hostName).toBe('web12');
    expect(resolveSshConfig('web', { configFile }).hostName).toBe('web');
    expect(resolveSshConfig('web3', { configFile }).hostName).toBe('web3.internal.example');
  });

  it('host names match case-insensitively', () => {
    expect(resolveSshConfig('WEB2', { configFile }).user).toBe('deploy');
  });

  it('explicit user and port win and feed %r and %p', () => {
    const c = resolveSshConfig('db', { configFile, user: 'admin', port: 7 });
    expect(c.user).toBe('admin');
    expect(c.port).toBe(7);
    expect(c.identityFiles).toContain('/keys/admin@db:7');
  });

  it('Match originalhost/user use the user known so far', () => {
    expect(resolveSshConfig('db', { configFile, user: 'admin' }).port).toBe(9999); // Host db came first
    expect(resolveSshConfig('db', { configFile }).user).toBe('first-wins-not');
  });

  it('Match host compares against HostName; %d and quoted values are expanded', () => {
    const c = resolveSshConfig('api.example.com', { configFile });
    expect(c.hostName).toBe('10.0.0.5');
    expect(c.identityFiles).toEqual([
      join(homedir(), '.ssh/global_10.0.0.5'),
      `${homedir()}/keys/with space`,
      '/keys/matched-by-hostname',
    ]);
  });

  it('never runs Match exec commands', () => {
    const c = resolveSshConfig('anything', { configFile });
    expect(c.user).toBe('fallback');
    expect(() => writeFileSync(join(dir, 'exec-ran'), '', { flag: 'wx' })).not.toThrow();
    rmSync(join(dir, 'exec-ran'));
  });

  it('follows Include with a wildcard in the file name', () => {
    const c = resolveSshConfig('cache', { configFile });
    expect(c.hostName).toBe('cache.internal');
    expect(c.port).toBe(2400);
  });

  it('an Include inside a block that does not apply activates nothing from the included file', () => {
    const f = join(dir, 'nested-include');
    writeFileSync(f, `Host other\n  Include ${join(dir, 'conf.d')}/10-cache.conf\nHost *\n  Port 1234\n`);
    expect(resolveSshConfig('cache', { configFile: f })).toMatchObject({ hostName: 'cache', port: 1234 });
    expect(resolveSshConfig('other', { configFile: f }).port).toBe(1234);
  });

  it('a missing default config means defaults; a missing -F file is an error', () => {
    const empty = mkdtempSync(join(tmpdir(), 'deltacast-home-'));
    try {
      expect(resolveSshConfig('h', { home: empty, systemConfigFile: join(empty, 'none') })).toEqual({ hostName: 'h', identityFiles: [], userKnownHostsFiles: [] });
      let caught: unknown;
      try {
        resolveSshConfig('h', { configFile: join(empty, 'missing') });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConnectError);
      expect((caught as ConnectError).code).toBe('CONFIG');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('reads ~/.ssh/config then the system file, user file first', () => {
    const home = mkdtempSync(join(tmpdir(), 'deltacast-home-'));
    try {
      mkdirSync(join(home, '.ssh'));
      writeFileSync(join(home, '.ssh', 'config'), 'Host h\n  User from-user-file\n  UserKnownHostsFile ~/.ssh/kh_%h\n');
      writeFileSync(join(home, 'system'), 'Host *\n  User from-system\n  Port 2022\n  IdentityAgent ~/agent.sock\n');
      const c = resolveSshConfig('h', { home, systemConfigFile: join(home, 'system') });
      expect(c).toEqual({
        hostName: 'h',
        user: 'from-user-file',
        port: 2022,
        identityFiles: [],
        userKnownHostsFiles: [join(home, '.ssh/kh_h')],
        identityAgent: join(home, 'agent.sock'),
      });
      expect(resolveSshConfig('h', { home, configFile: 'none' })).toEqual({ hostName: 'h', identityFiles: [], userKnownHostsFiles: [] });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('reports unknown tokens and bad ports', () => {
    const bad = join(dir, 'bad');
    writeFileSync(bad, 'Host t\n  IdentityFile ~/%Q\nHost p\n  Port 70000\n');
    expect(() => resolveSshConfig('t', { configFile: bad })).toThrow(/unknown or unsupported token %Q/);
    expect(() => resolveSshConfig('p', { configFile: bad })).toThrow(/Port 70000/);
  });

  it('StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval and ServerAliveCountMax, first value winning', () => {
    const f = join(dir, 'liveness');
    writeFileSync(
      f,
      [
        'Host strict',
        '  StrictHostKeyChecking Accept-New',
        '  ConnectTimeout 1m30s',
        '  ServerAliveInterval 15',
        '  ServerAliveCountMax 5',
        'Host off',
        '  StrictHostKeyChecking off',
        '  ConnectTimeout none',
        '  ServerAliveInterval 0',
        'Host *',
        '  StrictHostKeyChecking yes',
        '  ConnectTimeout 7',
        '',
      ].join('\n'),
    );
    expect(resolveSshConfig('strict', { configFile: f })).toMatchObject({
      strictHostKeyChecking: 'accept-new',
      connectTimeoutMs: 90_000,
      serverAliveIntervalMs: 15_000,
      serverAliveCountMax: 5,
    });
    expect(resolveSshConfig('off', { configFile: f })).toMatchObject({ strictHostKeyChecking: 'no', connectTimeoutMs: 0, serverAliveIntervalMs: 0 });
    const other = resolveSshConfig('other', { configFile: f });
    expect(other).toMatchObject({ strictHostKeyChecking: 'yes', connectTimeoutMs: 7000 });
    expect(other.serverAliveIntervalMs).toBeUndefined();
    expect(other.serverAliveCountMax).toBeUndefined();
    expect(resolveSshConfig('other', { configFile: 'none' }).strictHostKeyChecking).toBeUndefined();
  });

  it('reports malformed times, counts and StrictHostKeyChecking values', () => {
    const bad = join(dir, 'bad-liveness');
    writeFileSync(bad, 'Host a\n  ConnectTimeout 10x\nHost b\n  ServerAliveCountMax -1\nHost c\n  StrictHostKeyChecking maybe\nHost d\n  ServerAliveInterval 99999w\n');
    expect(() => resolveSshConfig('a', { configFile: bad })).toThrow(/ConnectTimeout 10x .* not a time/);
    expect(() => resolveSshConfig('b', { configFile: bad })).toThrow(/ServerAliveCountMax -1/);
    expect(() => resolveSshConfig('c', { configFile: bad })).toThrow(/StrictHostKeyChecking maybe/);
    expect(() => resolveSshConfig('d', { configFile: bad })).toThrow(/ServerAliveInterval 99999w .* too long/);
    for (const host of ['a', 'b', 'c', 'd']) expect(() => resolveSshConfig(host, { configFile: bad })).toThrow(ConnectError);
  });

  it('%u is the local user', () => {
    const f = join(dir, 'user-token');
    writeFileSync(f, 'IdentityFile /k/%u\n');
    expect(resolveSshConfig('x', { configFile: f }).identityFiles).toEqual([`/k/${localUser}`]);
  });
});

describe('host patterns', () => {
  it.each([
    ['web1', 'web*', true],
    ['web1', 'w?b1', true],
    ['wb1', 'w?b1', false],
    ['web1', '*', true],
    ['', '*', true],
    ['a.b.c', '*.c', true],
    ['abc', 'a*b*c', true],
    ['abXc', 'a*b*c', true],
    ['acb', 'a*b*c', false],
    ['[h]:22', '[h]:2?', true],
  ])('matchPattern(%j, %j) = %s', (text, pattern, expected) => {
    expect(matchPattern(text, pattern)).toBe(expected);
  });

  it('negation vetoes, and a list needs one positive match', () => {
    expect(matchHostPatterns('a.example', ['*.example', '!b.example'])).toBe(true);
    expect(matchHostPatterns('b.example', ['*.example', '!b.example'])).toBe(false);
    expect(matchHostPatterns('c', ['!b'])).toBe(false);
  });
});
