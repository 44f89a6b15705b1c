/**
 * A scoped sync: the wire paths a run is limited to (a watcher's batch of changed paths). A path in
 * scope covers itself and, for a directory, its whole subtree; the directories above it (its
 * ancestors) are looked at too, so that missing parents are made and their attributes restored, but
 * they are never deleted. Source scan, destination listing and planning all use the same rules.
 */
import { wirePathComponents } from './paths.js';

/**
 * Checks and simplifies a list of scope paths: undefined (or a list holding '', the root) means the
 * whole tree and gives undefined; otherwise the paths sorted in tree order (parents before children,
 * names compared component by component), without duplicates and without paths already covered by
 * another one. Throws PathError for a malformed path (absolute, '..', NUL, empty component).
 */
export function normalizeScope(paths: readonly string[] | undefined): string[] | undefined {
  if (paths === undefined) return undefined;
  for (const path of paths) wirePathComponents(path);
  if (paths.includes('')) return undefined;
  const sorted = [...new Set(paths)].sort(compareTreeOrder);
  const kept: string[] = [];
  const keptSet = new Set<string>();
  for (const path of sorted) {
    // A covering path sorts before what it covers, so it is already kept when we get here.
    if (ancestorsOf(path).some((a) => keptSet.has(a))) continue;
    kept.push(path);
    keptSet.add(path);
  }
  return kept;
}

/** Tree order of wire paths: component by component, so "a/b" comes before "a-b" as a walk visits them. */
export function compareTreeOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The proper ancestors of a wire path, outermost first, the root ('') excluded. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) out.push(path.slice(0, at));
  return out;
}

/** Membership tests for a normalized scope. */
export class Scope {
  private readonly roots: Set<string>;
  private readonly ancestors = new Set<string>();

  constructor(readonly paths: readonly string[]) {
    this.roots = new Set(paths);
    for (const path of paths) for (const a of ancestorsOf(path)) this.ancestors.add(a);
  }

  /** Whether `path` is a scope path or lies under one. */
  contains(path: string): boolean {
    if (this.roots.has(path)) return true;
    for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) {
      if (this.roots.has(path.slice(0, at))) return true;
    }
    return false;
  }

  /** Whether `path` is a directory above a scope path (and not itself in scope). */
  isAncestor(path: string): boolean {
    return this.ancestors.has(path) && !this.contains(path);
  }

  /** What a scoped listing holds: paths in scope and their ancestors. */
  covers(path: string): boolean {
    return this.ancestors.has(path) || this.contains(path);
  }
}
