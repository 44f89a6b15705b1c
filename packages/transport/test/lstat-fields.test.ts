import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bindingLstat, checkedLstat, entryTypeOf, lstatFields, lstatFieldsFast, publicLstat, type EntryStat, type FsBinding } from '../src/lstat-fields.js';
import { useTempDirs } from './helpers/tree.js';

const tempDir = useTempDirs();

function fieldsOf(st: EntryStat | undefined) {
  return st && { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtimeMs: st.mtimeMs };
}

/** What lstatSync says of `path`: its fields, or its error's code. */
function expected(path: string) {
  try {
    return fieldsOf(lstatSync(path, { throwIfNoEntry: false }));
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code };
  }
}

function actual(path: string) {
  try {
    return fieldsOf(lstatFields(path));
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code };
  }
}

describe('lstatFields', () => {
  it("reads Node 20's fs binding, not fs.lstatSync, here", () => {
    // The fast path is taken on the Node release this project runs on; elsewhere it may fall back.
    if (process.versions.node.startsWith('20.')) expect(lstatFieldsFast()).toBe(true);
  });

  it('agrees with fs.lstatSync on every kind of entry, a missing one and a path through a file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'some bytes');
    mkdirSync(join(dir, 'sub'), { mode: 0o750 });
    symlinkSync('file', join(dir, 'link'));
    symlinkSync('nowhere', join(dir, 'dangling'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    for (const name of ['file', 'sub', 'link', 'dangling', 'fifo', 'missing', 'file/below', 'missing/below']) {
      expect(actual(join(dir, name)), name).toEqual(expected(join(dir, name)));
    }
    expect(actual(join(dir, 'missing'))).toBeUndefined();
    expect(actual(join(dir, 'file/below'))).toEqual({ error: 'ENOTDIR' });
    expect(entryTypeOf(lstatFields(join(dir, 'fifo'))!.mode)).toBeUndefined();
  });

  it('agrees with fs.lstatSync on sizes, modes and mtimes to the nanosecond', () => {
    const dir = tempDir();
    let n = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 70_000 }),
        fc.integer({ min: 0, max: 0o7777 }),
        fc.double({ min: -1e9, max: 4e9, noNaN: true }),
        (size, mode, seconds) => {
          const path = join(dir, `f${n++}`);
          writeFileSync(path, new Uint8Array(size), { mode: 0o600 });
          execFileSync('chmod', [mode.toString(8), path]);
          utimesSync(path, seconds, seconds);
          expect(fieldsOf(lstatFields(path))).toEqual(fieldsOf(lstatSync(path)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('gives entry types from modes', () => {
    expect(entryTypeOf(0o100644)).toBe('f');
    expect(entryTypeOf(0o040755)).toBe('d');
    expect(entryTypeOf(0o120777)).toBe('l');
    expect(entryTypeOf(0o010644)).toBeUndefined(); // fifo
    expect(entryTypeOf(0o020644)).toBeUndefined(); // character device
    expect(entryTypeOf(0o140755)).toBeUndefined(); // socket
  });
});

describe('checkedLstat', () => {
  const real = (process as unknown as { binding(name: string): FsBinding }).binding('fs');

  it("takes a binding that agrees with fs.lstatSync", () => {
    const fast = bindingLstat(real);
    expect(checkedLstat(fast)).toBe(fast);
  });

  it('falls back to fs.lstatSync for a binding that disagrees or throws', () => {
    const wrongSize: FsBinding = {
      lstat(path, bigint, req, throwIfNoEntry) {
        const a = real.lstat(path, bigint, req, throwIfNoEntry);
        if (a) a[8] += 1;
        return a;
      },
    };
    const shiftedFields: FsBinding = {
      lstat(path, bigint, req, throwIfNoEntry) {
        const a = real.lstat(path, bigint, req, throwIfNoEntry);
        return a && Float64Array.from(a.subarray(1));
      },
    };
    const missingFound: FsBinding = {
      lstat: (path, bigint, req) => real.lstat(path.endsWith('missing') ? '/' : path, bigint, req, false),
    };
    const throwing: FsBinding = {
      lstat() {
        throw new TypeError('The "path" argument must be of type string');
      },
    };
    for (const binding of [wrongSize, shiftedFields, missingFound, throwing]) {
      expect(checkedLstat(bindingLstat(binding))).toBe(publicLstat);
    }
  });
});
