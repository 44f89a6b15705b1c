/**
 * Paths from the wire are confined to the destination root. A wire path is relative, '/'-separated,
 * with no empty, '.' or '..' component and no NUL; "" names the root itself. Before an operation, every
 * parent directory inside the root is checked with lstat: a symlink there could lead out of the root,
 * so it is refused (PATH_SYMLINK). The leaf itself is never followed: it is replaced, unlinked or
 * renamed over, all of which act on a link, not its target.
 */
import { lstatSync } from 'node:fs';
import { PathError } from './errors.js';
import { MAX_PATH_BYTES } from './messages.js';

/** A wire path that is not plain: an empty, '.' or '..' component (a leading '/' makes an empty one), or a NUL. */
const NOT_PLAIN = /(?:^|\/)\.{0,2}(?=\/|$)|\0/;

/** Checks a wire path as wirePathComponents does, without splitting it (one regular-expression test). */
export function checkWirePath(path: string): void {
  if (path === '' || (path.length <= MAX_PATH_BYTES && !NOT_PLAIN.test(path))) return;
  wirePathComponents(path); // throws, saying why
}

/** Splits and checks a wire path; throws PathError (PATH_ABSOLUTE, PATH_ESCAPE, PATH_INVALID). */
export function wirePathComponents(path: string): string[] {
  if (path === '') return [];
  if (path.length > MAX_PATH_BYTES) throw new PathError('PATH_INVALID', `path longer than ${MAX_PATH_BYTES}`, { path });
  if (path.includes('\0')) throw new PathError('PATH_INVALID', `path contains NUL: ${JSON.stringify(path)}`, { path });
  if (path.startsWith('/')) throw new PathError('PATH_ABSOLUTE', `absolute path refused: ${JSON.stringify(path)}`, { path });
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '..') throw new PathError('PATH_ESCAPE', `path leaves the root: ${JSON.stringify(path)}`, { path });
    if (part === '' || part === '.') throw new PathError('PATH_INVALID', `malformed path: ${JSON.stringify(path)}`, { path });
  }
  return parts;
}

/**
 * The absolute local path of a wire path under `root`, after checking that no existing parent inside
 * the root is a symlink or a non-directory. Missing parents are fine (they will be created by mkdir
 * requests, which go through here too).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  return resolveInRootSync(root, path);
}

/**
 * resolveInRoot, synchronously (its checks are synchronous). `verified` holds directories already
 * checked (absolute paths, as built here): they are not checked again, and those checked now are
 * added. Whoever keeps it adds a directory only once its parents are in it, and forgets a directory
 * with everything under it when it removes or replaces it.
 */
export function resolveInRootSync(root: string, path: string, verified?: Set<string>): string {
  if (path === '') return root;
  checkWirePath(path);
  // `root` is absolute and normalized, the parts are plain names: joined without path.join's
  // normalizing pass, which cost more than the lstat below for every file of a large tree.
  const base = root.endsWith('/') ? root : `${root}/`;
  const slash = path.lastIndexOf('/');
  if (slash < 0) return base + path; // directly under the root: no parent to check
  // A known parent was checked with every directory above it (a directory is known only once its
  // parents are, and forgetting one forgets what lies under it): one lookup instead of one a level.
  if (verified !== undefined && verified.has(base + path.slice(0, slash))) return base + path;
  const parts = path.split('/');
  let current = base;
  for (let i = 0; i < parts.length - 1; i++) {
    current = i === 0 ? base + parts[0] : `${current}/${parts[i]}`;
    if (verified?.has(current)) continue;
    // Synchronous: a few cached metadata reads cost less than thread-pool round trips per file.
    const stats = lstatSync(current, { throwIfNoEntry: false });
    if (!stats) return base + path;
    if (stats.isSymbolicLink()) {
      throw new PathError('PATH_SYMLINK', `parent of ${JSON.stringify(path)} is a symlink: ${JSON.stringify(parts.slice(0, i + 1).join('/'))}`, {
        path,
        symlink: parts.slice(0, i + 1).join('/'),
      });
    }
    if (!stats.isDirectory()) {
      throw new PathError('PATH_INVALID', `parent of ${JSON.stringify(path)} is not a directory`, { path });
    }
    verified?.add(current);
  }
  return base + path;
}

/** Joins wire path components (for building child paths). */
export function joinWire(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}
