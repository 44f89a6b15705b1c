/** Drop-in checks against the real rdiff (librsync 2.3.x): same signature bytes, deltas accepted both ways. */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basisAndNew, deltacast, makeTempDir, requireBuild } from './helpers.js';

const hasRdiff = spawnSync('rdiff', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasRdiff) console.warn('rdiff is not on PATH: skipping the CLI drop-in checks against rdiff (install librsync-tools)');

function rdiff(args: string[], cwd: string, input?: Uint8Array): Buffer {
  const result = spawnSync('rdiff', args, { cwd, input, maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`rdiff ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

describe.skipIf(!hasRdiff)('drop-in for rdiff', () => {
  const { basis, next } = basisAndNew(400_000);
  let dir = '';
  let cleanup = (): void => {};
  const file = (name: string): Buffer => readFileSync(join(dir, name));

  beforeAll(() => {
    requireBuild();
    ({ dir, cleanup } = makeTempDir('rdiff'));
    writeFileSync(join(dir, 'basis.bin'), basis);
    writeFileSync(join(dir, 'new.bin'), next);
    writeFileSync(join(dir, 'small.bin'), basis.subarray(0, 5000));
  });
  afterAll(() => cleanup());

  it.each([
    ['default options', []],
    ['-b 1024 -S 8 -H md4 -R rollsum', ['-b', '1024', '-S', '8', '-H', 'md4', '-R', 'rollsum']],
    ['-S -1 (minimum strong sum)', ['-S', '-1']],
    ['-H md4 -R rabinkarp', ['-H', 'md4']],
    ['-R rollsum (BLAKE2)', ['-R', 'rollsum']],
  ])('signature is byte-identical to rdiff signature with %s', (_name, options) => {
    for (const input of ['basis.bin', 'small.bin']) {
      const tag = options.join('') + input;
      rdiff([...options, 'signature', input, `rdiff${tag}.sig`], dir);
      const run = deltacast(['signature', ...options, input, `ours${tag}.sig`], dir);
      expect(run.status, run.stderr).toBe(0);
      expect(file(`ours${tag}.sig`).equals(file(`rdiff${tag}.sig`))).toBe(true);
    }
  });

  it('signature of a pipe is byte-identical (block length 2048, size unknown)', () => {
    for (const options of [[], ['-S', '-1']]) {
      const expected = rdiff([...options, 'signature'], dir, basis);
      const run = deltacast(['signature', ...options], dir, { input: basis });
      expect(run.stdout.equals(expected)).toBe(true);
    }
  });

  it('rdiff patch applies our delta', () => {
    for (const sig of ['ours.sig', 'theirs.sig']) {
      if (sig === 'ours.sig') expect(deltacast(['signature', 'basis.bin', sig], dir).status).toBe(0);
      else rdiff(['signature', 'basis.bin', sig], dir);
      expect(deltacast(['delta', sig, 'new.bin', `${sig}.delta`], dir).status).toBe(0);
      rdiff(['patch', 'basis.bin', `${sig}.delta`, `${sig}.out`], dir);
      expect(file(`${sig}.out`).equals(Buffer.from(next))).toBe(true);
    }
  });

  it('our patch applies the delta rdiff makes', () => {
    rdiff(['-H', 'md4', '-R', 'rollsum', 'signature', 'basis.bin', 'md4.sig'], dir);
    for (const sig of ['md4.sig', 'ours.sig']) {
      rdiff(['delta', sig, 'new.bin', `rdiff-${sig}.delta`], dir);
      const run = deltacast(['patch', 'basis.bin', `rdiff-${sig}.delta`, `rdiff-${sig}.out`], dir);
      expect(run.status, run.stderr).toBe(0);
      expect(file(`rdiff-${sig}.out`).equals(Buffer.from(next))).toBe(true);
    }
  });
});
