/**
 * --chmod (src/chmod.ts): rsync's clause syntax and semantics, checked by hand on a few cases and
 * against rsync itself, mode by mode, where rsync is installed; then end to end through a sync.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChmod, parseChmod } from '../src/chmod.js';
import { sync } from '../src/sync.js';
import { hasRsync, snapshotTree, useTempDirs, writeTree, file, dir } from './helpers/tree.js';

const temp = useTempDirs('deltacast-chmod-');

const mode = (spec: string, m: number, isDirectory = false) => applyChmod(parseChmod(spec), m, isDirectory);

describe('parseChmod and applyChmod', () => {
  it('octal modes, D and F prefixes, clauses in order', () => {
    expect(mode('D2775,F664', 0o600)).toBe(0o664);
    expect(mode('D2775,F664', 0o700, true)).toBe(0o2775);
    // Each clause has its own prefix: the last, unprefixed one applies to directories too.
    expect(mode('Du=rwx,go=rx,Fu=rw,go=r', 0o755, true)).toBe(0o744);
    expect(mode('Du=rwx,go=rx,Fu=rw,go=r', 0o700)).toBe(0o644);
  });

  it('X is x for directories and for files that had an execute bit before any clause', () => {
    expect(mode('a+X', 0o640)).toBe(0o640);
    expect(mode('a+X', 0o740)).toBe(0o751);
    expect(mode('a+X', 0o700, true)).toBe(0o711);
    // The file is judged by its mode before the clauses: x added earlier does not count.
    expect(mode('u+x,go+X', 0o640)).toBe(0o740);
  });

  it('s, t, = and copies between classes', () => {
    expect(mode('ug+s', 0o640)).toBe(0o6640);
    expect(mode('o+t', 0o755, true)).toBe(0o1755);
    expect(mode('go=', 0o755)).toBe(0o700);
    expect(mode('g=u', 0o640)).toBe(0o660);
    expect(mode('o=g', 0o4750)).toBe(0o4755);
    expect(mode('g-u', 0o775)).toBe(0o705);
    expect(mode('u=rw', 0o4755)).toBe(0o4655); // = without s keeps the set-id bit
    expect(mode('u=rws', 0o755)).toBe(0o4655);
  });

  it('without a who, the bits are less the umask', () => {
    const umask = process.umask();
    expect(mode('+w', 0o400)).toBe((0o400 | 0o222) & ~umask | (0o400 & umask));
    expect(mode('u+w', 0o400)).toBe(0o600);
  });

  it.each(['', 'u', 'u+r-x', 'q+r', 'u+z', 'D', 'DF644', 'u644', '8', '17777', 'g=uo', 'u=rg', ' u+r'])('refuses %j with INVALID_OPTION', (spec) => {
    expect(() => parseChmod(spec)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

const SPECS = [
  'D2775,F664',
  '755',
  'u+rwX,go-w',
  'Du=rwx,go=rx,Fu=rw,go=r',
  'a+X',
  '+X',
  'F+X',
  'u+x,go+X',
  'go=',
  'a=',
  'ug+s',
  'o+s',
  'u=rws',
  'u=rw',
  '+t',
  'o-t',
  'g=u',
  'o=g',
  'g-u',
  '=u',
  '+x',
  '=r',
  'a-w',
  'Dg+s,Fg-s',
  'Fo-rwx',
];
const FILE_MODES = [0o640, 0o750, 0o4755, 0o600, 0o2711, 0o1604];
const DIR_MODES = [0o755, 0o700, 0o2775, 0o1777, 0o750];

describe.skipIf(!hasRsync)(`the same modes as rsync -a --chmod ${hasRsync ? '' : '(skipped: rsync is not installed)'}`, () => {
  it.each(SPECS)('%s', (spec) => {
    const base = temp();
    const src = join(base, 'src');
    mkdirSync(src);
    for (const m of FILE_MODES) {
      writeFileSync(join(src, `f${m.toString(8)}`), 'x');
      chmodSync(join(src, `f${m.toString(8)}`), m);
    }
    for (const m of DIR_MODES) {
      mkdirSync(join(src, `d${m.toString(8)}`));
      chmodSync(join(src, `d${m.toString(8)}`), m);
    }
    const dst = join(base, 'dst');
    const run = spawnSync('rsync', ['-a', `--chmod=${spec}`, `${src}/`, `${dst}/`], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const clauses = parseChmod(spec);
    for (const [list, isDirectory, letter] of [
      [FILE_MODES, false, 'f'],
      [DIR_MODES, true, 'd'],
    ] as const) {
      for (const m of list) {
        const got = lstatSync(join(dst, `${letter}${m.toString(8)}`)).mode & 0o7777;
        expect({ spec, source: m.toString(8), mode: applyChmod(clauses, m, isDirectory).toString(8) }).toEqual({ spec, source: m.toString(8), mode: got.toString(8) });
      }
    }
  });
});

describe('sync with chmod', () => {
  it('sends the changed modes (not to symlinks), and a second run finds nothing to do', async () => {
    const base = temp();
    const src = join(base, 'src');
    await writeTree(src, { 'bin/run': file('#!/bin/sh\n', { mode: 0o700 }), 'bin': dir({ mode: 0o700 }), 'secret.txt': file('s', { mode: 0o600 }) });
    const dst = join(base, 'dst');
    const chmod = 'Du=rwx,Dgo=rx,Fu=rw,Fgo=r,F+X';
    const first = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chmod });
    expect(first.errors).toEqual([]);
    const tree = await snapshotTree(dst);
    expect(tree.get('bin')?.mode).toBe(0o755);
    expect(tree.get('bin/run')?.mode).toBe(0o755);
    expect(tree.get('secret.txt')?.mode).toBe(0o644);
    expect(lstatSync(join(src, 'secret.txt')).mode & 0o7777).toBe(0o600); // the source is not touched
    const second = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process', chmod });
    expect(second).toMatchObject({ created: 0, updated: 0, attributes: 0, unchanged: 2 });
    // Without --chmod the source's own modes come back.
    const plain = await sync({ source: `${src}/`, destination: dst, localAgent: 'in-process' });
    expect(plain.attributes).toBe(2);
    expect((await snapshotTree(dst)).get('secret.txt')?.mode).toBe(0o600);
  });

  it('refuses a malformed value before connecting', async () => {
    const base = temp();
    await expect(sync({ source: base, destination: join(base, 'never'), localAgent: 'in-process', chmod: 'u+q' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
