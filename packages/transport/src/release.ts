/**
 * Release directories: `ROOT/releases/ID` hold whole trees and `ROOT/current` is a symlink to one of
 * them. A new release starts as a hard-link clone of the current one (unchanged files cost no space or
 * copying; changed files are replaced by rename, so the clone never writes through to the old
 * release), is synced like any tree, and goes live by replacing `current` with one rename. Readers that
 * resolve `current` once see one release whole. Rolling back is the same switch to an older release.
 */
import { copyFileSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { PathError } from './errors.js';

export const RELEASES_DIR = 'releases';
export const CURRENT_LINK = 'current';

/** Release ids: sortable by time, e.g. 20261123T130501123Z-3f2a. */
export function checkReleaseId(id: string): string {
  if (!/^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/.test(id)) throw new PathError('PATH_INVALID', `invalid release id ${JSON.stringify(id)}`, { release: id });
  return id;
}

/** The release `current` points to, if it is a link into releases/. */
export function currentRelease(root: string): string | undefined {
  try {
    const target = readlinkSync(join(root, CURRENT_LINK));
    const m = /^(?:\.\/)?releases\/([^/]+)\/?$/.exec(target);
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

export function listReleases(root: string): string[] {
  try {
    return readdirSync(join(root, RELEASES_DIR)).filter((name) => !name.startsWith('.')).sort();
  } catch {
    return [];
  }
}

/**
 * Makes releases/ID: a hard-link clone of the current release (directories made anew with their
 * modes and times, files linked, symlinks recreated), or an empty directory for the first release.
 * Built under a temporary name and renamed, so a half-made release is never seen under its id.
 */
export function prepareRelease(root: string, id: string): { previous: string | undefined } {
  checkReleaseId(id);
  const releases = join(root, RELEASES_DIR);
  mkdirSync(releases, { recursive: true });
  const target = join(releases, id);
  if (lstatSync(target, { throwIfNoEntry: false })) throw new PathError('PATH_INVALID', `release ${id} exists already`, { release: id });
  const temp = join(releases, `.${id}.preparing`);
  rmSync(temp, { recursive: true, force: true });
  const previous = currentRelease(root);
  if (previous !== undefined && lstatSync(join(releases, previous), { throwIfNoEntry: false })?.isDirectory()) {
    cloneTree(join(releases, previous), temp);
  } else {
    mkdirSync(temp);
  }
  renameSync(temp, target);
  return { previous };
}

function cloneTree(from: string, to: string): void {
  const st = lstatSync(from);
  mkdirSync(to, { mode: st.mode & 0o7777 });
  for (const name of readdirSync(from)) {
    const a = join(from, name);
    const b = join(to, name);
    const s = lstatSync(a);
    if (s.isDirectory()) cloneTree(a, b);
    else if (s.isSymbolicLink()) {
      symlinkSync(readlinkSync(a), b);
      lutimesSync(b, s.atime, s.mtime);
    } else if (s.isFile()) linkSync(a, b);
  }
  utimesSync(to, st.atime, st.mtime);
}

/** Points `current` at releases/ID with one rename (a temporary link renamed over the old one). */
export function switchRelease(root: string, id: string): void {
  checkReleaseId(id);
  if (!lstatSync(join(root, RELEASES_DIR, id), { throwIfNoEntry: false })?.isDirectory()) {
    throw new PathError('PATH_INVALID', `no release ${id} on this destination`, { release: id });
  }
  const temp = join(root, `.${CURRENT_LINK}.${process.pid}.tmp`);
  rmSync(temp, { force: true });
  symlinkSync(`${RELEASES_DIR}/${id}`, temp);
  renameSync(temp, join(root, CURRENT_LINK));
}

/** Removes all but the newest `keep` releases, never the current one. */
export function pruneReleases(root: string, keep: number): string[] {
  const current = currentRelease(root);
  const all = listReleases(root);
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((r) => r !== current);
  for (const r of doomed) rmSync(join(root, RELEASES_DIR, r), { recursive: true, force: true });
  return doomed;
}

/** Removes a release that never went live (an aborted run). */
export function discardRelease(root: string, id: string): void {
  checkReleaseId(id);
  if (currentRelease(root) === id) throw new PathError('PATH_INVALID', `release ${id} is live`, { release: id });
  rmSync(join(root, RELEASES_DIR, id), { recursive: true, force: true });
}

/**
 * Before attributes change on a file of a release: a file still hard-linked to an older release is
 * copied first, so the older release keeps its modes and times.
 */
export function unshare(path: string): void {
  const st = lstatSync(path);
  if (!st.isFile() || st.nlink < 2) return;
  const temp = `${path}.dcunshare-${process.pid}`;
  copyFileSync(path, temp);
  utimesSync(temp, st.atime, st.mtime);
  renameSync(temp, path);
}
