/** `deltacast demo`: the sync demo over an in-process SSH server, and the patch demo. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deltacast, makeTempDir, requireBuild } from './helpers.js';

describe('demo --kind patch', () => {
  let dir = '';
  let cleanup = (): void => {};

  beforeAll(() => {
    requireBuild();
    ({ dir, cleanup } = makeTempDir('demo'));
  });
  afterAll(() => cleanup());

  it.each(['native', 'rdiff'])('runs signature -> delta -> patch in --dir and verifies (%s)', (format) => {
    const work = join(dir, format);
    const run = deltacast(['demo', '--kind', 'patch', '--size', '256K', '--format', format, '--dir', work], dir);
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
    const run = deltacast(['demo', '--kind', 'patch', '--size', '256K', '--dir', join(dir, 'again')], dir);
    expect(run.status).toBe(0);
    expect(readFileSync(join(dir, 'again', 'new.bin')).equals(readFileSync(join(dir, 'native', 'new.bin')))).toBe(true);
  });

  it('removes its temporary directory when no --dir is given', () => {
    const run = deltacast(['demo', '--kind', 'patch', '--size', '64K'], dir);
    expect(run.status).toBe(0);
    const work = /files in (\S+) \(removed afterwards\)/.exec(run.stdout.toString());
    expect(work).not.toBeNull();
    expect(existsSync(work![1])).toBe(false);
  });
});

describe('demo (sync over SSH)', () => {
  let dir = '';
  let cleanup = (): void => {};

  beforeAll(() => {
    requireBuild();
    ({ dir, cleanup } = makeTempDir('demo-sync'));
  });
  afterAll(() => cleanup());

  it('syncs a generated tree over SSH, changes it, syncs again, and checks both times', () => {
    const work = join(dir, 'sync');
    const run = deltacast(['demo', '--size', '1M', '--files', '40', '--dir', work], dir);
    expect(run.status, run.stderr.toString()).toBe(0);
    const text = run.stdout.toString();
    expect(text).toMatch(/sync over SSH to an in-process server at 127\.0\.0\.1:\d+ \(host key checked/);
    expect(text).toMatch(/first sync : 41 created, 0 updated, 0 deleted, 0 unchanged/);
    // The second run sends deltas: a small fraction of the bytes it updates.
    const second = /second sync: 1 created, (\d+) updated, 1 deleted, \d+ unchanged; sent ([\d.]+ \S+) for/.exec(text);
    expect(second, text).not.toBeNull();
    expect(Number(second![1])).toBeGreaterThan(0);
    expect(text).toMatch(/both times the destination was checked identical/);
    expect(readdirSync(join(work, 'server', 'srv', 'site')).sort()).toEqual(readdirSync(join(work, 'site')).sort());
  });
});
