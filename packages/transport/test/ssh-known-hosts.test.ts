import { execFileSync } from 'node:child_process';
import { generateSshKeyPair } from '../src/ssh/keys.js';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { addHostKey, checkHostKey, keyTypeOf, lookupHostKeys } from '../src/ssh/known-hosts.js';
import { hasSshd, sshdSkipReason } from './helpers/sshd.js';

function newKey(): { blob: Buffer; b64: string } {
  const pair = generateSshKeyPair('ed25519');
  const parsed = ssh2.utils.parseKey(pair.public);
  if (parsed instanceof Error) throw parsed;
  const blob = (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
  return { blob, b64: blob.toString('base64') };
}

const keyA = newKey();
const keyB = newKey();
let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltacast-kh-'));
  file = join(dir, 'known_hosts');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const check = (host: string, port: number | undefined, key: Buffer, files = [file]) => checkHostKey({ host, port, key, files });

describe('checkHostKey', () => {
  it('plain names, comma lists and wildcards', async () => {
    writeFileSync(file, `# comment\n\nweb1,10.0.0.1 ssh-ed25519 ${keyA.b64} root@web1\n*.example.com,!bad.example.com ssh-ed25519 ${keyB.b64}\n`);
    expect(await check('web1', 22, keyA.blob)).toBe('known');
    expect(await check('10.0.0.1', undefined, keyA.blob)).toBe('known');
    expect(await check('WEB1', 22, keyA.blob)).toBe('known');
    expect(await check('web1', 22, keyB.blob)).toBe('mismatch');
    expect(await check('web2', 22, keyA.blob)).toBe('unknown');
    expect(await check('a.example.com', 22, keyB.blob)).toBe('known');
    expect(await check('bad.example.com', 22, keyB.blob)).toBe('unknown');
  });

  it('[host]:port for ports other than 22, and only there', async () => {
    writeFileSync(file, `[web1]:2222 ssh-ed25519 ${keyA.b64}\nweb1 ssh-ed25519 ${keyB.b64}\n`);
    expect(await check('web1', 2222, keyA.blob)).toBe('known');
    expect(await check('web1', 2222, keyB.blob)).toBe('mismatch');
    expect(await check('web1', 22, keyB.blob)).toBe('known');
    expect(await check('web1', 2223, keyA.blob)).toBe('unknown');
  });

  it('hashed entries', async () => {
    await addHostKey(file, 'web1', 2222, keyA.blob);
    const line = readFileSync(file, 'utf8');
    expect(line).toMatch(/^\|1\|[A-Za-z0-9+/=]{28}\|[A-Za-z0-9+/=]{28} ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
    expect(line).not.toContain('web1');
    expect(await check('web1', 2222, keyA.blob)).toBe('known');
    expect(await check('web1', 2222, keyB.blob)).toBe('mismatch');
    expect(await check('web1', 22, keyA.blob)).toBe('unknown');
    expect(await check('web2', 2222, keyA.blob)).toBe('unknown');
  });

  it('@revoked keys are a mismatch even when also listed; @cert-authority lines are ignored', async () => {
    writeFileSync(
      file,
      `@cert-authority *.example.com ssh-ed25519 ${keyB.b64}\nweb1 ssh-ed25519 ${keyA.b64}\n@revoked * ssh-ed25519 ${keyA.b64}\n`,
    );
    expect(await check('web1', 22, keyA.blob)).toBe('mismatch');
    expect(await check('a.example.com', 22, keyB.blob)).toBe('unknown');
    expect(await check('other', 22, keyA.blob)).toBe('mismatch'); // revoked for every host
  });

  it('skips malformed lines and missing files, and reads several files', async () => {
    const second = join(dir, 'second');
    writeFileSync(file, `web1 ssh-ed25519\nweb1 ssh-rsa ${keyA.b64}\nweb1 ssh-ed25519 not*base64\n`);
    writeFileSync(second, `web1 ssh-ed25519 ${keyA.b64}\n`);
    expect(await check('web1', 22, keyA.blob, [join(dir, 'missing'), file, second])).toBe('known');
    const entries = await lookupHostKeys('web1', 22, [file, second]);
    expect(entries.map((e) => [e.file, e.line, e.keyType])).toEqual([[second, 1, 'ssh-ed25519']]);
  });
});

describe('addHostKey', () => {
  it('creates the directory (700) and file (600), appends on a new line', async () => {
    const nested = join(dir, 'home', '.ssh', 'known_hosts');
    await addHostKey(nested, 'web1', 22, keyA.blob);
    expect(statSync(join(dir, 'home', '.ssh')).mode & 0o777).toBe(0o700);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
    writeFileSync(nested, `${readFileSync(nested, 'utf8')}web9 ssh-ed25519 ${keyB.b64}`); // no final newline
    await addHostKey(nested, 'web2', 22, keyB.blob);
    const lines = readFileSync(nested, 'utf8').split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(await check('web2', 22, keyB.blob, [nested])).toBe('known');
    expect(await check('web9', 22, keyB.blob, [nested])).toBe('known');
    expect(await check('web1', 22, keyA.blob, [nested])).toBe('known');
  });

  it('keyTypeOf reads the type from the blob and rejects short ones', () => {
    expect(keyTypeOf(keyA.blob)).toBe('ssh-ed25519');
    expect(() => keyTypeOf(Buffer.from([0, 0, 0, 9, 0x61]))).toThrow(/bad type length/);
  });
});

describe.skipIf(!hasSshd)(`known_hosts written by OpenSSH ${sshdSkipReason}`, () => {
  it('entries hashed by ssh-keygen -H are found; ours are found by ssh-keygen -F', async () => {
    writeFileSync(file, `[web1]:2222 ssh-ed25519 ${keyA.b64}\nweb2 ssh-ed25519 ${keyB.b64}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    expect(readFileSync(file, 'utf8')).not.toContain('web');
    expect(await check('web1', 2222, keyA.blob)).toBe('known');
    expect(await check('web2', 22, keyB.blob)).toBe('known');
    expect(await check('web2', 22, keyA.blob)).toBe('mismatch');

    const ours = join(dir, 'ours');
    await addHostKey(ours, 'web3', 2200, keyA.blob);
    const found = execFileSync('ssh-keygen', ['-F', '[web3]:2200', '-f', ours], { encoding: 'utf8' });
    expect(found).toContain(keyA.b64);
  });
});
