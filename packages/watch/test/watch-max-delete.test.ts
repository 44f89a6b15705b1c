/**
 * --max-delete in watch mode: every batch and every catch-up is a run with the limit of its own, per
 * destination. A destination whose only failure is the limit took the rest of the run: it stays up,
 * is reported (deletions-held) and is not caught up again, so the skipped entries wait for a later run
 * that covers them (each limited again) instead of going NUM at a time, retry after retry.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startWatch, useTempDirs, waitFor, type Running } from './watch-helpers.js';

const tempDir = useTempDirs('deltacast-watch-max-delete-');
let running: Running | undefined;
afterEach(async () => {
  await running?.watch.close();
  running = undefined;
});

describe('watch with maxDelete', () => {
  it('holds the deletions past the limit at a destination that stays up, and limits every later run', async () => {
    const root = tempDir();
    const src = join(root, 'src');
    mkdirSync(join(src, 'docs'), { recursive: true });
    for (const name of ['a', 'b', 'c']) writeFileSync(join(src, 'docs', `${name}.md`), name);
    const dests = [join(root, 'dest1'), join(root, 'dest2')];
    mkdirSync(dests[1]);
    for (const name of ['x1', 'x2', 'x3']) writeFileSync(join(dests[1], name), name);

    running = await startWatch({ source: `${src}/`, destinations: dests, maxDelete: 1 });
    // The first full sync is one run: dest2 loses one of its three extraneous files, gets the rest.
    const initial = running.of('batch-done')[0];
    expect(initial.reason).toBe('initial');
    expect(initial.results.find((r) => r.destination === dests[1])).toMatchObject({ ok: false, deleted: 1, errors: 1 });
    for (const name of ['a', 'b', 'c']) expect(existsSync(join(dests[1], 'docs', `${name}.md`))).toBe(true);
    expect(initial.results.find((r) => r.destination === dests[0])).toMatchObject({ ok: true, deleted: 0 });
    expect(running.of('error')).toMatchObject([{ destination: dests[1], path: '', code: 'MAX_DELETE' }]);
    expect(running.of('deletions-held')).toEqual([
      { type: 'deletions-held', destination: dests[1], message: 'the --max-delete limit stopped deletions: 2 of 3 extraneous entries skipped (at most 1 per run)' },
    ]);
    // Up, not down: no catch-up follows (it would delete one more each time).
    expect(running.of('destination-down')).toEqual([]);
    expect(running.watch.status().destinations.every((d) => d.state === 'up')).toBe(true);

    // A later batch elsewhere goes to both, and leaves the held entries where they are.
    writeFileSync(join(src, 'docs', 'd.md'), 'd');
    await waitFor(() => existsSync(join(dests[0], 'docs', 'd.md')) && existsSync(join(dests[1], 'docs', 'd.md')), 'docs/d.md at both destinations');
    await running.watch.idle();
    expect(running.of('batch-done').some((b) => b.reason === 'catch-up')).toBe(false);
    expect(['x1', 'x2', 'x3'].filter((name) => existsSync(join(dests[1], name)))).toHaveLength(2);

    // Deleted at the source together: each run deletes at most one per destination, and the rest wait.
    const before = running.of('batch-done').length;
    const heldBefore = running.of('deletions-held').length;
    for (const name of ['a', 'b', 'c']) rmSync(join(src, 'docs', `${name}.md`));
    await waitFor(() => running!.of('batch-done').length > before, 'a batch with the deletions');
    await running.watch.idle();
    const later = running.of('batch-done').slice(before);
    for (const dest of dests) {
      const perRun = later.map((b) => b.results.find((r) => r.destination === dest)?.deleted ?? 0);
      expect(perRun.every((n) => n <= 1)).toBe(true);
      const left = ['a', 'b', 'c'].filter((name) => existsSync(join(dest, 'docs', `${name}.md`)));
      expect(left).toHaveLength(3 - perRun.reduce((x, y) => x + y, 0));
    }
    // Removed within a millisecond, the three come in one batch (200 ms window): two wait at each destination.
    expect(later).toHaveLength(1);
    for (const dest of dests) expect(['a', 'b', 'c'].filter((name) => existsSync(join(dest, 'docs', `${name}.md`)))).toHaveLength(2);
    expect(running.of('deletions-held').length).toBe(heldBefore + 2);
    expect(running.of('destination-down')).toEqual([]);
  });
});
