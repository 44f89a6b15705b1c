/**
 * --link-dest in a fan-out: each destination links, from its own DIR (relative to its root), the
 * new files that DIR holds as the source has them, and gets the rest; refused with staged commits.
 */
import { cpSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { file } from '../../transport/test/helpers/tree.js';
import { runFanout, useTempDirs, writeTree } from './helpers.js';

const temp = useTempDirs();

describe('fan-out with --link-dest', () => {
  it('links on every destination from its own previous snapshot; one whose snapshot drifted gets the file', async () => {
    const base = temp();
    const src = join(base, 'src');
    await writeTree(src, { 'same.txt': file('same\n', { mtimeMs: 1_700_000_000_000 }), 'new.txt': file('new\n', { mtimeMs: 1_700_000_000_000 }) });
    const hosts = [join(base, 'web1'), join(base, 'web2')];
    for (const host of hosts) cpSync(src, join(host, 'monday'), { recursive: true, preserveTimestamps: true });
    writeFileSync(join(hosts[1], 'monday', 'same.txt'), 'drifted\n');
    writeFileSync(join(src, 'new.txt'), 'new, edited\n');
    const { result } = await runFanout({ source: `${src}/`, destinations: hosts.map((h) => join(h, 'tuesday')), localAgent: 'in-process', linkDest: ['../monday'] });
    expect(result.ok).toBe(true);
    expect(result.destinations.map((d) => d.summary.linked)).toEqual([1, 0]);
    expect(statSync(join(hosts[0], 'tuesday', 'same.txt')).ino).toBe(statSync(join(hosts[0], 'monday', 'same.txt')).ino);
    expect(statSync(join(hosts[1], 'tuesday', 'same.txt')).ino).not.toBe(statSync(join(hosts[1], 'monday', 'same.txt')).ino);
  });

  it.each([{ atomic: 'tree' as const }, { commit: 'all-or-none' as const }, { release: true }])('is refused with %o (INVALID_OPTION)', async (mode) => {
    const base = temp();
    await writeTree(join(base, 'src'), { a: file('a\n') });
    await expect(runFanout({ source: `${join(base, 'src')}/`, destinations: [join(base, 'one')], localAgent: 'in-process', linkDest: ['../x'], ...mode })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
