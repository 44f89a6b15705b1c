import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanSource } from '../src/tree.js';
import { useTempDirs } from './helpers/tree.js';

const tempDir = useTempDirs();

/** A tree of `dirs` directories of `files` empty files each. */
function wideTree(dirs: number, files: number): string {
  const root = tempDir();
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir);
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `f${f}`), '');
  }
  return root;
}

describe('scanSource and the event loop', () => {
  it('gives the event loop turns while it scans, also within one large directory', async () => {
    const root = wideTree(1, 4000); // one directory: turns come between its entries, not only between directories
    let turns = 0;
    let scanning = true;
    const tick = (): void => {
      if (!scanning) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const started = performance.now();
    const tree = await scanSource(`${root}/`);
    const took = performance.now() - started;
    scanning = false;
    expect(tree.entries).toHaveLength(4001);
    // 4,000 lstats hold the thread for milliseconds; it is let go at least once per 2 ms of them or so.
    expect(took).toBeGreaterThan(1);
    expect(turns).toBeGreaterThanOrEqual(Math.min(3, Math.floor(took / 4)));
  });

  it('stops at its next turn when its signal is aborted, rejecting with the reason', async () => {
    const root = wideTree(20, 200);
    const stop = new AbortController();
    const reason = new Error('connection refused');
    const scan = scanSource(`${root}/`, undefined, { signal: stop.signal });
    setImmediate(() => stop.abort(reason));
    await expect(scan).rejects.toBe(reason);
  });

  it('scans as before when nothing else runs: parents first, names sorted', async () => {
    const root = wideTree(3, 40);
    const tree = await scanSource(`${root}/`);
    const paths = tree.entries.map((e) => e.path);
    expect(paths).toHaveLength(3 + 120);
    expect(paths[0]).toBe('d0');
    expect(paths[1]).toBe('d0/f0');
    expect(paths[2]).toBe('d0/f1');
    expect(paths[3]).toBe('d0/f10');
    expect(paths.indexOf('d1')).toBe(41);
  });
});
