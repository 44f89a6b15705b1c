/**
 * The paths a batch syncs. Changes are kept as wire paths (relative to the destination root, as the
 * fan-out's `paths` takes them); a batch syncs the smallest set of subtrees that covers them.
 */
import { basename } from 'node:path';

/** How local paths under the watched directory map to wire paths, rsync style ("dir/" vs "dir"). */
export class SourceLayout {
  /** The directory that is watched (the source without a trailing slash). */
  readonly directory: string;
  /** '' for "dir/" (its contents go to the root), else "dir" (the directory itself goes to the root). */
  readonly prefix: string;

  constructor(source: string) {
    const contents = source.endsWith('/');
    this.directory = source.replace(/\/+$/, '') || '/';
    this.prefix = contents ? '' : basename(this.directory);
  }

  /** The wire path of a path relative to the watched directory ('' is the directory itself). */
  wireOf(relative: string): string {
    if (this.prefix === '') return relative;
    return relative === '' ? this.prefix : `${this.prefix}/${relative}`;
  }

  /** The local path of a wire path, or undefined when it is outside the watched directory. */
  localOf(wire: string): string | undefined {
    if (this.prefix === '') return wire === '' ? this.directory : `${this.directory}/${wire}`;
    if (wire === this.prefix) return this.directory;
    if (wire.startsWith(`${this.prefix}/`)) return `${this.directory}/${wire.slice(this.prefix.length + 1)}`;
    return undefined;
  }

  /** The wire path that stands for the whole tree. */
  get top(): string {
    return this.prefix;
  }
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** True when `path` is `scope` or lies below it ('' covers everything). */
export function covers(scope: string, path: string): boolean {
  return scope === '' || path === scope || (path.length > scope.length && path.startsWith(scope) && path.charCodeAt(scope.length) === 47);
}

/**
 * The smallest list of subtrees covering `paths`: duplicates dropped, paths below another dropped,
 * sorted. A '' (the whole tree) covers everything.
 */
export function coveringScopes(paths: Iterable<string>): string[] {
  const unique = new Set(paths);
  if (unique.has('')) return [''];
  const kept = new Set<string>();
  // Shallowest first, so a path is dropped when any of its ancestors was kept.
  for (const path of [...unique].sort((a, b) => depthOf(a) - depthOf(b))) {
    let ancestor = parentOf(path);
    let covered = false;
    while (ancestor !== '' && !covered) {
      covered = kept.has(ancestor);
      ancestor = parentOf(ancestor);
    }
    if (!covered) kept.add(path);
  }
  return [...kept].sort();
}

function depthOf(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}
