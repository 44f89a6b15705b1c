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
}

/**
 * Mtimes compare to the millisecond, give or take 10 µs: times travel as floating-point seconds
 * (utimes), so an exact millisecond may come back a few hundred nanoseconds early.
 */
function sameTime(a: number, b: number): boolean {
  return Math.abs(a - b) < 0.01 || Math.floor(a) === Math.floor(b);
}

export function planChanges(tree: SourceTree, remote: RemoteEntry[], filter: PathFilter, options: PlanOptions): Plan {
  const partials = new Set(remote.filter((e) => e.type === 'p').map((e) => e.path));
  remote = remote.filter((e) => e.type !== 'p');
  const remoteByPath = new Map(remote.map((e) => [e.path, e]));
  const plan: Plan = { deletes: [], mkdirs: [], files: [], symlinks: [], attrs: [], dirAttrs: [], unchanged: 0 };
  const sourcePaths = new Set(tree.entries.map((e) => e.path));
  const touchedDirs = new Set<string>();
  const parentOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  const deleted = new Set<string>();
  const scope = tree.scope ? new Scope(tree.scope) : undefined;

  for (const entry of tree.entries) {
    const r = remoteByPath.get(entry.path);
    // A directory above the scope that the destination holds as a file is not replaced (a scoped run
    // never deletes outside its scope): its mkdir fails and the paths under it are reported.
    if (r && r.type !== entry.type && (!scope || scope.contains(entry.path))) {
      plan.deletes.push({ kind: 'delete', path: entry.path, remote: r });
      deleted.add(entry.path);
    }
    const existing = r && r.type === entry.type ? r : undefined;
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

  const dirs = new Map(tree.entries.filter((e) => e.type === 'd').map((e) => [e.path, e]));
  if (tree.root) dirs.set('', tree.root);
  for (const path of touchedDirs) {
    const source = dirs.get(path);
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
