/**
 * The source tree: one lstat per entry, in a stable order (parents before children, names sorted),
 * filtered by the exclude rules. Symlinks are recorded as links, never followed; devices, sockets and
 * fifos are skipped and reported. A scoped scan (`paths`) looks only at those paths and the
 * directories above them (src/scope.ts).
 */
import { applyChmod, type ChmodClause } from './chmod.js';
import { readdirSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename, join, normalize } from 'node:path';
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
  skipped: { path: string; reason: string }[];
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
}

/**
 * Scans `source` as rsync sees it: "dir/" (trailing slash) transfers the contents of dir; "dir"
 * transfers dir itself (as dir/... at the destination); a file transfers that file.
 */
export async function scanSource(source: string, filter = new PathFilter([]), options: ScanOptions = {}): Promise<SourceTree> {
  const trailing = source.endsWith('/');
  const requested = normalizeScope(options.paths);
  const st = await lstat(source);
  const entries: SourceEntry[] = [];
  const skipped: SourceTree['skipped'] = [];
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
  });

  const typeOf = (s: EntryStat): EntryType | undefined => entryTypeOf(s.mode);

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
      const type = typeOf(s);
      if (!type) {
        skipped.push({ path, reason: 'not a regular file, directory or symlink' });
        continue;
      }
      if (filter.excludes(path, type === 'd')) continue;
      const entry = toEntry(path, local, s, type);
      if (type === 'l') entry.linkTarget = await readlink(local);
      entries.push(entry);
      if (type === 'd') await walk(local, path);
    }
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
      if (!seen.has(a)) {
        seen.add(a);
        entries.push(toEntry(a, local(a), s, 'd'));
      }
    }
    const full = local(path);
    const s = lstatFields(full);
    if (!s) return; // removed at the source: with delete, the destination's copy goes too
    const type = typeOf(s);
    if (!type) {
      skipped.push({ path, reason: 'not a regular file, directory or symlink' });
      return;
    }
    if (filter.excludes(path, type === 'd')) return;
    const entry = toEntry(path, full, s, type);
    if (type === 'l') entry.linkTarget = await readlink(full);
    entries.push(entry);
    if (type === 'd') await walk(full, path);
  };

  if (st.isDirectory()) {
    const name = basename(source);
    if (requested && trailing) {
      for (const path of requested) await scanScoped(path, (wire) => join(source, wire), 0);
      return { base: source, root: toEntry('', source, st, 'd'), entries, skipped, scope: requested };
    }
    // "dir" transfers dir itself: scope paths are dir (the whole tree) or under dir/.
    const outside = requested?.find((p) => p !== name && !p.startsWith(`${name}/`));
    if (outside !== undefined) throw outsideSource(outside, source);
    if (requested && !requested.includes(name)) {
      entries.push(toEntry(name, source, st, 'd'));
      seen.add(name);
      for (const path of requested) await scanScoped(path, (wire) => join(source, wire.slice(name.length + 1)), 1);
      return { base: source, root: undefined, entries, skipped, scope: requested };
    }
    if (trailing) {
      await walk(normalize(source), '');
      return { base: source, root: toEntry('', source, st, 'd'), entries, skipped };
    }
    const top = toEntry(name, source, st, 'd');
    entries.push(top);
    await walk(normalize(source), name);
    return { base: source, root: undefined, entries, skipped };
  }
  const name = basename(source);
  // A single file: a scope can only name it (the whole tree), or be empty.
  const outside = requested?.find((p) => p !== name);
  if (outside !== undefined) throw outsideSource(outside, source);
  if (requested?.length === 0) return { base: source, root: undefined, entries: [], skipped, scope: requested };
  const type: EntryType = st.isSymbolicLink() ? 'l' : 'f';
  const entry = toEntry(name, source, st, type);
  if (type === 'l') entry.linkTarget = await readlink(source);
  return { base: source, root: undefined, entries: [entry], skipped };
}

function outsideSource(path: string, source: string): PathError {
  return new PathError('PATH_INVALID', `scope path ${JSON.stringify(path)} is not part of the source ${JSON.stringify(source)}`, { path, source });
}
