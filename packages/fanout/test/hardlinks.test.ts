/**
 * -H in a fan-out: every destination gets the source's names of one file as one file; refused with
 * staged commits, where a staged file is not at its path for a link to find.
 */
import { linkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { file, linkGroups } from '../../transport/test/helpers/tree.js';
import { runFanout, useTempDirs, writeTree } from './helpers.js';

const temp = useTempDirs();

async function source(base: string): Promise<string> {
  const src = join(base, 'src');
  await writeTree(src, { a: file('group\n'), single: file('alone\n'), 'd/x': file('x\n') });
  linkSync(join(src, 'a'), join(src, 'd/b'));
  return src;
}

describe('fan-out with -H', () => {
  it('gives every destination the same groups of names', async () => {
    const base = temp();
    const src = await source(base);
    const roots = [join(base, 'one'), join(base, 'two'), join(base, 'three')];
    const { result } = await runFanout({ source: `${src}/`, destinations: roots, localAgent: 'in-process', hardLinks: true });
    expect(result.ok).toBe(true);
    for (const d of result.destinations) expect(d.summary).toMatchObject({ created: 3, hardlinks: 1 });
    for (const root of roots) expect(linkGroups(root)).toEqual([['a', 'd/b'], ['d/x'], ['single']]);
  });

  it.each([{ atomic: 'tree' as const }, { commit: 'all-or-none' as const }, { release: true }])('is refused with %o (INVALID_OPTION), before anything is written', async (mode) => {
    const base = temp();
    const src = await source(base);
    await expect(runFanout({ source: `${src}/`, destinations: [join(base, 'one')], localAgent: 'in-process', hardLinks: true, ...mode })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
