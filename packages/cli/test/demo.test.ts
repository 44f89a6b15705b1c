/** `deltacast demo` with a small size: runs, verifies, and makes the same files every time. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deltacast, makeTempDir, requireBuild } from './helpers.js';

describe('demo', () => {
  let dir = '';
  let cleanup = (): void => {};

  beforeAll(() => {
    requireBuild();
    ({ dir, cleanup } = makeTempDir('demo'));
  });
  afterAll(() => cleanup());

  it.each(['native', 'rdiff'])('runs signature -> delta -> patch in --dir and verifies (%s)', (format) => {
    const work = join(dir, format);
    const run = deltacast(['demo', '--size', '256K', '--format', format, '--dir', work], dir);
    expect(run.status, run.stderr).toBe(0);
    const text = run.stdout.toString();
    for (const step of ['generate', 'signature', 'delta', 'patch', 'verify']) expect(text).toContain(step);
    expect(text).toContain('SHA-256 equal: ok');
    expect(text).toMatch(/literal bytes/);
    expect(text).toMatch(/compression: the delta is [\d.]+% of the new file/);
    expect(readdirSync(work).sort()).toEqual(['basis.bin', 'basis.sig', 'new.bin', 'new.delta', 'patched.bin']);
    const newFile = readFileSync(join(work, 'new.bin'));
    expect(readFileSync(join(work, 'basis.bin')).length).toBe(256 * 1024);
    expect(newFile.equals(readFileSync(join(work, 'basis.bin')))).toBe(false);
    expect(readFileSync(join(work, 'patched.bin')).equals(newFile)).toBe(true);
  });

  it('generates the same files on every run', () => {
    const run = deltacast(['demo', '--size', '256K', '--dir', join(dir, 'again')], dir);
    expect(run.status).toBe(0);
    expect(readFileSync(join(dir, 'again', 'new.bin')).equals(readFileSync(join(dir, 'native', 'new.bin')))).toBe(true);
  });

  it('removes its temporary directory when no --dir is given', () => {
    const run = deltacast(['demo', '--size', '64K'], dir);
    expect(run.status).toBe(0);
    const work = /files in (\S+) \(removed afterwards\)/.exec(run.stdout.toString());
    expect(work).not.toBeNull();
    expect(existsSync(work![1])).toBe(false);
  });
});
