/**
 * The source tree: one lstat per entry, in a stable order (parents before children, names sorted),
 * filtered by the exclude rules. Symlinks are recorded as links, never followed; devices, sockets and
 * fifos are skipped and reported. A scoped scan (`paths`) looks only at those paths and the
 * directories above them (src/scope.ts).
 */
import { applyChmod, type ChmodClause } from './chmod.js';
import { readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { lstat, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import type { EntryType } from './messages.js';
import { PathFilter } from './filter.js';
import { PathError } from './errors.js';
import { joinWire } from './paths.js';
import { entryTypeOf, lstatFields, type EntryStat } from './lstat-fields.js';
import { ancestorsOf, normalizeScope } from './scope.js';

export interface SourceEntry {
  /** Wire path relative to the transfer root ('' is never listed). */
  path: string;
  /** Absolute local path. */
  local: string;
  type: EntryType;
  size: number;
  mtimeMs: number;
  mode: number;
  uid: number;
  gid: number;
  linkTarget?: string;
  /** A regular file with more than one link: `dev:ino`, the same for every name of the file (-H). */
  inode?: string;
  /**
   * A directory on another file system than the source's, listed without its contents (-x): the
   * destination keeps what it has under it, as rsync does, even with --delete.
   */
  noContent?: true;
}

/**
 * The scan gives the event loop a turn once it has held the thread this long: a sync scans while
 * its SSH session is set up, and each step of the handshake waits at most this for the scan.
 */
const YIELD_AFTER_MS = 1;
/** Entries between two looks at the clock. */
const CLOCK_EVERY = 32;

export interface SourceTree {
  /** The local directory whose contents map to the destination root. */
  base: string;
  /** Attributes of the top directory itself (applied to the destination root), if it is one. */
  root: SourceEntry | undefined;
  entries: SourceEntry[];
  /** Entries left out that are no error (devices, sockets, fifos; with `links: 'safe'`, unsafe symlinks). */
  skipped: { path: string; reason: string }[];
  /** Entries left out that are errors: a symlink to follow that leads nowhere (NO_REFERENT) or back up its own path (SYMLINK_LOOP). */
  errors: { path: string; code: string; message: string }[];
  /**
   * For a scoped scan: the scope paths, normalized (src/scope.ts). `entries` then holds those that
   * exist, their subtrees, and the directories above them; planning deletes only inside the scope.
   * Undefined for a whole-tree scan.
   */
  scope?: string[];
}

export interface ScanOptions {
  /**
   * Wire paths to scan instead of the whole tree (relative to the destination root, as
   * `SourceEntry.path`); '' or a source's own top name means the whole tree. A directory is walked, a
   * file or symlink is one entry, a missing path contributes nothing; the directories above each path
   * are entries too (not walked). Excluded paths stay excluded.
   */
  paths?: readonly string[];
  /** Ends the scan (it rejects with the signal's reason) at its next turn of the event loop. */
  signal?: AbortSignal;
  /** rsync's --chmod (chmod.ts): the modes of directories and regular files as these clauses change them. */
  chmod?: readonly ChmodClause[];
  /**
   * Symlinks in the tree: 'keep' (default) lists them as links; 'copy' (rsync's -L, --copy-links)
   * lists what they point to instead, files and directories (walked); 'copy-unsafe'
   * (--copy-unsafe-links) does so for unsafe ones only, those that point outside the tree (absolute,
   * or up past its top); 'safe' (--safe-links) leaves unsafe ones out. The top of the tree is the
   * source directory itself, whether or not its name is part of the paths.
   */
  links?: 'keep' | 'copy' | 'copy-unsafe' | 'safe';
  /**
   * rsync's -x, --one-file-system: directories on another file system than the source's are not
   * walked; 1 lists each such mount point as an empty directory (noContent), 2 (-xx) leaves it out.
   */
  oneFileSystem?: number;
}

/**
 * Whether a symlink at `path` (wire path; `topDepth` components of it name the tree's top, 1 when
 * the source directory's own name leads the paths) that points at `target` leads outside the tree:
 * an absolute target, or one whose `..` climb above the top, as rsync's unsafe_symlink counts.
 */
export function unsafeSymlink(target: string, path: string, topDepth = 0): boolean {
  if (target.startsWith('/') || target === '') return true;
  let depth = path.split('/').length - 1 - topDepth;
  for (const part of target.split('/')) {
    if (part === '..') {
      if (--depth < 0) return true;
    } else if (part !== '.' && part !== '') depth++;
  }
  return false;
}

/**
 * Scans `source` as rsync sees it: "dir/" (trailing slash) transfers the contents of dir; "dir"
 * transfers dir itself (as dir/... at the destination); a file transfers that file.
 */
export async function scanSource(source: string, filter = new PathFilter([]), options: ScanOptions = {}): Promise<SourceTree> {
  const trailing = source.endsWith('/');
  const requested = normalizeScope(options.paths);
  // -L follows a source that is itself a symlink (when it leads somewhere).
  const st = options.links === 'copy' ? await stat(source).catch(() => lstat(source)) : await lstat(source);
  const entries: SourceEntry[] = [];
  const skipped: SourceTree['skipped'] = [];
  const errors: SourceTree['errors'] = [];
  const links = options.links ?? 'keep';
  const oneFileSystem = options.oneFileSystem ?? 0;
  const topDev = st.dev;
  /** Components of a wire path that name the top of the tree (the source's name, without a trailing slash). */
  const topDepth = st.isDirectory() && !trailing ? 1 : 0;
  const chmod = options.chmod?.length ? options.chmod : undefined;
  const toEntry = (path: string, local: string, s: EntryStat, type: EntryType): SourceEntry => ({
    path,
    local,
    type,
    size: type === 'f' ? s.size : 0,
    mtimeMs: s.mtimeMs,
    mode: chmod && type !== 'l' ? applyChmod(chmod, s.mode, type === 'd') : s.mode & 0o7777,
    uid: s.uid,
    gid: s.gid,
    // A file with other names (-H keeps them together): which inode, on which device. Always a
    // field, so that every entry has one shape.
    inode: type === 'f' && s.nlink > 1 ? `${s.dev}:${s.ino}` : undefined,
  });

  const typeOf = (s: EntryStat): EntryType | undefined => entryTypeOf(s.mode);
  const merges = filter.mergesPerDirectory;

  // A turn of the event loop every millisecond or so: connections being set up meanwhile (sync and
  // the fan-out connect while they scan) go on at once, not after the scan.
  let sinceClock = 0;
  let held = performance.now();
  const turn = async (): Promise<void> => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    options.signal?.throwIfAborted();
    held = performance.now();
  };
  /** A promise when the scan has held the thread long enough: awaited, it gives the event loop a turn. */
  const pause = (): Promise<void> | undefined => {
    if (++sinceClock < CLOCK_EVERY) return undefined;
    sinceClock = 0;
    return performance.now() - held >= YIELD_AFTER_MS ? turn() : undefined;
  };
  const walk = async (dir: string, wire: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (error) {
      // A scoped scan may meet a directory removed since the watcher saw it.
      if (requested && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    // Its per-directory filter files (dir-merge rules) judge what lies under it.
    if (merges) filter.enterDirectory(wire, dir);
    // `dir` is normalized and a name has no "/": joined without path.join's normalizing pass.
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    for (let i = 0; i < names.length; i++) {
      const paused = pause();
      if (paused) await paused;
      const name = names[i];
      const local = prefix + name;
      // Synchronous: a cached lstat costs a few microseconds, a thread-pool round trip far more.
      const s = lstatFields(local);
      if (!s) continue; // vanished during the scan
      const path = joinWire(wire, name);
      // The common case inline: no promise per entry (a symlink to follow goes through add()).
      const type = typeOf(s);
      if (type === undefined || (type === 'l' && links !== 'keep')) {
        await add(path, local, s, dir);
        continue;
      }
      if (filter.excludes(path, type === 'd')) continue;
      const entry = toEntry(path, local, s, type);
      if (type === 'l') entry.linkTarget = await readlink(local);
      if (keep(entry, s)) await walk(local, path);
    }
  };

  /**
   * Lists `entry` (its lstat `s`); true for a directory to walk. With -x a directory on another file
   * system (a mount point) is listed empty, marked so, and not walked; with -xx not listed at all.
   */
  const keep = (entry: SourceEntry, s: EntryStat): boolean => {
    if (entry.type === 'd' && oneFileSystem > 0 && s.dev !== topDev) {
      if (oneFileSystem === 1) {
        entry.noContent = true;
        entries.push(entry);
      }
      return false;
    }
    entries.push(entry);
    return entry.type === 'd';
  };

  /**
   * Lists one entry found at `local` with lstat `s` (its directory: `parent`), and walks it if it is
   * a directory; a symlink as `links` says.
   */
  const add = async (path: string, local: string, s: EntryStat, parent: string): Promise<void> => {
    let type = typeOf(s);
    if (!type) {
      skipped.push({ path, reason: 'not a regular file, directory or symlink' });
      return;
    }
    let linkTarget: string | undefined;
    if (type === 'l' && links !== 'keep') {
      linkTarget = await readlink(local);
      const unsafe = unsafeSymlink(linkTarget, path, topDepth);
      if (links === 'safe' && unsafe) {
        skipped.push({ path, reason: `unsafe symlink (to ${linkTarget})` });
        return;
      }
      if (links === 'copy' || (links === 'copy-unsafe' && unsafe)) {
        const followed = followLink(path, local, parent);
        if ('code' in followed) {
          errors.push(followed);
          return;
        }
        s = followed;
        type = typeOf(s);
        if (!type || type === 'l') {
          skipped.push({ path, reason: 'not a regular file, directory or symlink' });
          return;
        }
        linkTarget = undefined;
      }
    }
    if (filter.excludes(path, type === 'd')) return;
    const entry = toEntry(path, local, s, type);
    if (type === 'l') entry.linkTarget = linkTarget ?? (await readlink(local));
    if (keep(entry, s)) await walk(local, path);
  };

  /**
   * What the symlink at `local` points to (stat through it), or why it cannot be followed: it leads
   * nowhere, or to a directory that holds `parent`, the directory the link is in (walking it would
   * never end).
   */
  const followLink = (path: string, local: string, parent: string): EntryStat | { path: string; code: string; message: string } => {
    let target: Stats | undefined;
    try {
      target = statSync(local, { throwIfNoEntry: false });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'EACCES') throw error;
      return { path, code: 'NO_REFERENT', message: `symlink ${path} cannot be followed: ${code}` };
    }
    if (!target) return { path, code: 'NO_REFERENT', message: `symlink has no referent: ${path}` };
    if (target.isDirectory()) {
      const real = realpathSync(local);
      const here = realpathSync(parent);
      if (here === real || here.startsWith(real.endsWith('/') ? real : `${real}/`)) {
        return { path, code: 'SYMLINK_LOOP', message: `symlink ${path} leads to a directory that holds it (${real}); not followed` };
      }
    }
    return target;
  };

  /**
   * One scope path: its ancestors (directories only; the walk stops at a missing or non-directory
   * one, as a whole-tree scan would never reach below it), then the path itself and its subtree.
   * `local` maps a wire path under the source to its local path.
   */
  const seen = new Set<string>();
  const scanScoped = async (path: string, local: (wire: string) => string, skipAncestors: number): Promise<void> => {
    const ancestors = ancestorsOf(path);
    for (let i = skipAncestors; i < ancestors.length; i++) {
      const a = ancestors[i];
      if (filter.excludes(a, true)) return;
      const s = lstatFields(local(a));
      if (!s || entryTypeOf(s.mode) !== 'd') return;
      // The per-directory filter files above the path judge it, as a whole-tree walk would.
      if (merges) filter.enterDirectory(a, local(a));
      if (!seen.has(a)) {
        seen.add(a);
        entries.push(toEntry(a, local(a), s, 'd'));
      }
    }
    const full = local(path);
    const s = lstatFields(full);
    if (!s) return; // removed at the source: with delete, the destination's copy goes too
    await add(path, full, s, dirname(full));
  };

  if (st.isDirectory()) {
    const name = basename(source);
    if (requested && trailing) {
      if (merges) filter.enterDirectory('', source);
      for (const path of requested) await scanScoped(path, (wire) => join(source, wire), 0);
      return { base: source, root: toEntry('', source, st, 'd'), entries, skipped, errors, scope: requested };
    }
    // "dir" transfers dir itself: scope paths are dir (the whole tree) or under dir/.
    const outside = requested?.find((p) => p !== name && !p.startsWith(`${name}/`));
    if (outside !== undefined) throw outsideSource(outside, source);
    if (requested && !requested.includes(name)) {
      entries.push(toEntry(name, source, st, 'd'));
      seen.add(name);
      if (merges) filter.enterDirectory(name, source);
      for (const path of requested) await scanScoped(path, (wire) => join(source, wire.slice(name.length + 1)), 1);
      return { base: source, root: undefined, entries, skipped, errors, scope: requested };
    }
    if (trailing) {
      await walk(normalize(source), '');
      return { base: source, root: toEntry('', source, st, 'd'), entries, skipped, errors };
    }
    const top = toEntry(name, source, st, 'd');
    entries.push(top);
    await walk(normalize(source), name);
    return { base: source, root: undefined, entries, skipped, errors };
  }
  const name = basename(source);
  // A single file: a scope can only name it (the whole tree), or be empty.
  const outside = requested?.find((p) => p !== name);
  if (outside !== undefined) throw outsideSource(outside, source);
  if (requested?.length === 0) return { base: source, root: undefined, entries: [], skipped, errors, scope: requested };
  const type: EntryType = st.isSymbolicLink() ? 'l' : 'f';
  const entry = toEntry(name, source, st, type);
  if (type === 'l') entry.linkTarget = await readlink(source);
  return { base: source, root: undefined, entries: [entry], skipped, errors };
}

function outsideSource(path: string, source: string): PathError {
  return new PathError('PATH_INVALID', `scope path ${JSON.stringify(path)} is not part of the source ${JSON.stringify(source)}`, { path, source });
}
