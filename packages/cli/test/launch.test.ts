/**
 * The `deltacast` executable (dist/deltacast.mjs) runs the bundle from V8's code cache: one cache per
 * build, Node and command, written after a successful run that had none, kept while V8 accepts it,
 * replaced when it does not, and never in the way of the command itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheDirectory, cacheFile, packCache, unpackCache } from '../src/launch/code-cache.js';
import { cliRoot, makeTempDir, pseudoRandom } from './helpers.js';

const launcher = join(cliRoot, 'dist/deltacast.mjs');
const { version } = JSON.parse(readFileSync(join(cliRoot, 'package.json'), 'utf8')) as { version: string };

let dir = '';
let cleanup = () => {};
beforeEach(() => {
  ({ dir, cleanup } = makeTempDir('launch'));
});
afterEach(() => cleanup());

function run(args: string[], env: NodeJS.ProcessEnv = {}, nodeOptions: string[] = []) {
  if (!existsSync(launcher)) throw new Error(`${launcher} is missing: build first (\`pnpm -r run build\`)`);
  const { DELTACAST_CODE_CACHE: _, NODE_OPTIONS: __, ...inherited } = process.env;
  const result = spawnSync(process.execPath, [...nodeOptions, launcher, ...args], {
    cwd: dir,
    env: { ...inherited, XDG_CACHE_HOME: join(dir, 'cache'), ...env },
    encoding: 'buffer',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

const cacheDir = () => join(dir, 'cache', 'deltacast', 'v8');
const caches = () => (existsSync(cacheDir()) ? readdirSync(cacheDir()).sort() : []);

describe('the code-cache launcher', () => {
  it('writes a cache at the first successful run of a command and keeps it while V8 accepts it', () => {
    expect(run(['--version']).stdout.toString().trim()).toBe(version);
    const [first] = caches();
    expect(caches()).toEqual([expect.stringMatching(new RegExp(`^c1-[0-9a-f]{32}-${process.version}-${process.arch}-default\\.bin$`))]);
    const path = join(cacheDir(), first);
    const written = readFileSync(path);
    expect(written.length).toBeGreaterThan(10_000);
    const { mtimeMs } = statSync(path);

    expect(run(['--version']).stdout.toString().trim()).toBe(version);
    expect(readFileSync(path).equals(written)).toBe(true); // accepted, so not written again
    expect(statSync(path).mtimeMs).toBe(mtimeMs);
  });

  it('writes none from a run under a profiler (its cache saved later runs nothing), and uses one all the same', () => {
    const profiles = join(dir, 'profiles');
    expect(run(['--version'], {}, ['--cpu-prof', '--cpu-prof-dir', profiles]).stdout.toString().trim()).toBe(version);
    expect(readdirSync(profiles)).toHaveLength(1);
    expect(caches()).toEqual([]);
    expect(run(['--version'], { NODE_OPTIONS: '--heap-prof' }).status).toBe(0);
    expect(caches()).toEqual([]);
    expect(run(['--version']).status).toBe(0);
    expect(caches()).toHaveLength(1);
    const [file] = caches();
    const { mtimeMs } = statSync(join(cacheDir(), file));
    expect(run(['--version'], {}, ['--cpu-prof', '--cpu-prof-dir', profiles]).status).toBe(0);
    expect(statSync(join(cacheDir(), file)).mtimeMs).toBe(mtimeMs);
  });

  it('keeps one cache per command, and none for a run that failed', () => {
    writeFileSync(join(dir, 'basis'), pseudoRandom(100_000, 3));
    expect(run(['signature', 'basis', 'basis.sig']).status).toBe(0);
    expect(run(['no-such-command']).status).toBe(2);
    expect(run(['patch', 'missing', 'missing', 'out']).status).not.toBe(0);
    expect(caches()).toEqual([expect.stringMatching(/-signature\.bin$/)]);
  });

  it('replaces a cache V8 rejects, and the command works all the same', () => {
    writeFileSync(join(dir, 'basis'), pseudoRandom(300_000, 5));
    expect(run(['signature', 'basis', 'plain.sig'], { DELTACAST_CODE_CACHE: 'off' }).status).toBe(0);
    expect(run(['signature', 'basis', 'first.sig']).status).toBe(0);
    const [name] = caches();
    const path = join(cacheDir(), name);
    writeFileSync(path, Buffer.from('not a V8 code cache'));
    const rejected = run(['signature', 'basis', 'second.sig']);
    expect(rejected).toMatchObject({ status: 0, stderr: '' });
    expect(readFileSync(path).length).toBeGreaterThan(10_000);
    expect(run(['signature', 'basis', 'third.sig']).status).toBe(0); // from the new cache
    const plain = readFileSync(join(dir, 'plain.sig'));
    for (const sig of ['first.sig', 'second.sig', 'third.sig']) expect(readFileSync(join(dir, sig)).equals(plain)).toBe(true);
  });

  it('never hands V8 a damaged cache: one flipped byte counts as rejected, and the file is made again', () => {
    writeFileSync(join(dir, 'basis'), pseudoRandom(200_000, 9));
    expect(run(['signature', 'basis', 'first.sig']).status).toBe(0);
    const [name] = caches();
    const path = join(cacheDir(), name);
    const good = readFileSync(path);
    expect(unpackCache(good)).toBeDefined();
    const damaged = Buffer.from(good);
    damaged[Math.floor(damaged.length * 0.7)] ^= 0x40; // inside V8's data, past every header
    writeFileSync(path, damaged);
    expect(run(['signature', 'basis', 'second.sig'])).toMatchObject({ status: 0, stderr: '' });
    const remade = readFileSync(path);
    expect(remade.equals(damaged)).toBe(false);
    expect(unpackCache(remade)).toBeDefined();
    expect(readFileSync(join(dir, 'second.sig')).equals(readFileSync(join(dir, 'first.sig')))).toBe(true);
  });

  it('removes caches not written for 30 days when it writes one', () => {
    mkdirSync(cacheDir(), { recursive: true });
    const old = Date.now() / 1000 - 31 * 24 * 3600;
    for (const name of ['0123-v18.0.0-x64-sync.bin', 'abcd-v20.1.0-x64-sync.bin.77.tmp', 'notes.txt']) {
      writeFileSync(join(cacheDir(), name), 'x');
      utimesSync(join(cacheDir(), name), old, old);
    }
    writeFileSync(join(cacheDir(), 'beef-v20.1.0-x64-sync.bin'), 'recent');
    expect(run(['--version']).status).toBe(0);
    const left = caches();
    expect(left).toHaveLength(3);
    expect(left).toEqual(expect.arrayContaining(['beef-v20.1.0-x64-sync.bin', 'notes.txt', expect.stringMatching(/-default\.bin$/)]));
  });

  it('runs without a cache when it is turned off or cannot be written', () => {
    expect(run(['--version'], { DELTACAST_CODE_CACHE: 'off' }).stdout.toString().trim()).toBe(version);
    expect(existsSync(join(dir, 'cache'))).toBe(false);
    writeFileSync(join(dir, 'not-a-dir'), '');
    const blocked = run(['--version'], { XDG_CACHE_HOME: join(dir, 'not-a-dir') });
    expect(blocked).toMatchObject({ status: 0, stderr: '' });
    expect(blocked.stdout.toString().trim()).toBe(version);
    const elsewhere = join(dir, 'elsewhere');
    expect(run(['--version'], { DELTACAST_CODE_CACHE: elsewhere }).status).toBe(0);
    expect(readdirSync(elsewhere)).toEqual([expect.stringMatching(/-default\.bin$/)]);
  });

  it('reports errors with the bundle file in the stack, as a plain run does', () => {
    const result = run(['patch', 'missing', 'missing', 'out']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^deltacast: patch: /);
  });
});

describe('cache files', () => {
  it("carry a digest of V8's data: only a whole, unaltered file gives it back", () => {
    const data = Buffer.from(pseudoRandom(5000, 4));
    const packed = packCache(data);
    expect(unpackCache(packed)?.equals(data)).toBe(true);
    expect(unpackCache(packed.subarray(0, packed.length - 1))).toBeUndefined();
    expect(unpackCache(packed.subarray(0, 40))).toBeUndefined();
    expect(unpackCache(Buffer.alloc(0))).toBeUndefined();
    for (const at of [0, 7, 8, 39, 40, packed.length - 1]) {
      const altered = Buffer.from(packed);
      altered[at] ^= 1;
      expect(unpackCache(altered), `byte ${at}`).toBeUndefined();
    }
    expect(unpackCache(Buffer.concat([packed, Buffer.from([0])]))).toBeUndefined();
  });
});

describe('cache file names', () => {
  it('name the build, Node, architecture and command, and are off on request', () => {
    const env = { HOME: '/home/u' };
    expect(cacheDirectory(env)).toBe('/home/u/.cache/deltacast/v8');
    expect(cacheDirectory({ ...env, XDG_CACHE_HOME: '/x' })).toBe('/x/deltacast/v8');
    expect(cacheDirectory({ ...env, XDG_CACHE_HOME: 'relative' })).toBe('/home/u/.cache/deltacast/v8');
    expect(cacheDirectory({ ...env, DELTACAST_CODE_CACHE: 'off' })).toBeUndefined();
    expect(cacheDirectory({ ...env, DELTACAST_CODE_CACHE: '0' })).toBeUndefined();
    expect(cacheDirectory({ ...env, DELTACAST_CODE_CACHE: '/c' })).toBe('/c');
    const at = (argv: string[]) => cacheFile({ buildId: 'ab/../12', argv, env });
    expect(at(['sync', 'a', 'b'])).toBe(`/home/u/.cache/deltacast/v8/c1-ab12-${process.version}-${process.arch}-sync.bin`);
    expect(at(['-v'])).toMatch(/-default\.bin$/);
    expect(at([])).toMatch(/-default\.bin$/);
    expect(at(['../../etc'])).toMatch(/-default\.bin$/);
    expect(cacheFile({ buildId: 'x', argv: ['sync'], env: { ...env, DELTACAST_CODE_CACHE: 'off' } })).toBeUndefined();
  });
});
