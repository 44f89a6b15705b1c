/**
 * rsync's --link-dest=DIR: a file the destination lacks is hard-linked from DIR/PATH, on the
 * destination's host, when that file is the source's as the quick check sees it (a regular file of
 * the same size, mtime and mode; and owner, where owners are kept), instead of being sent. Snapshot
 * backups use it: each run makes a new directory in which unchanged files cost neither transfer nor
 * space. DIR is relative to the destination root unless absolute; up to MAX_LINK_DEST_DIRS are
 * tried in order, the first match wins. A new file that DIR holds in another version is sent as a
 * delta against that copy, as rsync does: the agent clones (or copies) it to the file's partial
 * name (tempfile.ts), the basis a create resumes from. Its siblings, one kind to a run as in rsync:
 * --copy-dest copies the match (a local copy on that host, its mtime, mode and owner kept) instead
 * of linking it; --compare-dest leaves the file out altogether (a differential backup: the
 * destination gets only what DIR does not hold as it is), counted as skipped.
 *
 * Two `link-dest` requests (docs/protocol.md, Link-dest): before the run is announced, a dry one
 * says which of the plan's new files DIR holds, and they leave the plan's files; once the new
 * directories are made, the same request links them. A file that could not be linked then (DIR
 * changed in between) is sent after all.
 */
import { chmodSync, chownSync, constants, copyFileSync, linkSync, lstatSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { tempPathFor } from './tempfile.js';
import { isAbsolute, join, resolve } from 'node:path';
import type { AgentClient } from './agent-client.js';
import { bad, isPath, isUint, MAX_LINKS } from './batch.js';
import { PathError, TransportError } from './errors.js';
import type { Header } from './frame.js';
import { sameTime, type Change, type Plan } from './plan.js';
import { MAX_PATH_BYTES } from './messages.js';

export const LINK_DEST_CAPABILITY = 'link-dest';
/** A result above this is a basis, not a match: BASIS + k, another version in directory k. */
export const BASIS = 100;
/** Directories a run may name (rsync's limit). */
export const MAX_LINK_DEST_DIRS = 20;

/** What is done with a match: linked (--link-dest), copied (--copy-dest), or the file left out (--compare-dest). */
export type BasisDirHow = 'link' | 'copy' | 'compare';
const HOWS: readonly BasisDirHow[] = ['link', 'copy', 'compare'];

/** The options that name such directories. */
export interface BasisDirOptions {
  linkDest?: string[];
  copyDest?: string[];
  compareDest?: string[];
}

/**
 * The run's basis directories and what to do with a match, or undefined; INVALID_OPTION for more
 * than one kind (rsync's rule), more than MAX_LINK_DEST_DIRS, or an empty name.
 */
export function basisDirs(options: BasisDirOptions): { how: BasisDirHow; dirs: string[] } | undefined {
  const given = ([['link', options.linkDest], ['copy', options.copyDest], ['compare', options.compareDest]] as const).filter(([, dirs]) => dirs && dirs.length > 0);
  if (given.length === 0) return undefined;
  if (given.length > 1) throw new TransportError('INVALID_OPTION', '--link-dest, --copy-dest and --compare-dest exclude each other', {});
  const [how, dirs] = given[0];
  const flag = `--${how}-dest`;
  if (dirs!.length > MAX_LINK_DEST_DIRS) throw new TransportError('INVALID_OPTION', `at most ${MAX_LINK_DEST_DIRS} ${flag} directories, not ${dirs!.length}`, { count: dirs!.length });
  if (dirs!.some((d) => d === '' || d.includes('\0'))) throw new TransportError('INVALID_OPTION', `a ${flag} directory must be named`, {});
  return { how, dirs: [...dirs!] };
}

/** One new file to look for in the link-dest directories: its wire path and source attributes. */
export interface LinkDestEntry {
  path: string;
  size: number;
  mtime: number;
  mode: number;
  uid: number;
  gid: number;
}

/** The wire form of a `link-dest` list: `[path, size, mtime, mode, uid, gid]` each. */
export function encodeLinkDest(entries: readonly LinkDestEntry[]): unknown[][] {
  return entries.map((e) => [e.path, e.size, e.mtime, e.mode, e.uid, e.gid]);
}

/** A `link-dest` request's directories, what to do with a match, and entries, every field checked; anything else is a BAD_MESSAGE. */
export function decodeLinkDest(h: Header): { dirs: string[]; how: BasisDirHow; entries: LinkDestEntry[] } {
  const how = h.how ?? 'link';
  if (!HOWS.includes(how as BasisDirHow)) throw bad('link-dest', `field "how" must be one of ${HOWS.join(', ')}`, { field: 'how' });
  const dirs = h.dirs;
  if (!Array.isArray(dirs) || dirs.length === 0 || dirs.length > MAX_LINK_DEST_DIRS || !dirs.every((d) => isPath(d) && d !== '' && !d.includes('\0'))) {
    throw bad('link-dest', `field "dirs" must be a list of 1 .. ${MAX_LINK_DEST_DIRS} directory names`, { field: 'dirs' });
  }
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_LINKS) throw bad('link-dest', `field "f" must be a list of 1 .. ${MAX_LINKS} entries`, { field: 'f' });
  const entries = raw.map((item: unknown, i): LinkDestEntry => {
    const where = { field: 'f', entry: i };
    if (!Array.isArray(item) || item.length !== 6) throw bad('link-dest', `entry ${i} must be [path, size, mtime, mode, uid, gid]`, where);
    const [path, size, mtime, mode, uid, gid] = item as unknown[];
    if (!isPath(path) || path === '') throw bad('link-dest', `entry ${i}: the path must be a string of 1 to ${MAX_PATH_BYTES} characters`, where);
    if (!isUint(size, Number.MAX_SAFE_INTEGER) || typeof mtime !== 'number' || !Number.isFinite(mtime) || !isUint(mode, 0o7777) || !isUint(uid, 0xffffffff) || !isUint(gid, 0xffffffff)) {
      throw bad('link-dest', `entry ${i}: size, mode, uid and gid must be whole numbers in range, mtime a number`, where);
    }
    return { path, size: size as number, mtime, mode: mode as number, uid: uid as number, gid: gid as number };
  });
  return { dirs: dirs as string[], how: how as BasisDirHow, entries };
}

/** The agent's side: where DIR is, and what counts as the same file there. */
export interface LinkDestContext {
  /** The session's root (a relative DIR is relative to it). */
  root: string;
  /** With --root on the agent, DIR must lie inside it (after symlinks); else anywhere. */
  allowed: (realPath: string) => boolean;
  realpath: (path: string) => string;
  /** The ids a file of the source's uid/gid must have here, or undefined where owners are not compared. */
  owner: (uid: number, gid: number) => { uid: number; gid: number } | undefined;
}

/**
 * The link-dest directories as absolute paths: each relative one resolved against the root; one
 * outside the allowed root (its real path) is PATH_ESCAPE, one that is missing is left out (rsync
 * warns and goes on).
 */
export function linkDestDirs(dirs: readonly string[], context: LinkDestContext): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    const path = isAbsolute(dir) ? dir : resolve(context.root, dir);
    let real: string;
    try {
      real = context.realpath(path);
    } catch {
      continue;
    }
    if (!context.allowed(real)) throw new PathError('PATH_ESCAPE', `link-dest ${dir} lies outside the directory this agent serves`, { dir });
    out.push(real);
  }
  return out;
}

/**
 * For one new file: the index (1-based) of the first directory whose copy matches, hard-linked to
 * `target` (or copied, with `how` 'copy'; nothing, with 'compare') unless `dry`; 0 when none does,
 * or `target` exists by now. A link that fails (another file system, EMLINK) tries the next
 * directory. Where none matches but a directory holds a regular file at the path (link and copy),
 * BASIS + its index, and unless `dry` that file is copied to `basis` (the target's partial name)
 * for the delta to be made against.
 */
export function linkFromDirs(
  entry: LinkDestEntry,
  target: string,
  dirs: readonly string[],
  context: LinkDestContext,
  dry: boolean,
  how: BasisDirHow = 'link',
  basis?: string,
): number {
  if (lstatSync(target, { throwIfNoEntry: false })) return 0;
  const owner = context.owner(entry.uid, entry.gid);
  let other: { index: number; path: string } | undefined;
  for (let i = 0; i < dirs.length; i++) {
    const candidate = join(dirs[i], entry.path);
    const st = lstatSync(candidate, { throwIfNoEntry: false });
    if (st?.isFile() && other === undefined) other = { index: i, path: candidate };
    if (!st?.isFile() || st.size !== entry.size || (st.mode & 0o7777) !== entry.mode || !sameTime(st.mtimeMs, entry.mtime)) continue;
    if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) continue;
    // A symlinked directory on the way may lead out of an agent's --root: the file's real path is checked.
    if (!context.allowed(context.realpath(candidate))) continue;
    if (how === 'copy' && !dry) {
      copyInto(candidate, target, entry, owner);
      return i + 1;
    }
    if (how === 'link' && !dry) {
      try {
        linkSync(candidate, target);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return 0;
        if (code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') continue;
        throw error;
      }
    }
    return i + 1;
  }
  if (!other || how === 'compare' || basis === undefined || !context.allowed(context.realpath(other.path))) return 0;
  if (!dry) copyFileSync(other.path, basis, constants.COPYFILE_FICLONE);
  return BASIS + other.index + 1;
}

/**
 * --copy-dest: `from` copied to a temporary name beside `target` (a clone where the file system
 * makes one), given the source's mtime and mode (and owner), then renamed into place: `target`
 * never holds part of a file.
 */
function copyInto(from: string, target: string, entry: LinkDestEntry, owner: { uid: number; gid: number } | undefined): void {
  const temp = tempPathFor(target);
  try {
    copyFileSync(from, temp, constants.COPYFILE_FICLONE);
    if (owner) chownSync(temp, owner.uid, owner.gid);
    chmodSync(temp, entry.mode);
    utimesSync(temp, entry.mtime / 1000, entry.mtime / 1000);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** The client's request: for each entry, 0 or the 1-based index of the directory it was (or would be) linked from. */
export async function requestLinkDest(client: AgentClient, basis: { how: BasisDirHow; dirs: readonly string[] }, entries: readonly LinkDestEntry[], dry: boolean): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < entries.length; i += MAX_LINKS) {
    const chunk = entries.slice(i, i + MAX_LINKS);
    for (const r of await client.linkDest(basis.dirs, basis.how, encodeLinkDest(chunk), chunk.length, dry)) out.push(r.ok ? r.size : 0);
  }
  return out;
}

function entryOf(change: Change): LinkDestEntry {
  const s = change.source!;
  return { path: change.path, size: s.size, mtime: s.mtimeMs, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
}

/**
 * Before the run is announced: which of the plan's new files the basis directories hold, asked
 * (dry) in one go; those leave `plan.files`, for `plan.linkDest` (linked or copied later) or, with
 * --compare-dest, for good (counted as skipped). An agent without the capability fails the
 * destination (UNSUPPORTED).
 */
export async function planLinkDest(client: AgentClient, plan: Plan, basis: { how: BasisDirHow; dirs: readonly string[] } | undefined): Promise<void> {
  if (!basis) return;
  if (!client.info?.capabilities.includes(LINK_DEST_CAPABILITY)) {
    throw new TransportError('UNSUPPORTED', `the agent does not take --${basis.how}-dest (an older deltacast)`, { capability: LINK_DEST_CAPABILITY });
  }
  const creates = plan.files.filter((c) => c.kind === 'create' && c.source?.type === 'f');
  if (creates.length === 0) return;
  const found = await requestLinkDest(client, basis, creates.map(entryOf), true);
  const matched = new Set(creates.filter((_, i) => found[i] > 0 && found[i] <= BASIS));
  const other = creates.filter((_, i) => found[i] > BASIS);
  if (other.length > 0) plan.basisDest = other;
  if (matched.size === 0) return;
  plan.files = plan.files.filter((c) => !matched.has(c));
  if (basis.how === 'compare') {
    plan.skipped += matched.size;
    for (const c of matched) plan.leftAlone.add(c.path);
  }
  else plan.linkDest = [...matched];
}

/**
 * Links (or copies) `planned`, the plan's link-dest files, and has another version placed as the
 * basis of each of `others` (their directories made by now). Returns the planned files that could
 * not be linked after all, to be sent; an `others` file that got its basis is marked to resume
 * from it (Change.resume: a delta, not the whole file).
 */
export async function linkPlanned(client: AgentClient, planned: readonly Change[], others: readonly Change[], basis: { how: BasisDirHow; dirs: readonly string[] }): Promise<Change[]> {
  const all = [...planned, ...others];
  if (all.length === 0) return [];
  const found = await requestLinkDest(client, basis, all.map(entryOf), false);
  all.forEach((change, i) => {
    if (found[i] > BASIS) change.resume = true;
  });
  return planned.filter((_, i) => found[i] === 0 || found[i] > BASIS);
}
