/**
 * lstat for the tree walks (the source scan and the agent's walk), without a Stats object.
 *
 * Node 20's fs.lstatSync builds a Stats and four Dates for every call (Node 22 makes the Dates lazy).
 * A walk reads five numbers of each entry, and for 20,000 entries those objects cost more than the
 * rest of the walk's JavaScript: measured on the agent, its CPU for a sync with nothing to do went
 * from 0.50-0.57 s to 0.39-0.47 s.
 *
 * So the numbers are read where fs.lstatSync reads them: the array that Node's fs binding fills,
 * called exactly as lstatSync calls it (`lstat(path, bigint, undefined, throwIfNoEntry)`; the
 * binding, not a copy of the system call). This is not public API, so it is used only once it has
 * shown that it agrees with fs.lstatSync, field for field, on a file, a directory, a symlink and a
 * missing path. Anywhere else (another Node release whose binding differs, no `process.binding`,
 * the permission model, `--pending-deprecation` which would warn about `process.binding`), this is
 * fs.lstatSync itself. Either way the result and the errors are lstatSync's.
 */
import { lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntryType } from './messages.js';

/** What a walk reads of an entry's lstat (a Stats has these fields too). */
export interface EntryStat {
  /** The device the entry is on (for -x, --one-file-system). */
  readonly dev: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  /** Links to the inode and its number (for -H, --hard-links). */
  readonly nlink: number;
  readonly ino: number;
}

/** An lstat as the walks call it: undefined for a missing entry (ENOENT), the error of fs.lstatSync otherwise. */
export type LstatFields = (path: string) => EntryStat | undefined;

/** The part of Node's fs binding used here: fills and returns its shared stat array, or undefined. */
export interface FsBinding {
  lstat(path: string, bigint: boolean, req: undefined, throwIfNoEntry: boolean): Float64Array | undefined;
}

const S_IFMT = 0o170000;

/** An entry's type from its mode: 'f', 'd', 'l', or undefined for devices, sockets and fifos (not synced). */
export function entryTypeOf(mode: number): EntryType | undefined {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'f';
    case 0o040000:
      return 'd';
    case 0o120000:
      return 'l';
    default:
      return undefined;
  }
}

const MAY_BE_GONE = { throwIfNoEntry: false } as const;

/** fs.lstatSync, as the walks call it. */
export const publicLstat: LstatFields = (path) => lstatSync(path, MAY_BE_GONE);

/**
 * An lstat reading `binding`'s stat array (indices as Node's getStatsFromBinding reads them: dev 0,
 * mode 1, uid 3, gid 4, size 8, mtime seconds 12 and nanoseconds 13).
 */
export function bindingLstat(binding: FsBinding): LstatFields {
  return (path) => {
    const a = binding.lstat(path, false, undefined, false);
    if (a === undefined) return undefined;
    return { dev: a[0], mode: a[1], nlink: a[2], uid: a[3], gid: a[4], ino: a[7], size: a[8], mtimeMs: a[12] * 1e3 + a[13] / 1e6 };
  };
}

/**
 * `fast` if it agrees with fs.lstatSync on a file, a directory, a symlink and a missing path (made
 * in a temporary directory), else fs.lstatSync. A probe that throws also means fs.lstatSync.
 */
export function checkedLstat(fast: LstatFields): LstatFields {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'deltacast-lstat-'));
    const file = join(dir, 'file');
    writeFileSync(file, 'seven b');
    symlinkSync('file', join(dir, 'link'));
    for (const path of [file, dir, join(dir, 'link')]) {
      const got = fast(path);
      const want = lstatSync(path);
      if (!got || got.dev !== want.dev || got.mode !== want.mode || got.uid !== want.uid || got.gid !== want.gid || got.size !== want.size || got.mtimeMs !== want.mtimeMs || got.nlink !== want.nlink || got.ino !== want.ino) {
        return publicLstat;
      }
    }
    if (fast(join(dir, 'missing')) !== undefined) return publicLstat;
    return fast;
  } catch {
    return publicLstat;
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** Node's fs binding, where it can be used without a warning or a refusal. */
function fsBinding(): FsBinding | undefined {
  const node = process as unknown as { binding?: (name: string) => unknown; permission?: unknown };
  if (typeof node.binding !== 'function' || node.permission !== undefined) return undefined;
  const options = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (options.includes('--pending-deprecation') || options.includes('--experimental-permission') || process.env.NODE_PENDING_DEPRECATION === '1') {
    return undefined;
  }
  try {
    const binding = node.binding('fs') as Partial<FsBinding> | undefined;
    return typeof binding?.lstat === 'function' ? (binding as FsBinding) : undefined;
  } catch {
    return undefined;
  }
}

let chosen: LstatFields | undefined;

/** The lstat the walks use: chosen (and checked) at its first call. */
export const lstatFields: LstatFields = (path) => {
  if (chosen === undefined) {
    const binding = fsBinding();
    chosen = binding ? checkedLstat(bindingLstat(binding)) : publicLstat;
  }
  return chosen(path);
};

/** Whether lstatFields reads the fs binding (true) or calls fs.lstatSync; for tests and diagnostics. */
export function lstatFieldsFast(): boolean {
  lstatFields(tmpdir());
  return chosen !== publicLstat;
}
