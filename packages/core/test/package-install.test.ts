/**
 * The packages are real npm packages: packed tarballs install into an empty project outside the
 * workspace, the public API imports there, and its types check. Needs the npm registry for the
 * packages' own dependencies.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const tsc = join(root, 'node_modules/.bin/tsc');

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
}

describe('packed tarballs install and import outside the workspace', () => {
  let dir = '';

  beforeAll(() => {
    for (const file of ['packages/core/dist/index.js', 'packages/transport/dist/index.js', 'packages/fanout/dist/index.js', 'packages/watch/dist/index.js', 'packages/cli/dist/bin.js']) {
      if (!existsSync(join(root, file))) throw new Error(`${file} is missing: build first (npm test does)`);
    }
    dir = mkdtempSync(join(tmpdir(), 'deltacast-pack-'));
    const packs = join(dir, 'packs');
    for (const pkg of ['core', 'transport', 'fanout', 'watch', 'cli']) {
      run('npx', ['--yes', 'pnpm@12', 'pack', '--pack-destination', packs], join(root, 'packages', pkg));
    }
    const tarballs = readdirSync(packs).map((f) => join(packs, f));
    const app = join(dir, 'app');
    run('mkdir', ['-p', app], dir);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], app);
  }, 240_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('imports the public API and round-trips a delta', () => {
    const app = join(dir, 'app');
    writeFileSync(
      join(app, 'check.mjs'),
      `import { signature, encodeSignature, decodeSignature, delta, applyDelta, PatchError } from '@deltacast/core';
const basis = new TextEncoder().encode('hello world, '.repeat(1000));
const next = new TextEncoder().encode('hello there, '.repeat(1000));
const sig = decodeSignature(encodeSignature(signature(basis, { format: 'rdiff' })));
const out = applyDelta(basis, delta(sig, next));
if (Buffer.compare(Buffer.from(out), Buffer.from(next)) !== 0) throw new Error('round trip differs');
if (typeof PatchError !== 'function') throw new Error('PatchError missing');
console.log('ok');
`,
    );
    expect(run('node', ['check.mjs'], app).trim()).toBe('ok');
  });

  it('type-checks against the published declarations', () => {
    const app = join(dir, 'app');
    writeFileSync(
      join(app, 'check.ts'),
      `import { signature, delta, applyDelta, type Signature, type PatchOptions, PatchError } from '@deltacast/core';
const sig: Signature = signature(new Uint8Array(10), { format: 'native', strongLength: 8 });
const options: PatchOptions = { maxOutputLength: 100 };
const out: Uint8Array = applyDelta(new Uint8Array(10), delta(sig, new Uint8Array(5)), options);
const code: string = new PatchError('TRUNCATED', 'x').code;
export { out, code };
`,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [], skipLibCheck: false },
        files: ['check.ts'],
      }),
    );
    // skipLibCheck false checks our .d.ts files too; they must not need @types/node from the user.
    expect(() => run(tsc, ['-p', 'tsconfig.json'], app)).not.toThrow();
  });

  it('installs the deltacast bin', () => {
    const app = join(dir, 'app');
    expect(run('npx', ['--no-install', 'deltacast', '--help'], app)).toMatch(/signature/);
  });

  it('imports the watch and fan-out packages', () => {
    const app = join(dir, 'app');
    writeFileSync(
      join(app, 'watch.mjs'),
      `import { watch, TreeWatcher } from '@deltacast/watch';
import { fanout, SessionPool } from '@deltacast/fanout';
for (const f of [watch, TreeWatcher, fanout, SessionPool]) if (typeof f !== 'function') throw new Error('missing export');
console.log('ok');
`,
    );
    expect(run('node', ['watch.mjs'], app).trim()).toBe('ok');
  });
});
