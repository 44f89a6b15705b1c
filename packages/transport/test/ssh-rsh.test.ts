/**
 * A remote shell command in place of ssh2 (rsync's -e): the command line split as a shell would,
 * our options turned into ssh's, and the commands run through a stand-in remote shell (a script that
 * runs its last argument locally with `sh -c`, as sshd would on the host).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectError, PathError } from '../src/errors.js';
import { rshArgv, rshShell, splitCommand } from '../src/ssh/rsh.js';
import { startRemoteAgent } from '../src/ssh/remote-agent.js';

let dir: string;
let fakeSsh: string;
let argvLog: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltacast-rsh-'));
  argvLog = join(dir, 'argv.log');
  fakeSsh = join(dir, 'fake-ssh');
  // Records its arguments, then runs the last one as the remote login shell would.
  writeFileSync(fakeSsh, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nfor last; do :; done\nexec sh -c "$last"\n`);
  chmodSync(fakeSsh, 0o755);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('splitCommand', () => {
  it('splits on blanks and honours quotes and backslashes as a shell does, expanding nothing', () => {
    expect(splitCommand('ssh')).toEqual(['ssh']);
    expect(splitCommand('  ssh   -p 2222\t-o  "Compression yes" ')).toEqual(['ssh', '-p', '2222', '-o', 'Compression yes']);
    expect(splitCommand(`ssh -o 'ProxyCommand nc %h %p' -i ~/k\\ ey "$HOME" "a\\"b" 'c\\d' e""f`)).toEqual([
      'ssh',
      '-o',
      'ProxyCommand nc %h %p',
      '-i',
      '~/k ey',
      '$HOME',
      'a"b',
      'c\\d',
      'ef',
    ]);
    expect(splitCommand(`'' x`)).toEqual(['', 'x']);
  });

  it('refuses an unterminated quote and an empty command with CONFIG', () => {
    for (const bad of [`ssh 'x`, 'ssh "x', '', '   ']) {
      expect(() => splitCommand(bad), bad).toThrow(ConnectError);
    }
  });
});

describe('rshArgv', () => {
  it("passes our options on as ssh's, the host last", () => {
    expect(rshArgv({ command: 'ssh -q', host: 'web1' })).toEqual(['ssh', '-q', 'web1']);
    expect(
      rshArgv({
        command: 'ssh',
        host: 'web1',
        user: 'deploy',
        port: 2222,
        identityFile: '/k/id',
        configFile: '/c/cfg',
        jumpHosts: 'bastion',
        acceptNewHostKeys: true,
        knownHostsFiles: ['/k/known', '/k/with space'],
        connectTimeoutMs: 1500,
        keepaliveIntervalMs: 15_000,
      }),
    ).toEqual([
      'ssh',
      '-l',
      'deploy',
      '-p',
      '2222',
      '-i',
      '/k/id',
      '-F',
      '/c/cfg',
      '-J',
      'bastion',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      'UserKnownHostsFile=/k/known "/k/with space"',
      '-o',
      'ConnectTimeout=2',
      '-o',
      'ServerAliveInterval=15',
      'web1',
    ]);
  });

  it('refuses a host that would read as an option', () => {
    expect(() => rshArgv({ command: 'ssh', host: '-oProxyCommand=touch /tmp/x' })).toThrow(PathError);
  });
});

describe('rshShell', () => {
  it('runs a command through the remote shell with its input, and reports its output and status', async () => {
    const shell = rshShell([fakeSsh, '-x', 'host']);
    const result = await shell.run(`tr a-z A-Z; echo err >&2; exit 3`, 10_000, Buffer.from('input\n'));
    expect(result).toEqual({ code: 3, signal: null, stdout: 'INPUT\n', stderr: 'err\n' });
    expect(readFileSync(argvLog, 'utf8').trim().split('\n').at(-1)).toBe('-x host tr a-z A-Z; echo err >&2; exit 3');
  });

  it('fails with CONNECT when the remote shell cannot be run, or a command outlives its time', async () => {
    await expect(rshShell([join(dir, 'missing-ssh'), 'host']).run('true', 10_000)).rejects.toMatchObject({ code: 'CONNECT' });
    await expect(rshShell([fakeSsh, 'host']).run('sleep 5', 200)).rejects.toThrow(/did not finish on the remote within 0 s/);
  });

  it('starts the agent with startRemoteAgent: the stream of an explicit command, and its failure at start-up', async () => {
    const shell = rshShell([fakeSsh, 'host']);
    const streams = await startRemoteAgent(shell, { remoteCommand: 'tr a-z A-Z' });
    const reply = new Promise<string>((resolve) => {
      let text = '';
      streams.readable.on('data', (c: Buffer) => (text += c.toString()));
      streams.readable.on('end', () => resolve(text));
    });
    streams.writable.end('hello agent');
    expect(await reply).toBe('HELLO AGENT');
    expect(streams.kind).toBe('command');

    const failing = await startRemoteAgent(shell, { remoteCommand: 'echo no agent here >&2; exit 7' });
    const error = await new Promise<unknown>((resolve) => {
      failing.readable.on('error', resolve);
      failing.readable.resume();
    });
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/exited with status 7 before the session started: no agent here/);
  });

  it('gives up on a remote whose shell does not start the agent within the timeout', async () => {
    const slow = join(dir, 'slow-ssh');
    writeFileSync(slow, `#!/bin/sh\nsleep 20\nexec ${fakeSsh} "$@"\n`);
    chmodSync(slow, 0o755);
    const t0 = performance.now();
    const error = await startRemoteAgent(rshShell([slow, 'host']), { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/the remote did not start the agent within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(10_000); // not the 20 s the shell would take
  });

  it('probes the remote and refuses with NO_REMOTE_NODE where there is no deltacast and too old a Node.js', async () => {
    // The remote's PATH: a shell, wc, and a node that says it is 18.
    const bare = join(dir, 'bare-bin');
    mkdirSync(bare);
    symlinkSync('/bin/sh', join(bare, 'sh'));
    symlinkSync(execFileSync('sh', ['-c', 'command -v wc'], { encoding: 'utf8' }).trim(), join(bare, 'wc'));
    writeFileSync(join(bare, 'node'), '#!/bin/sh\necho v18.19.0\n');
    chmodSync(join(bare, 'node'), 0o755);
    const error = await startRemoteAgent(rshShell(['env', `PATH=${bare}`, `HOME=${dir}`, fakeSsh, 'host']), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({ code: 'NO_REMOTE_NODE' });
    expect((error as Error).message).toMatch(/its Node\.js is v18\.19\.0/);
  });
});
