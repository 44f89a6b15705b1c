// Faults the kernel will not produce on demand without changing global limits (sysctls), and races it
// will not lose on demand: fs.watch is wrapped so that chosen directories fail with a chosen error, or
// change just before or after their watch is added, and the real watchers can be made to emit an error
// or an event; fs/promises is wrapped so that a listing can be held, and lstat calls observed.
import type { FSWatcher } from 'node:fs';
import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Harness, waitFor } from './tree-watcher-helpers.js';

const faults = vi.hoisted(() => ({
  /** Absolute paths whose watch fails, with the error code it fails with. */
  refuse: new Map<string, string>(),
  /** Run once, just before the real watch of an absolute path. */
  beforeWatch: new Map<string, () => void>(),
  /** Run once, just after the real watch of an absolute path. */
  afterWatch: new Map<string, () => void>(),
  /** The live watcher of each absolute path. */
  watchers: new Map<string, FSWatcher>(),
  /** Listings (readdir) of these absolute paths start once the promise resolves. */
  holdListing: new Map<string, Promise<void>>(),
  /** Absolute paths whose listing was asked for, in order. */
  listings: [] as string[],
  /** Absolute paths of the lstat calls that completed, in order. */
  lstats: [] as string[],
  /** Absolute paths whose lstat fails, with the error code it fails with. */
  refuseLstat: new Map<string, string>(),
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const messages: Record<string, string> = {
    ENOSPC: 'System limit for number of file watchers reached',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
  };
  const once = (hooks: Map<string, () => void>, path: string) => {
    const hook = hooks.get(path);
    hooks.delete(path);
    hook?.();
  };
  const watch = ((path: string, ...rest: unknown[]) => {
    const code = faults.refuse.get(String(path));
    if (code !== undefined) {
      throw Object.assign(new Error(`${code}: ${messages[code] ?? 'refused'}, watch '${path}'`), {
        code,
        syscall: 'watch',
        path,
      });
    }
    once(faults.beforeWatch, String(path));
    const watcher = (fs.watch as (...args: unknown[]) => FSWatcher)(path, ...rest);
    faults.watchers.set(String(path), watcher);
    once(faults.afterWatch, String(path));
    return watcher;
  }) as typeof fs.watch;
  return { ...fs, default: { ...fs, watch }, watch };
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = (async (path: string, ...rest: unknown[]) => {
    faults.listings.push(String(path));
    await faults.holdListing.get(String(path));
    return (fsp.readdir as (...args: unknown[]) => Promise<unknown>)(path, ...rest);
  }) as typeof fsp.readdir;
  const lstat = (async (path: string, ...rest: unknown[]) => {
    const code = faults.refuseLstat.get(String(path));
    if (code !== undefined) {
      faults.lstats.push(String(path));
      throw Object.assign(new Error(`${code}: permission denied, lstat '${path}'`), { code, syscall: 'lstat', path });
    }
    try {
      return await (fsp.lstat as (...args: unknown[]) => Promise<unknown>)(path, ...rest);
    } finally {
      faults.lstats.push(String(path));
    }
  }) as typeof fsp.lstat;
  return { ...fsp, default: { ...fsp, readdir, lstat }, readdir, lstat };
});

const harnesses: Harness[] = [];
function harness(): Harness {
  const h = new Harness(Harness.tempDir());
  harnesses.push(h);
  return h;
}
const extraDirs: string[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
  for (const dir of extraDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  faults.refuse.clear();
  faults.beforeWatch.clear();
  faults.afterWatch.clear();
  faults.watchers.clear();
  faults.holdListing.clear();
  faults.listings.length = 0;
  faults.lstats.length = 0;
  faults.refuseLstat.clear();
});

describe('TreeWatcher: watches that cannot be added', () => {
  it('reports ENOSPC at start as a degraded rescan, watches the rest, and recovers when the watch succeeds', async () => {
    const h = harness();
    mkdirSync(h.path('full/below'), { recursive: true });
    mkdirSync(h.path('fine'));
    faults.refuse.set(h.path('full'), 'ENOSPC');
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
    faults.refuse.set(h.path('late'), 'ENOSPC');
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

describe('TreeWatcher: a directory that exists is never left unwatched in silence', () => {
  it('takes ENOENT from fs.watch for a directory that is still there as a failure, and recovers', async () => {
    const h = harness();
    mkdirSync(h.path('ghost/below'), { recursive: true });
    faults.refuse.set(h.path('ghost'), 'ENOENT');
    await h.start();
    expect(h.rescans(), h.received()).toHaveLength(1);
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch ghost: ENOENT.*still a directory/);
    h.expectWatched(2); // root and ghost/below
    writeFileSync(h.path('ghost/below/f'), 'x');
    await h.waitChange('ghost/below/f');

    faults.refuse.clear();
    const before = h.signals.length;
    utimesSync(h.path('ghost'), new Date(), new Date());
    await waitFor(() => h.rescans().length === 2, () => `the recovery rescan (${h.received()})`);
    expect(h.rescans()[1]).toEqual({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
    expect(h.signals.slice(before)).toContainEqual({ type: 'change', path: 'ghost' });
    h.expectWatched(3);
    writeFileSync(h.path('ghost/g'), 'x');
    await h.waitChange('ghost/g');
  });

  it('stays degraded while a directory cannot be looked at (EACCES), then says when it is watched again', async () => {
    const h = harness();
    await h.start();
    faults.refuseLstat.set(h.path('locked'), 'EACCES');
    mkdirSync(h.path('locked'));
    await waitFor(() => h.rescans().length === 1, () => `a degraded rescan (${h.received()})`);
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch locked: EACCES/);

    faults.refuseLstat.clear();
    utimesSync(h.path('locked'), new Date(), new Date());
    await waitFor(() => h.rescans().length === 2, () => `the recovery rescan (${h.received()})`);
    expect(h.rescans()[1]).toEqual({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
    h.expectWatched(2);
    writeFileSync(h.path('locked/f'), 'x');
    await h.waitChange('locked/f');
  });

  /** A watched `fine` holding `fine/locked`, whose lstat fails with EACCES: returned once that is reported. */
  async function lockedInFine(): Promise<Harness> {
    const h = harness();
    mkdirSync(h.path('fine'));
    await h.start();
    faults.refuseLstat.set(h.path('fine/locked'), 'EACCES');
    mkdirSync(h.path('fine/locked'));
    await waitFor(() => h.rescans().length === 1, () => `a degraded rescan (${h.received()})`);
    faults.refuseLstat.clear(); // removed next: its lstat says ENOENT
    return h;
  }

  async function expectRecovered(h: Harness): Promise<void> {
    await waitFor(() => h.rescans().length === 2, () => `the recovery rescan (${h.received()})`);
    expect(h.rescans()[1]).toEqual({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
  }

  it('stops counting a directory that could not be looked at once it is gone, and says so', async () => {
    const h = await lockedInFine();
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    rmSync(h.path('fine'), { recursive: true });
    await expectRecovered(h);
    await h.waitChange('fine');
    h.expectWatched(1);
  });

  it('forgets a directory that could not be looked at once it is removed, its parent staying', async () => {
    const h = await lockedInFine();
    rmSync(h.path('fine/locked'), { recursive: true });
    await expectRecovered(h);
    h.expectWatched(2);
  });

  it('takes ENOTDIR from fs.watch for a new directory that is still there as a failure, and watches below it', async () => {
    const h = harness();
    await h.start();
    faults.refuse.set(h.path('late'), 'ENOTDIR');
    mkdirSync(h.path('late/inner'), { recursive: true });
    await waitFor(() => h.rescans().length === 1, () => `a degraded rescan (${h.received()})`);
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch late: ENOTDIR/);
    expect(h.changed('late')).toBe(true);
    h.expectWatched(2); // root and late/inner
    writeFileSync(h.path('late/inner/f'), 'x');
    await h.waitChange('late/inner/f');
  });

  it('stays silent about a directory deleted between its lstat and its watch: its deletion is an event', async () => {
    const h = harness();
    await h.start();
    // The watch fails with a real ENOENT.
    faults.beforeWatch.set(h.path('brief'), () => rmSync(h.path('brief'), { recursive: true }));
    mkdirSync(h.path('brief/sub'), { recursive: true });
    await waitFor(() => !faults.beforeWatch.has(h.path('brief')), 'the attempt to watch brief');
    await h.waitChange('brief');
    await h.sentinel();
    expect(h.rescans(), h.received()).toEqual([]);
    h.expectWatched(1);
  });

  it('reports a directory replaced every time it is watched as a failure, and watches it once it holds still', async () => {
    const h = harness();
    const aside = Harness.tempDir();
    extraDirs.push(aside);
    await h.start();
    // Replaced (moved aside, another made in its place) right after each watch, as many times as the
    // watcher tries in a row: each time the lstat after the watch finds another inode.
    let replaced = 0;
    const replace = () => {
      replaced++;
      renameSync(h.path('moving'), join(aside, `old${replaced}`));
      mkdirSync(h.path('moving/sub'), { recursive: true });
      if (replaced < 3) faults.afterWatch.set(h.path('moving'), replace);
    };
    faults.afterWatch.set(h.path('moving'), replace);
    mkdirSync(h.path('moving/sub'), { recursive: true });
    // The replacements raise events in the root, whose look watches the directory that stays.
    await waitFor(() => h.rescans().length === 2, () => `a degraded rescan and a recovery (${h.received()})`);
    expect(replaced).toBe(3);
    expect(h.rescans()[0]).toMatchObject({ degraded: true });
    expect(h.rescans()[0].reason).toMatch(/^cannot watch moving: .*replaced/);
    expect(h.rescans()[1]).toEqual({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
    h.expectWatched(3); // root, moving, moving/sub
    writeFileSync(h.path('moving/sub/f'), 'x');
    await h.waitChange('moving/sub/f');
    writeFileSync(h.path('moving/g'), 'x');
    await h.waitChange('moving/g');
  });

  it('watches a directory replaced once while being watched, without a rescan', async () => {
    const h = harness();
    const aside = Harness.tempDir();
    extraDirs.push(aside);
    await h.start();
    faults.afterWatch.set(h.path('moving'), () => {
      renameSync(h.path('moving'), join(aside, 'old'));
      mkdirSync(h.path('moving'));
    });
    mkdirSync(h.path('moving'));
    await waitFor(() => !faults.afterWatch.has(h.path('moving')), 'the first watch of moving');
    // Two watches may still be the root and the replaced directory: the watcher finds the new one at
    // its look after the watch. A file written meanwhile is then reported with that directory (a
    // change of 'moving' covers it), else on its own: either way, it is not missed.
    await h.waitWatched(2);
    const since = h.signals.length;
    writeFileSync(h.path('moving/f'), 'x');
    await waitFor(() => h.covers('moving/f', since), () => `a signal covering moving/f (${h.received()})`);
    // By then the new directory is watched: what is written in it next is reported on its own.
    writeFileSync(h.path('moving/g'), 'x');
    await h.waitChange('moving/g');
    await h.sentinel();
    expect(h.rescans(), h.received()).toEqual([]);
  });
});

describe('TreeWatcher: a new directory is reported once its subtree is watched', () => {
  it('holds its change while its subtree is listed, whatever events name it meanwhile', async () => {
    const h = harness();
    await h.start();
    let release!: () => void;
    faults.holdListing.set(h.path('new'), new Promise<void>((resolve) => (release = resolve)));
    mkdirSync(h.path('new/sub/deeper'), { recursive: true });
    // 'new' is watched (its listing comes after its watch), its subdirectories are not yet.
    await waitFor(() => faults.listings.includes(h.path('new')), 'the listing of new');
    h.expectWatched(2);
    const looks = () => faults.lstats.filter((p) => p === h.path('new')).length;
    const seen = looks();
    faults.watchers.get(h.dir)!.emit('change', 'change', 'new');
    // Once its lstat has returned, the look at the second event has done what it does at once.
    await waitFor(() => looks() > seen, 'the look at the second event');
    expect(h.changes(), h.received()).toEqual([]);

    release();
    await h.waitChange('new');
    await h.sentinel();
    expect(h.changes().filter((p) => p === 'new').length).toBeGreaterThan(0);
    h.signals.forEach((signal, i) => {
      if (signal.type === 'change' && signal.path === 'new') {
        expect(h.watchedAt[i], `watches when change ${i} was sent (${h.received()})`).toBe(4);
      }
    });
    h.expectWatched(4); // root, new, new/sub, new/sub/deeper
    expect(h.rescans()).toEqual([]);
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
