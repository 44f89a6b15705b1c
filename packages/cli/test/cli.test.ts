/** signature, delta and patch through the built CLI: round trips, stdio, refusals, failures, usage. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basisAndNew, bin, cliRoot, deltacast, makeTempDir, requireBuild, strayFiles } from './helpers.js';

const { basis, next } = basisAndNew(300_000);
let dir = '';
let cleanup = (): void => {};

beforeAll(() => {
  requireBuild();
  ({ dir, cleanup } = makeTempDir('ops'));
  writeFileSync(join(dir, 'basis.bin'), basis);
  writeFileSync(join(dir, 'new.bin'), next);
});
afterAll(() => cleanup());

function file(name: string): Buffer {
  return readFileSync(join(dir, name));
}

/** One line on stderr, naming the command and the problem. */
function expectOneLine(stderr: string, ...parts: string[]): void {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  for (const part of parts) expect(stderr).toContain(part);
}

describe('help and version', () => {
  it('--help lists the commands and the exit codes', () => {
    const run = deltacast(['--help'], dir);
    expect(run.status).toBe(0);
    const text = run.stdout.toString();
    for (const command of ['signature', 'delta', 'patch', 'demo']) expect(text).toContain(command);
    expect(text).toMatch(/0\s+success/);
    expect(text).toMatch(/2\s+usage error/);
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(cliRoot, 'package.json'), 'utf8')) as { version: string };
    const run = deltacast(['--version'], dir);
    expect(run.status).toBe(0);
    expect(run.stdout.toString().trim()).toBe(version);
  });

  it('dist/bin.js is executable with a node shebang', () => {
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const run = deltacast(['--version'], dir);
    expect(run.status).toBe(0);
  });
});

describe.each(['rdiff', 'native'] as const)('%s format round trip on files', (format) => {
  it('signature -> delta -> patch rebuilds the new file', () => {
    const sig = `${format}.sig`;
    const delta = `${format}.delta`;
    const out = `${format}.out`;
    expect(deltacast(['signature', '--format', format, 'basis.bin', sig], dir).status).toBe(0);
    const deltaRun = deltacast(['delta', '-s', sig, 'new.bin', delta], dir);
    expect(deltaRun.status).toBe(0);
    // Statistics: the new file is mostly copied from the basis.
    const stats = /literal\[(\d+) cmds, (\d+) bytes\] copy\[(\d+) cmds, (\d+) bytes\]/.exec(deltaRun.stderr);
    expect(stats).not.toBeNull();
    const [literal, copied] = [Number(stats![2]), Number(stats![4])];
    expect(literal + copied).toBe(next.length);
    expect(copied).toBeGreaterThan(next.length * 0.9);
    expect(file(delta).length).toBeLessThan(next.length / 10);

    const patchRun = deltacast(['patch', '-s', 'basis.bin', delta, out], dir);
    expect(patchRun.status).toBe(0);
    expect(patchRun.stderr).toContain(format === 'native' ? 'sha256 verified' : 'rdiff deltas carry no hash');
    expect(file(out).equals(next)).toBe(true);
  });

  it('reads stdin and writes stdout for - and for omitted arguments', () => {
    const sig = deltacast(['signature', '--format', format, '-', '-'], dir, { input: basis });
    expect(sig.status).toBe(0);
    writeFileSync(join(dir, `${format}-stdio.sig`), sig.stdout);
    const delta = deltacast(['delta', `${format}-stdio.sig`], dir, { input: next });
    expect(delta.status).toBe(0);
    const patched = deltacast(['patch', 'basis.bin', '-', '-'], dir, { input: delta.stdout });
    expect(patched.status).toBe(0);
    expect(patched.stdout.equals(next)).toBe(true);
    const omitted = deltacast(['patch', 'basis.bin'], dir, { input: delta.stdout });
    expect(omitted.stdout.equals(next)).toBe(true);
  });
});

describe('signature', () => {
  it('takes options before the command, as rdiff does', () => {
    const after = deltacast(['signature', '-b', '1024', '-S', '8', 'basis.bin'], dir);
    const before = deltacast(['-b', '1024', '-S', '8', 'signature', 'basis.bin'], dir);
    expect(after.status).toBe(0);
    expect(before.status).toBe(0);
    expect(before.stdout.equals(after.stdout)).toBe(true);
    // rdiff header: magic, block length 1024, strong length 8.
    expect(after.stdout.subarray(0, 12).toString('hex')).toBe('72730147' + '00000400' + '00000008');
  });

  it('chooses the block length from the size of a file on stdin, 2048 for a pipe (as rdiff)', () => {
    const fd = openSync(join(dir, 'basis.bin'), 'r');
    let redirected;
    try {
      redirected = deltacast(['signature'], dir, { stdio: [fd, 'pipe', 'pipe'] });
    } finally {
      closeSync(fd);
    }
    const piped = deltacast(['signature'], dir, { input: basis });
    // 300000 bytes: floor(sqrt(300000)) = 547, rounded down to a multiple of 128 = 512.
    expect(redirected.stdout.readUInt32BE(4)).toBe(512);
    expect(piped.stdout.readUInt32BE(4)).toBe(2048);
  });

  it('-S -1 gives the minimum strong sum length for the basis size', () => {
    const run = deltacast(['signature', '-S', '-1', 'basis.bin'], dir);
    expect(run.status).toBe(0);
    expect(run.stdout.readUInt32BE(8)).toBe(7);
  });
});

describe('outputs', () => {
  it('refuses to overwrite an existing output without -f, and overwrites with -f', () => {
    writeFileSync(join(dir, 'existing.sig'), 'keep me');
    const refused = deltacast(['signature', 'basis.bin', 'existing.sig'], dir);
    expect(refused.status).toBe(1);
    expectOneLine(refused.stderr, 'deltacast: signature: EEXIST', 'existing.sig', '-f');
    expect(file('existing.sig').toString()).toBe('keep me');

    const forced = deltacast(['signature', '-f', 'basis.bin', 'existing.sig'], dir);
    expect(forced.status).toBe(0);
    expect(file('existing.sig').equals(deltacast(['signature', 'basis.bin'], dir).stdout)).toBe(true);
  });

  it('patches a file onto itself with -f (the basis is read from the open file)', () => {
    writeFileSync(join(dir, 'self.bin'), basis);
    const sig = deltacast(['signature', '--format', 'native', 'self.bin'], dir);
    writeFileSync(join(dir, 'self.sig'), sig.stdout);
    expect(deltacast(['delta', 'self.sig', 'new.bin', 'self.delta'], dir).status).toBe(0);
    expect(deltacast(['patch', '-f', 'self.bin', 'self.delta', 'self.bin'], dir).status).toBe(0);
    expect(file('self.bin').equals(next)).toBe(true);
  });
});

describe('failures', () => {
  let failDir = '';
  let cleanupFail = (): void => {};
  let nativeDelta: Buffer;
  const inputs = ['basis.bin', 'new.bin', 'delta.bin'];

  beforeAll(() => {
    ({ dir: failDir, cleanup: cleanupFail } = makeTempDir('fail'));
    writeFileSync(join(failDir, 'basis.bin'), basis);
    writeFileSync(join(failDir, 'new.bin'), next);
    const sig = deltacast(['signature', '--format', 'native', 'basis.bin'], failDir);
    writeFileSync(join(failDir, 'native.sig'), sig.stdout);
    nativeDelta = deltacast(['delta', 'native.sig', 'new.bin'], failDir).stdout;
    expect(nativeDelta.length).toBeGreaterThan(100);
    writeFileSync(join(failDir, 'delta.bin'), nativeDelta);
  });
  afterAll(() => cleanupFail());

  function patchWith(delta: Uint8Array, extra: string[] = [], basisFile = 'basis.bin') {
    writeFileSync(join(failDir, 'bad.delta'), delta);
    const run = deltacast(['patch', ...extra, basisFile, 'bad.delta', 'out.bin'], failDir);
    expect(existsSync(join(failDir, 'out.bin'))).toBe(false);
    expect(strayFiles(failDir, [...inputs, 'native.sig', 'bad.delta', 'other.bin'])).toEqual([]);
    return run;
  }

  it('a truncated delta fails with TRUNCATED and creates no output', () => {
    const run = patchWith(nativeDelta.subarray(0, nativeDelta.length - 20));
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: patch: TRUNCATED');
  });

  it('a delta with a bad magic fails with BAD_MAGIC and creates no output', () => {
    const corrupt = Buffer.from(nativeDelta);
    corrupt[0] ^= 0xff;
    const run = patchWith(corrupt);
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: patch: BAD_MAGIC');
  });

  it('a COPY beyond the end of the basis fails with COPY_OUT_OF_BOUNDS and creates no output', () => {
    // rdiff delta: magic, COPY with 4-byte offset and length (0x4f): 4096 bytes at 2^28, then END.
    const run = patchWith(Buffer.from('72730236' + '4f' + '10000000' + '00001000' + '00', 'hex'));
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: patch: COPY_OUT_OF_BOUNDS', '4096', String(2 ** 28));
  });

  it('a native delta against another basis fails its check and creates no output', () => {
    writeFileSync(join(failDir, 'other.bin'), Buffer.concat([basis.subarray(0, 1000), Buffer.alloc(1), basis.subarray(1001)]));
    const run = patchWith(nativeDelta, [], 'other.bin');
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: patch: HASH_MISMATCH');
  });

  it('--max-output stops a patch before it writes more', () => {
    const run = patchWith(nativeDelta, ['--max-output', '100K']);
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: patch: OUTPUT_LIMIT', '102400');
  });

  it('a truncated delta on stdout still fails with exit code 1', () => {
    const run = deltacast(['patch', 'basis.bin'], failDir, { input: nativeDelta.subarray(0, 50) });
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'TRUNCATED');
  });

  it('an interrupted patch removes its temporary output', async () => {
    const child = spawn(process.execPath, [bin, 'patch', 'basis.bin', '-', 'out.bin'], { cwd: failDir, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Half a delta, and stdin kept open: the patch waits with its temporary file in place.
    child.stdin.write(nativeDelta.subarray(0, nativeDelta.length >> 1));
    const isTemp = (name: string): boolean => name.startsWith('.out.bin.') && name.endsWith('.tmp');
    while (child.exitCode === null && !readdirSync(failDir).some(isTemp)) await sleep(20);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(readdirSync(failDir).filter(isTemp)).toEqual([]);
    expect(existsSync(join(failDir, 'out.bin'))).toBe(false);
  });

  it('a corrupt signature fails delta with BAD_MAGIC', () => {
    writeFileSync(join(failDir, 'bad.sig'), 'not a signature at all');
    const run = deltacast(['delta', 'bad.sig', 'new.bin', 'out.delta'], failDir);
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: delta: BAD_MAGIC');
    expect(existsSync(join(failDir, 'out.delta'))).toBe(false);
  });

  it('a missing input file fails with ENOENT', () => {
    const run = deltacast(['signature', 'no-such-file', 'x.sig'], failDir);
    expect(run.status).toBe(1);
    expectOneLine(run.stderr, 'deltacast: signature: ENOENT', 'no-such-file');
    expect(existsSync(join(failDir, 'x.sig'))).toBe(false);
  });
});

/** Runs `main()` in-process on PassThrough streams (fast: no process start per case). */
async function runMain(args: string[], input?: Uint8Array): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const { main } = (await import(join(cliRoot, 'dist/index.js'))) as typeof import('../src/index.js');
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  io.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  io.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  io.stdin.end(input ?? new Uint8Array(0));
  const code = await main(args, io);
  return { code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() };
}

describe('usage errors exit with 2', () => {
  it('from the process', () => {
    const run = deltacast(['signature', '--frobnicate'], dir);
    expect(run.status).toBe(2);
    expectOneLine(run.stderr, "deltacast: signature: unknown option '--frobnicate'");
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['frobnicate']],
    ['an unknown option', ['signature', '--frobnicate']],
    ['a block length that is not a number', ['signature', '-b', 'big', 'basis.bin']],
    ['a negative strong sum length below -1', ['signature', '-S', '-2', 'basis.bin']],
    ['an unknown hash', ['signature', '-H', 'sha1', 'basis.bin']],
    ['an rdiff hash with the native format', ['signature', '--format', 'native', '-H', 'md4', 'basis.bin']],
    ['xxh64 with the rdiff format', ['signature', '-H', 'xxh64', 'basis.bin']],
    ['a strong sum longer than the hash', ['signature', '-H', 'md4', '-S', '17', 'basis.bin']],
    ['delta without a signature', ['delta']],
    ['delta with signature and new file both on stdin', ['delta', '-', '-']],
    ['patch with the basis on stdin', ['patch', '-', 'x.delta']],
    ['a bad --max-output', ['patch', '--max-output', 'lots', 'basis.bin']],
    ['too many arguments', ['signature', 'a', 'b', 'c']],
    ['a demo size below 1 KiB', ['demo', '--size', '10']],
  ])('%s', async (_name, args) => {
    const run = await runMain(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^deltacast: /);
    expect(run.stdout.length).toBe(0);
  });
});

describe('main() in-process', () => {
  it('resolves to the exit code and writes to the given streams', async () => {
    const version = await runMain(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.toString()).toMatch(/^\d+\.\d+\.\d+\n$/);

    const sig = await runMain(['signature'], basis);
    expect(sig.code).toBe(0);
    expect(sig.stdout.equals(deltacast(['signature'], dir, { input: basis }).stdout)).toBe(true);
  });
});
