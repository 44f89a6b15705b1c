import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffTrees, file, hasRsync, link, rsyncDifferences, runSync, snapshotTree, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';

const tempDir = useTempDirs();

/** Syncs `spec` to a fresh destination twice: identical after the first run, nothing to do on the second. */
async function roundTrip(spec: TreeSpec): Promise<{ src: string; dst: string }> {
  const src = tempDir();
  const dst = tempDir();
  await writeTree(src, spec);
  const first = await runSync(`${src}/`, dst, { delete: true });
  expect(first.errors).toEqual([]);
  expect(first.ok).toBe(true);
  expect(await diffTrees(src, dst)).toEqual([]);
  if (hasRsync) expect(rsyncDifferences(src, dst)).toBe('');
  const second = await runSync(`${src}/`, dst, { delete: true });
  expect(second).toMatchObject({ ok: true, created: 0, updated: 0, deleted: 0, symlinks: 0, directories: 0 });
  return { src, dst };
}

const nfc = 'caf\u00e9';
const nfd = 'cafe\u0301';

describe('sync of awkward names', () => {
  it('keeps spaces, leading dashes, backslashes, newlines and shell characters', async () => {
    await roundTrip({
      'with space.txt': file('1'),
      ' leading and trailing ': file('2'),
      '-rf': file('3'),
      '--delete': file('4'),
      'back\\slash': file('5'),
      'line\nbreak': file('6'),
      'tab\there': file('7'),
      '$(echo pwned); `x` \'q\' "dq" *?[]': file('8'),
      'dir with space/-dash/inner\nline': file('9'),
      'link with space': link('with space.txt'),
      'link\nto newline': link('line\nbreak'),
    });
  });

  it('keeps NFC and NFD spellings of the same word as two names', async () => {
    expect(nfc.normalize('NFD')).toBe(nfd);
    const { dst } = await roundTrip({ [nfc]: file('composed'), [nfd]: file('decomposed'), [`${nfd}-dir/${nfc}`]: file('mixed') });
    const names = await readdir(dst);
    expect(names).toContain(nfc);
    expect(names).toContain(nfd);
    expect((await snapshotTree(dst)).get(nfd)?.size).toBe('decomposed'.length);
  });

  it('keeps non-Latin scripts, emoji and zero-width characters', async () => {
    await roundTrip({ '日本語/ファイル.txt': file('ja'), 'Ελληνικά': file('el'), '🦀🚀.bin': file('emoji'), 'zero\u200bwidth': file('zw'), 'עברית': link('Ελληνικά') });
  });

  it('reaches 50 levels deep', async () => {
    const deep = Array.from({ length: 50 }, (_, i) => `level-${String(i).padStart(2, '0')}`).join('/');
    const { dst } = await roundTrip({ [`${deep}/leaf.txt`]: file('deep'), [`${deep}/link`]: link('leaf.txt') });
    expect((await snapshotTree(dst)).get(`${deep}/leaf.txt`)?.size).toBe(4);
  });

  it('keeps long names: a 200-byte file name and a 255-byte directory name', async () => {
    await roundTrip({ ['f'.repeat(200)]: file('long'), [`${'d'.repeat(255)}/x`]: file('in a long dir'), [`${'é'.repeat(100)}.txt`]: file('200 bytes of é') });
  });

  // NAME_MAX is 255 bytes; the agent's temporary name `.${name}.dctmp-xxxxxxxx` adds 16 bytes, so any
  // file or symlink name over 239 bytes fails with ENAMETOOLONG although the name itself is legal.
  it('keeps a 255-byte file name', async () => {
    await roundTrip({ ['n'.repeat(255)]: file('longest') });
  });

  it('keeps a 255-byte symlink name', async () => {
    await roundTrip({ ['l'.repeat(255)]: link('target') });
  });

  it('lists names the destination already has, whatever they are, and deletes them', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { keep: file('k') });
    await writeTree(dst, { 'line\nbreak': file('x'), [nfd]: file('y'), '-rf/--no-preserve-root': file('z'), ['e'.repeat(255)]: file('long') });
    expect(await runSync(`${src}/`, dst, { delete: true })).toMatchObject({ ok: true, created: 1, deleted: 4 });
    expect(await readdir(dst)).toEqual(['keep']);
  });

  it('keeps the NFC and NFD names apart when one of them changes', async () => {
    const src = tempDir();
    const dst = tempDir();
    await writeTree(src, { [nfc]: file('composed'), [nfd]: file('decomposed') });
    await runSync(`${src}/`, dst);
    await writeTree(src, { [nfd]: file('decomposed, edited', { mtimeMs: Date.now() }) });
    expect(await runSync(`${src}/`, dst)).toMatchObject({ ok: true, updated: 1, unchanged: 1 });
    expect(await diffTrees(src, dst)).toEqual([]);
    expect(await readdir(join(dst))).toHaveLength(2);
  });
});
