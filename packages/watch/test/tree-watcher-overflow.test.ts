// A real inotify queue overflow: the event loop is blocked (execFileSync) while a shell raises more
// events than the kernel queue holds (touching 200 files over and over: consecutive events differ, so
// the kernel cannot merge them), so the kernel drops events and libuv drops IN_Q_OVERFLOW. The
// directory created last has its IN_CREATE lost: only the rescan's re-walk can find and watch it.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, waitFor } from './tree-watcher-helpers.js';

function maxQueuedEvents(): number | null {
  try {
    return Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'), 10);
  } catch {
    return null;
  }
}

const queued = maxQueuedEvents();
// A raised limit would make this test slow: skip there.
const skip = queued === null ? 'no /proc/sys/fs/inotify (not Linux)' : queued > 65536 ? `max_queued_events is ${queued}` : '';

const harnesses: Harness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

describe.skipIf(skip !== '')(`TreeWatcher: a real queue overflow ${skip}`, () => {
  it('is inferred from the size of one turn, and the rescan watches the directory whose event was lost', async () => {
    const h = new Harness(Harness.tempDir());
    harnesses.push(h);
    const w = await h.start(); // the default threshold, from max_queued_events
    const rounds = Math.ceil((queued! + 2000) / 200);
    const script = `seq -f f%g 1 200 | xargs touch && i=0 && while [ $i -lt ${rounds} ]; do touch f*; i=$((i+1)); done && mkdir late && touch late/early`;
    execFileSync('sh', ['-c', script], { cwd: h.dir });
    await waitFor(() => h.rescans().length > 0, 'a rescan');
    expect(h.rescans()[0]).toMatchObject({ degraded: false });
    expect(h.rescans()[0].reason).toMatch(/may have overflowed/);
    h.expectWatched(2);
    expect(h.covers('late/early')).toBe(true);
    writeFileSync(h.path('late/after'), 'x');
    await h.waitChange('late/after');
    expect(h.rescans()).toHaveLength(1);
    w.close();
  });
});
