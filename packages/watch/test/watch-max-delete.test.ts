/**
 * --max-delete in watch mode: every batch and every catch-up is a run with the limit of its own, per
 * destination; a destination whose deletions the limit stopped goes down like any failed one, and its
 * catch-up (a new run) deletes up to the limit again.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startWatch, useTempDirs, waitMirrored, type Running } from './watch-helpers.js';

const tempDir = useTempDirs('deltacast-watch-max-delete-');
let running: Running | undefined;
afterEach(async () => {
  await running?.watch.close();
  running = undefined;
});

describe('watch with maxDelete', () => {
  it('limits each catch-up and each batch per destination; one over the limit goes down with MAX_DELETE and converges by later runs', async () => {
    const root = tempDir();
    const src = join(root, 'src');
    mkdirSync(join(src, 'docs'), { recursive: true });
    for (const name of ['a', 'b', 'c']) writeFileSync(join(src, 'docs', `${name}.md`), name);
    const dests = [join(root, 'dest1'), join(root, 'dest2')];
    mkdirSync(dests[1]);
    for (const name of ['x1', 'x2', 'x3']) writeFileSync(join(dests[1], name), name);

    running = await startWatch({ source: `${src}/`, destinations: dests, maxDelete: 1 });
    // The first full sync is one run: dest2 loses one of its three extraneous files and goes down.
    const initial = running.of('batch-done')[0];
    expect(initial.reason).toBe('initial');
    expect(initial.results.find((r) => r.destination === dests[1])).toMatchObject({ ok: false, deleted: 1, errors: 1 });
    expect(initial.results.find((r) => r.destination === dests[0])).toMatchObject({ ok: true, deleted: 0 });
    expect(running.of('destination-down')).toMatchObject([
      { destination: dests[1], code: 'MAX_DELETE', message: 'the --max-delete limit stopped deletions: 2 of 3 extraneous entries skipped (at most 1 per run)' },
    ]);
    expect(running.of('error')).toMatchObject([{ destination: dests[1], path: '', code: 'MAX_DELETE' }]);
    // Each catch-up is a run of its own: one more each time, until none is left.
    await waitMirrored(running, src, dests);
    const catchUps = running.of('batch-done').filter((b) => b.reason === 'catch-up');
    expect(catchUps.map((b) => b.results.map((r) => [r.destination, r.ok, r.deleted]))).toEqual([[[dests[1], false, 1]], [[dests[1], true, 1]]]);

    // Deleted at the source together: whichever runs carry them, none deletes more than one per destination.
    const before = running.of('batch-done').length;
    for (const name of ['a', 'b', 'c']) rmSync(join(src, 'docs', `${name}.md`));
    await waitMirrored(running, src, dests);
    const later = running.of('batch-done').slice(before);
    expect(later.flatMap((b) => b.results.map((r) => r.deleted)).every((n) => n <= 1)).toBe(true);
    expect(later.flatMap((b) => b.results.map((r) => r.deleted)).reduce((a, b) => a + b, 0)).toBe(6);
  });
});
