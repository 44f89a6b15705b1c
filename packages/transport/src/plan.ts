/**
 * What a destination needs, from the source tree and the destination's listing: the rsync -a
 * decisions. Quick check by size and mtime (to the millisecond), or by content with `checksum`.
 * Deletions are scoped to what is transferred (a "dir" source only deletes under dir/), and excluded
 * paths are never deleted, as in rsync without --delete-excluded. A scoped tree (`tree.scope`) narrows
 * that further: only paths in the scope (and their subtrees) are deleted; the directories above them
 * are never deleted, not even to replace a non-directory the destination has there.
 */
import type { RemoteEntry } from './agent-client.js';
import type { PathFilter } from './filter.js';
import type { EntryType } from './messages.js';
import { Scope } from './scope.js';
import type { SourceEntry, SourceTree } from './tree.js';

export type ChangeKind = 'create' | 'update' | 'attrs' | 'mkdir' | 'symlink' | 'delete';

export interface Change {
  kind: ChangeKind;
  path: string;
  source?: SourceEntry;
  remote?: RemoteEntry;
  /** A create that can resume from a partial file the destination kept (--partial). */
  resume?: boolean;
}

export interface Plan {
  /** Extraneous entries and entries whose type changes, topmost only. */
  deletes: Change[];
  /** Directories to create, parents before children. */
  mkdirs: Change[];
  /** Regular files to create or update. */
  files: Change[];
  symlinks: Change[];
  /** Attribute-only changes of files (mode, mtime). */
  attrs: Change[];
  /** Directories whose mode or mtime must be (re)set at the end, deepest first. */
  dirAttrs: Change[];
  unchanged: number;
}

export interface PlanOptions {
  delete: boolean;
  /** For --checksum: whether a same-size file has the same content (decided by the caller). */
  sameContent?: (source: SourceEntry, remote: RemoteEntry) => boolean;
  /**
   * A compared listing's bitmap (src/listing.ts): bit i set when the destination holds
   * `tree.entries[i]` unchanged by `quickCheck`, so `remote` need not hold it. Not with `sameContent`.
   */
  unchanged?: Uint8Array;
}

/** The attributes of an entry that planning compares. */
export interface CheckedAttributes {
  type: EntryType | 'p';
  size: number;
  mtimeMs: number;
  mode: number;
  linkTarget?: string;
}

/**
 * Mtimes compare to the millisecond, give or take 10 µs: times travel as floating-point seconds
 * (utimes), so an exact millisecond may come back a few hundred nanoseconds early.
 */
function sameTime(a: number, b: number): boolean {
  return Math.abs(a - b) < 0.01 || Math.floor(a) === Math.floor(b);
}

/**
 * The quick check: true when the destination's entry needs nothing from a run without --checksum
 * (same type; a file of the same size, mtime and mode; a symlink to the same target with the same
 * mtime; a directory of the same mode and mtime). planChanges decides by it, and an agent comparing
 * a listing (docs/protocol.md) leaves out exactly the entries it holds true for.
 */
export function quickCheck(source: CheckedAttributes, remote: CheckedAttributes): boolean {
  if (source.type !== remote.type || !sameTime(remote.mtimeMs, source.mtimeMs)) return false;
  if (source.type === 'l') return remote.linkTarget === source.linkTarget;
  return remote.mode === source.mode && (source.type !== 'f' || remote.size === source.size);
}

const treeIndexes = new WeakMap<readonly SourceEntry[], { length: number; sourcePaths: Set<string>; dirs: Map<string, SourceEntry> }>();

/** Lookups over the source entries, made once per scan however many destinations are planned. */
function treeIndex(tree: SourceTree) {
  let index = treeIndexes.get(tree.entries);
  if (!index || index.length !== tree.entries.length) {
    const dirs = new Map(tree.entries.filter((e) => e.type === 'd').map((e) => [e.path, e]));
    index = { length: tree.entries.length, sourcePaths: new Set(tree.entries.map((e) => e.path)), dirs };
    treeIndexes.set(tree.entries, index);
  }
  return index;
}

export function planChanges(tree: SourceTree, remote: RemoteEntry[], filter: PathFilter, options: PlanOptions): Plan {
  const partials = new Set(remote.filter((e) => e.type === 'p').map((e) => e.path));
  remote = remote.filter((e) => e.type !== 'p');
  const remoteByPath = new Map(remote.map((e) => [e.path, e]));
  const plan: Plan = { deletes: [], mkdirs: [], files: [], symlinks: [], attrs: [], dirAttrs: [], unchanged: 0 };
  const { sourcePaths, dirs } = treeIndex(tree);
  const touchedDirs = new Set<string>();
  const parentOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  const deleted = new Set<string>();
  const scope = tree.scope ? new Scope(tree.scope) : undefined;

  const held = options.unchanged;
  for (let i = 0; i < tree.entries.length; i++) {
    const entry = tree.entries[i];
    if (held && (held[i >> 3] & (1 << (i & 7))) !== 0) {
      // The agent found it passes the quick check (below): nothing to do.
      if (entry.type !== 'd') plan.unchanged++;
      continue;
    }
    const r = remoteByPath.get(entry.path);
    // A directory above the scope that the destination holds as a file is not replaced (a scoped run
    // never deletes outside its scope): its mkdir fails and the paths under it are reported.
    if (r && r.type !== entry.type && (!scope || scope.contains(entry.path))) {
      plan.deletes.push({ kind: 'delete', path: entry.path, remote: r });
      deleted.add(entry.path);
    }
    const existing = r && r.type === entry.type ? r : undefined;
    if (existing && (entry.type !== 'f' || !options.sameContent) && quickCheck(entry, existing)) {
      if (entry.type !== 'd') plan.unchanged++;
      continue;
    }
    if (entry.type === 'd') {
      if (!existing) {
        plan.mkdirs.push({ kind: 'mkdir', path: entry.path, source: entry });
        touchedDirs.add(parentOf(entry.path));
        touchedDirs.add(entry.path);
      } else if (existing.mode !== entry.mode || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
        touchedDirs.add(entry.path);
      }
      continue;
    }
    if (entry.type === 'l') {
      if (!existing || existing.linkTarget !== entry.linkTarget || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
        plan.symlinks.push({ kind: 'symlink', path: entry.path, source: entry, remote: existing });
        touchedDirs.add(parentOf(entry.path));
      } else {
        plan.unchanged++;
      }
      continue;
    }
    if (!existing) {
      plan.files.push({ kind: 'create', path: entry.path, source: entry, resume: partials.has(entry.path) && !r });
      touchedDirs.add(parentOf(entry.path));
      continue;
    }
    const sameSize = existing.size === entry.size;
    const unchanged = options.sameContent
      ? sameSize && options.sameContent(entry, existing)
      : sameSize && sameTime(existing.mtimeMs, entry.mtimeMs);
    if (!unchanged) {
      plan.files.push({ kind: 'update', path: entry.path, source: entry, remote: existing });
      touchedDirs.add(parentOf(entry.path));
    } else if (existing.mode !== entry.mode || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
      plan.attrs.push({ kind: 'attrs', path: entry.path, source: entry, remote: existing });
    } else {
      plan.unchanged++;
    }
  }

  if (options.delete) {
    const scopes = tree.root ? [''] : tree.entries.filter((e) => e.type === 'd' && !e.path.includes('/')).map((e) => e.path);
    const inScope = scope
      ? (path: string) => scope.contains(path)
      : (path: string) => scopes.some((s) => s === '' || path.startsWith(`${s}/`));
    for (const r of remote) {
      if (sourcePaths.has(r.path) || !inScope(r.path) || filter.excludes(r.path, r.type === 'd')) continue;
      // Only the topmost extraneous entry: deleting a directory takes its contents.
      let parent = parentOf(r.path);
      let covered = false;
      while (parent !== '') {
        if (deleted.has(parent)) {
          covered = true;
          break;
        }
        parent = parentOf(parent);
      }
      deleted.add(r.path);
      if (covered) continue;
      plan.deletes.push({ kind: 'delete', path: r.path, remote: r });
      touchedDirs.add(parentOf(r.path));
    }
  }

  for (const path of touchedDirs) {
    const source = path === '' ? tree.root : dirs.get(path);
    if (source) plan.dirAttrs.push({ kind: 'attrs', path, source });
  }
  plan.dirAttrs.sort((a, b) => depth(b.path) - depth(a.path));
  return plan;
}

export function depth(path: string): number {
  if (path === '') return 0;
  let n = 1;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}
