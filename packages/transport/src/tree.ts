/**
 * The source tree: one lstat per entry, in a stable order (parents before children, names sorted),
 * filtered by the exclude rules. Symlinks are recorded as links, never followed; devices, sockets and
 * fifos are skipped and reported.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { EntryType } from './messages.js';
import { PathFilter } from './filter.js';
import { joinWire } from './paths.js';

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

export interface SourceTree {
  /** The local directory whose contents map to the destination root. */
  base: string;
  /** Attributes of the top directory itself (applied to the destination root), if it is one. */
  root: SourceEntry | undefined;
  entries: SourceEntry[];
  skipped: { path: string; reason: string }[];
}

/**
 * Scans `source` as rsync sees it: "dir/" (trailing slash) transfers the contents of dir; "dir"
 * transfers dir itself (as dir/... at the destination); a file transfers that file.
 */
export async function scanSource(source: string, filter = new PathFilter([])): Promise<SourceTree> {
  const trailing = source.endsWith('/');
  const st = await lstat(source);
  const entries: SourceEntry[] = [];
  const skipped: SourceTree['skipped'] = [];
  const toEntry = (path: string, local: string, s: Awaited<ReturnType<typeof lstat>>, type: EntryType): SourceEntry => ({
    path,
    local,
    type,
    size: type === 'f' ? Number(s.size) : 0,
    mtimeMs: Number(s.mtimeMs),
    mode: Number(s.mode) & 0o7777,
    uid: Number(s.uid),
    gid: Number(s.gid),
  });

  const walk = async (dir: string, wire: string): Promise<void> => {
    const names = readdirSync(dir).sort();
    // Synchronous: a cached lstat costs a few microseconds, a thread-pool round trip far more.
    const stats = names.map((name) => lstatSync(join(dir, name), { throwIfNoEntry: false }));
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const local = join(dir, name);
      const path = joinWire(wire, name);
      const s = stats[i];
      if (!s) continue; // vanished during the scan
      const type: EntryType | undefined = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : s.isFile() ? 'f' : undefined;
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

  if (st.isDirectory()) {
    if (trailing) {
      await walk(source, '');
      return { base: source, root: toEntry('', source, st, 'd'), entries, skipped };
    }
    const name = basename(source);
    const top = toEntry(name, source, st, 'd');
    entries.push(top);
    await walk(source, name);
    return { base: source, root: undefined, entries, skipped };
  }
  const name = basename(source);
  const type: EntryType = st.isSymbolicLink() ? 'l' : 'f';
  const entry = toEntry(name, source, st, type);
  if (type === 'l') entry.linkTarget = await readlink(source);
  return { base: source, root: undefined, entries: [entry], skipped };
}
