/** Release directories: hard-link clones, one atomic `current` switch, pruning, and rollback. */
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fanout } from '../src/fanout.js';
import { rollback } from '../src/rollback.js';

let dir = '';
let src = '';
const dests = () => [join(dir, 'd1'), join(dir, 'd2')];
const STAMPS = 50;

function writeVersion(v: number): void {
  mkdirSync(join(src, 'stamps'), { recursive: true });
  for (let i = 0; i < STAMPS; i++) writeFileSync(join(src, 'stamps', `s${i}.txt`), `version ${v}\n`);
}

const run = (extra: Parameters<typeof fanout>[0] extends infer T ? Partial<T> : never = {}) =>
  fanout({ source: `${src}/`, destinations: dests(), localAgent: 'in-process', release: { keep: 10 }, ...extra });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltacast-release-'));
  src = join(dir, 'src');
  writeVersion(1);
  writeFileSync(join(src, 'shared.bin'), Buffer.alloc(64 * 1024, 7)); // never changes: hard-linked across releases
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fan-out with releases', () => {
  it('builds a release per run on every destination and switches current to it', async () => {
    const first = await run();
    expect(first.ok).toBe(true);
    writeVersion(2);
    const second = await run();
    expect(second.ok).toBe(true);
    expect(second.release).not.toBe(first.release);
    for (const d of dests()) {
      expect(readlinkSync(join(d, 'current'))).toBe(`releases/${second.release}`);
      expect(readFileSync(join(d, 'current', 'stamps', 's7.txt'), 'utf8')).toBe('version 2\n');
      // The old release is intact, and the unchanged file is shared, not copied.
      expect(readFileSync(join(d, 'releases', first.release!, 'stamps', 's7.txt'), 'utf8')).toBe('version 1\n');
      expect(lstatSync(join(d, 'current', 'shared.bin')).ino).toBe(lstatSync(join(d, 'releases', first.release!, 'shared.bin')).ino);
    }
  });

  it('changes the mode of a shared file in the new release only', async () => {
    const first = await run();
    chmodSync(join(src, 'shared.bin'), 0o600);
    const second = await run();
    expect(second.ok).toBe(true);
    for (const d of dests()) {
      expect(lstatSync(join(d, 'current', 'shared.bin')).mode & 0o777).toBe(0o600);
      expect(lstatSync(join(d, 'releases', first.release!, 'shared.bin')).mode & 0o777).toBe(0o644);
    }
  });

  it('keeps only the newest releases, never the current one', async () => {
    for (let v = 1; v <= 4; v++) {
      writeVersion(v);
      expect((await run({ release: { keep: 2, id: `r${v}` } })).ok).toBe(true);
    }
    for (const d of dests()) expect(readdirSync(join(d, 'releases')).sort()).toEqual(['r3', 'r4']);
  });

  it('leaves current alone and discards the new release everywhere when one destination fails (all-or-none)', async () => {
    const first = await run();
    writeVersion(2);
    const failing = await run({ commit: 'all-or-none', beforeCommit: `test "$DELTACAST_DESTINATION" != "${dests()[1]}"` });
    expect(failing.ok).toBe(false);
    for (const d of dests()) {
      expect(readlinkSync(join(d, 'current'))).toBe(`releases/${first.release}`);
      expect(readdirSync(join(d, 'releases'))).toEqual([first.release]);
    }
  });

  it('never shows a reader a mix of versions while current is switched', async () => {
    await run();
    // A separate process resolves current once per pass and reads every stamp: one version per pass.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); const path = require('path'); let passes = 0, mixed = 0; const end = Date.now() + 60000;
         process.stdin.on('data', () => { console.log(JSON.stringify({ passes, mixed })); process.exit(0); });
         process.stdin.on('end', () => process.exit(1)); // the test is gone: so is the reader
         (function loop() { for (let k = 0; k < 20 && Date.now() < end; k++) { try { const root = fs.realpathSync(${JSON.stringify(join(dests()[0], 'current'))});
           const seen = new Set(); for (let i = 0; i < ${STAMPS}; i++) seen.add(fs.readFileSync(path.join(root, 'stamps', 's' + i + '.txt'), 'utf8'));
           passes++; if (seen.size !== 1) mixed++; } catch (e) { if (e.code !== 'ENOENT') throw e; } } if (Date.now() < end) setImmediate(loop); })();`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let output = '';
    reader.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const closed = new Promise((resolve) => reader.on('close', resolve));
    try {
      for (let v = 2; v <= 6; v++) {
        writeVersion(v);
        expect((await run()).ok).toBe(true);
      }
      reader.stdin.write('stop\n');
      await closed;
    } finally {
      reader.kill(); // on a failure above; a reader that has exited takes no signal
    }
    const { passes, mixed } = JSON.parse(output) as { passes: number; mixed: number };
    expect(passes).toBeGreaterThan(0);
    expect(mixed).toBe(0);
  });
});

describe('rollback', () => {
  it('switches every destination back to the same previous release', async () => {
    const first = await run();
    writeVersion(2);
    await run();
    const result = await rollback({ destinations: dests(), localAgent: 'in-process' });
    expect(result.ok).toBe(true);
    expect(result.release).toBe(first.release);
    for (const d of dests()) expect(readFileSync(join(d, 'current', 'stamps', 's0.txt'), 'utf8')).toBe('version 1\n');
  });

  it('reports an unreachable destination and switches none (all-or-none)', async () => {
    const first = await run();
    writeVersion(2);
    const second = await run();
    const unreachable = 'ssh://nobody@127.0.0.1:1/srv/site';
    const result = await rollback({ destinations: [...dests(), unreachable], localAgent: 'in-process', ssh: { connectTimeoutMs: 2000, identityFile: join(dir, 'none') } });
    expect(result.ok).toBe(false);
    const bad = result.destinations.find((d) => d.destination === unreachable)!;
    expect(bad.switched).toBe(false);
    expect(bad.summary.errors.length).toBeGreaterThan(0);
    for (const d of dests()) expect(readlinkSync(join(d, 'current'))).toBe(`releases/${second.release}`);
    for (const d of result.destinations.filter((x) => x.destination !== unreachable)) {
      expect(d.switched).toBe(false);
      expect(d.summary.errors.map((e) => e.code)).toContain('ABORTED');
    }
    expect(first.release).toBeDefined();
  });
});
