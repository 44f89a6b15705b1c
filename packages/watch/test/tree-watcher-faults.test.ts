// Faults the kernel will not produce on demand without changing global limits (sysctls): fs.watch is
// wrapped so that chosen directories fail with ENOSPC, and the real watchers can be made to emit an
// error or an event without a filename.
import type { FSWatcher } from 'node:fs';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Harness, waitFor } from './tree-watcher-helpers.js';

const faults = vi.hoisted(() => ({
  /** Absolute paths whose watch fails with ENOSPC. */
  refuse: new Set<string>(),
  /** The live watcher of each absolute path. */
  watchers: new Map<string, FSWatcher>(),
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const watch = ((path: string, ...rest: unknown[]) => {
    if (faults.refuse.has(String(path))) {
      throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${path}'`), {
        code: 'ENOSPC',
        errno: -28,
        syscall: 'watch',
        path,
      });
    }
    const watcher = (fs.watch as (...args: unknown[]) => FSWatcher)(path, ...rest);
    faults.watchers.set(String(path), watcher);
    return watcher;
  }) as typeof fs.watch;
  return { ...fs, default: { ...fs, watch }, watch };
});

const harnesses: Harness[] = [];
function harness(): Harness {
  const h = new Harness(Harness.tempDir());
  harnesses.push(h);
  return h;
}
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
  faults.refuse.clear();
  faults.watchers.clear();
});

describe('TreeWatcher: watches that cannot be added', () => {
  it('reports ENOSPC at start as a degraded rescan, watches the rest, and recovers when the watch succeeds', async () => {
    const h = harness();
    mkdirSync(h.path('full/below'), { recursive: true });
    mkdirSync(h.path('fine'));
    faults.refuse.add(h.path('full'));
    await h.start();
    h.expectWatched(3); // root, fine and full/below
    expect(h.rescans()).toHaveLength(1);
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch full: ENOSPC.*max_user_watches/);
    writeFileSync(h.path('fine/f'), 'x');
    await h.waitChange('fine/f');
    writeFileSync(h.path('full/below/g'), 'x');
    await h.waitChange('full/below/g');

    // An attribute change of the directory makes its parent name it: the watcher tries again.
    faults.refuse.clear();
    const before = h.signals.length;
    utimesSync(h.path('full'), new Date(), new Date());
    await waitFor(() => h.rescans().length === 2, 'the recovery rescan');
    expect(h.rescans()[1]).toEqual({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
    expect(h.signals.slice(before)).toContainEqual({ type: 'change', path: 'full' });
    h.expectWatched(4);
    writeFileSync(h.path('full/h'), 'x');
    await h.waitChange('full/h');
  });

  it('reports a new directory that cannot be watched, and still scans below it', async () => {
    const h = harness();
    await h.start();
    faults.refuse.add(h.path('late'));
    mkdirSync(h.path('late/inner'), { recursive: true });
    await waitFor(() => h.rescans().length === 1, 'a degraded rescan');
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch late: ENOSPC/);
    expect(h.changed('late')).toBe(true);
    h.expectWatched(2); // root and late/inner
    writeFileSync(h.path('late/inner/f'), 'x');
    await h.waitChange('late/inner/f');
  });

  it('treats an error from a live watcher as degraded and keeps watching the rest', async () => {
    const h = harness();
    mkdirSync(h.path('a'));
    mkdirSync(h.path('b'));
    await h.start();
    h.expectWatched(3);
    faults.watchers.get(h.path('a'))!.emit('error', Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
    expect(h.rescans()).toEqual([
      { type: 'rescan', reason: expect.stringMatching(/^watching a failed: ENOSPC/), degraded: true },
    ]);
    h.expectWatched(2);
    writeFileSync(h.path('b/f'), 'x');
    await h.waitChange('b/f');
  });
});

describe('TreeWatcher: events without a filename', () => {
  it('reports the directory, after scanning it for directories it does not watch yet', async () => {
    const h = harness();
    mkdirSync(h.path('d'));
    await h.start();
    // Close the real watch behind the watcher's back, so that the subdirectory's creation goes unseen.
    faults.watchers.get(h.path('d'))!.close();
    mkdirSync(h.path('d/unseen'));
    faults.watchers.get(h.path('d'))!.emit('change', 'rename', null);
    await h.waitChange('d');
    h.expectWatched(3);
    writeFileSync(join(h.path('d/unseen'), 'f'), 'x');
    await h.waitChange('d/unseen/f');
  });
});
