import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PathError } from '../src/errors.js';
import { MAX_PATH_BYTES } from '../src/messages.js';
import fc from 'fast-check';
import { checkWirePath, joinWire, resolveInRoot, wirePathComponents } from '../src/paths.js';
import { useTempDirs } from './helpers/tree.js';

function refusal(path: string): PathError {
  try {
    wirePathComponents(path);
  } catch (error) {
    expect(error).toBeInstanceOf(PathError);
    expect((error as PathError).details).toMatchObject({ path });
    return error as PathError;
  }
  throw new Error(`${JSON.stringify(path)} was accepted`);
}

async function refusalIn(root: string, path: string): Promise<PathError> {
  const error = await resolveInRoot(root, path).then(
    (resolved) => new Error(`${JSON.stringify(path)} resolved to ${resolved}`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PathError);
  return error as PathError;
}

describe('wirePathComponents', () => {
  it('splits relative paths; "" is the root', () => {
    expect(wirePathComponents('')).toEqual([]);
    expect(wirePathComponents('a')).toEqual(['a']);
    expect(wirePathComponents('a/b c/.hidden/..dots/d..')).toEqual(['a', 'b c', '.hidden', '..dots', 'd..']);
    expect(wirePathComponents('back\\slash/-dash')).toEqual(['back\\slash', '-dash']);
  });

  it('refuses absolute paths', () => {
    for (const p of ['/', '/etc/passwd', '//x']) expect(refusal(p).code).toBe('PATH_ABSOLUTE');
  });

  it('refuses any ".." component', () => {
    for (const p of ['..', '../x', 'a/..', 'a/../b', 'a/b/../../..']) expect(refusal(p).code).toBe('PATH_ESCAPE');
  });

  it('refuses ".", empty components and NUL', () => {
    for (const p of ['.', './a', 'a/.', 'a//b', 'a/', 'a/b/', 'a\0b', '\0']) expect(refusal(p).code).toBe('PATH_INVALID');
  });

  it(`refuses paths longer than ${MAX_PATH_BYTES}`, () => {
    const longest = Array.from({ length: MAX_PATH_BYTES / 8 }, () => 'abcdefg').join('/');
    expect(longest.length).toBe(MAX_PATH_BYTES - 1);
    expect(wirePathComponents(`${longest}x`)).toHaveLength(MAX_PATH_BYTES / 8);
    expect(refusal(`${longest}xy`).code).toBe('PATH_INVALID');
  });

  it('joins child paths', () => {
    expect(joinWire('', 'a')).toBe('a');
    expect(joinWire('a/b', 'c')).toBe('a/b/c');
  });
});

describe('checkWirePath', () => {
  /** The error code a check throws, or 'ok'. */
  const outcome = (check: () => unknown) => {
    try {
      check();
      return 'ok';
    } catch (error) {
      expect(error).toBeInstanceOf(PathError);
      return (error as PathError).code;
    }
  };

  it('accepts and refuses exactly the paths wirePathComponents does, with the same code', () => {
    const piece = fc.constantFrom('a', 'b.c', '.', '..', '...', '', '/', '\0', ' ', 'é', '-x', '\n');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const path = pieces.join('');
        expect(outcome(() => checkWirePath(path))).toBe(outcome(() => wirePathComponents(path)));
      }),
      { numRuns: 3000 },
    );
    for (const path of ['a'.repeat(MAX_PATH_BYTES), 'a'.repeat(MAX_PATH_BYTES + 1), '../a', 'a/..', 'a//b', '/a', 'a/', './a', 'a/./b', '.a/..b/...']) {
      expect(outcome(() => checkWirePath(path)), JSON.stringify(path)).toBe(outcome(() => wirePathComponents(path)));
    }
  });
});

describe('resolveInRoot', () => {
  const tempDir = useTempDirs();
  let root: string;
  let outside: string;

  beforeAll(async () => {
    root = tempDir();
    outside = tempDir();
    await mkdir(join(root, 'dir/sub'), { recursive: true });
    await writeFile(join(root, 'dir/file'), 'x');
    await symlink(outside, join(root, 'out'));
    await symlink('sub', join(root, 'dir/inner-link'));
    await symlink(join(outside, 'target'), join(root, 'dir/leaf-link'));
  });

  it('gives the path under the root, missing parents allowed', async () => {
    expect(await resolveInRoot(root, '')).toBe(root);
    expect(await resolveInRoot(root, 'dir/sub/new')).toBe(join(root, 'dir/sub/new'));
    expect(await resolveInRoot(root, 'missing/deeper/still')).toBe(join(root, 'missing/deeper/still'));
  });

  it('refuses a symlinked parent, even one pointing inside the root', async () => {
    const e = await refusalIn(root, 'out/x');
    expect(e.code).toBe('PATH_SYMLINK');
    expect(e.details).toMatchObject({ path: 'out/x', symlink: 'out' });
    expect((await refusalIn(root, 'dir/inner-link/x')).details).toMatchObject({ symlink: 'dir/inner-link' });
    expect((await refusalIn(root, 'out/a/b/c')).code).toBe('PATH_SYMLINK');
  });

  it('refuses a file used as a parent', async () => {
    expect((await refusalIn(root, 'dir/file/x')).code).toBe('PATH_INVALID');
  });

  it('allows a symlink as the leaf (it is acted on, never followed)', async () => {
    expect(await resolveInRoot(root, 'out')).toBe(join(root, 'out'));
    expect(await resolveInRoot(root, 'dir/leaf-link')).toBe(join(root, 'dir/leaf-link'));
  });

  it('checks the wire path first', async () => {
    expect((await refusalIn(root, '../x')).code).toBe('PATH_ESCAPE');
    expect((await refusalIn(root, join(outside, 'x'))).code).toBe('PATH_ABSOLUTE');
  });
});
