import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SourceLayout } from '../src/scopes.js';
import { findUnsettled, liftMissing } from '../src/settle.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'dc-settle-'));
  dirs.push(d);
  return d;
}
const old = (path: string) => utimesSync(path, 1_600_000_000, 1_600_000_000);

describe('findUnsettled', () => {
  it('holds back files written or seen changing within the settle time, inside directory scopes too', () => {
    const root = tree();
    mkdirSync(join(root, 'd/e'), { recursive: true });
    for (const f of ['quiet', 'd/quiet', 'd/e/fresh', 'evented', 'd/e/excluded']) writeFileSync(join(root, f), f);
    for (const f of ['quiet', 'd/quiet', 'evented', 'd/e/excluded']) old(join(root, f));
    const now = Date.now();
    const result = findUnsettled(['quiet', 'd', 'evented', 'missing'], {
      layout: new SourceLayout(`${root}/`),
      now,
      settleMs: 10_000,
      lastEvent: (wire) => (wire === 'evented' ? now - 2000 : undefined),
      excludes: (wire) => wire.endsWith('excluded'),
    });
    expect(result.unsettled.sort()).toEqual(['d/e/fresh', 'evented']);
    expect(result.wakeAt).toBe(now - 2000 + 10_000);
  });

  it('everything old and quiet is settled; a future mtime alone does not hold a file back', () => {
    const root = tree();
    writeFileSync(join(root, 'a'), 'a');
    old(join(root, 'a'));
    writeFileSync(join(root, 'future'), 'f');
    utimesSync(join(root, 'future'), 4_000_000_000, 4_000_000_000);
    const result = findUnsettled([''], { layout: new SourceLayout(`${root}/`), now: Date.now(), settleMs: 500, lastEvent: () => undefined, excludes: () => false });
    expect(result).toEqual({ unsettled: [], wakeAt: undefined });
  });

  it('works with the "dir" source form (wire paths under the directory name)', () => {
    const root = tree();
    mkdirSync(join(root, 'site'));
    writeFileSync(join(root, 'site/new'), 'n');
    const result = findUnsettled(['site'], { layout: new SourceLayout(join(root, 'site')), now: Date.now(), settleMs: 60_000, lastEvent: () => undefined, excludes: () => false });
    expect(result.unsettled).toEqual(['site/new']);
  });
});

describe('liftMissing', () => {
  it('replaces a path whose parent is gone with its topmost missing ancestor', () => {
    const root = tree();
    mkdirSync(join(root, 'kept'));
    const layout = new SourceLayout(`${root}/`);
    expect(liftMissing(['gone/a/b', 'kept/gone', 'kept', 'top'], layout)).toEqual(['gone', 'kept/gone', 'kept', 'top']);
    const named = new SourceLayout(root);
    const top = named.top;
    expect(liftMissing([`${top}/gone/x`, `${top}/kept/y`], named)).toEqual([`${top}/gone`, `${top}/kept/y`]);
  });
});
