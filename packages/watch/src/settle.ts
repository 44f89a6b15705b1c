/**
 * Settling: a file that is still being written must not be sent half-written. A file is settled when
 * it has been quiet for `settleMs`: no event for it in that time and its mtime at least that old
 * (copies that restore an old mtime do so at the end, after their writes, which were events). The
 * fan-out then reads it with a stat before and after, so a write that slips in is still caught.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { covers, parentOf, type SourceLayout } from './scopes.js';

export interface SettleOptions {
  layout: SourceLayout;
  now: number;
  settleMs: number;
  /** When the last event for a wire path arrived, if one did in this batch. */
  lastEvent: (wire: string) => number | undefined;
  /** Excluded wire paths (as the sync's filter) are neither checked nor sent. */
  excludes: (wire: string, isDirectory: boolean) => boolean;
  /** Stop looking after this many entries; the rest counts as settled. */
  maxEntries?: number;
}

export interface SettleResult {
  /** Regular files (wire paths) inside the scopes that are still changing. */
  unsettled: string[];
  /** When the earliest of them can be settled, if any. */
  wakeAt: number | undefined;
}

const DEFAULT_MAX_ENTRIES = 500_000;

/** Finds the files inside `scopes` that are not settled yet. */
export function findUnsettled(scopes: string[], options: SettleOptions): SettleResult {
  const unsettled: string[] = [];
  let wakeAt: number | undefined;
  let budget = options.maxEntries ?? DEFAULT_MAX_ENTRIES;

  const check = (wire: string, st: Stats) => {
    const event = options.lastEvent(wire) ?? -Infinity;
    // A future mtime (clock skew, touch -d) says nothing about activity; events still do.
    const mtime = st.mtimeMs > options.now + 1000 ? -Infinity : st.mtimeMs;
    const quietSince = Math.max(event, mtime);
    if (options.now - quietSince < options.settleMs) {
      unsettled.push(wire);
      const at = quietSince + options.settleMs;
      wakeAt = wakeAt === undefined ? at : Math.min(wakeAt, at);
    }
  };
  const walk = (local: string, wire: string) => {
    let names: string[];
    try {
      names = readdirSync(local);
    } catch {
      return; // vanished or unreadable: the sync reports what it finds
    }
    for (const name of names) {
      if (--budget < 0) return;
      const childWire = wire === '' ? name : `${wire}/${name}`;
      const childLocal = `${local}/${name}`;
      const st = lstatSync(childLocal, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) {
        if (!options.excludes(childWire, true)) walk(childLocal, childWire);
      } else if (st.isFile() && !options.excludes(childWire, false)) {
        check(childWire, st);
      }
    }
  };

  for (const scope of scopes) {
    const local = options.layout.localOf(scope);
    if (local === undefined) continue;
    const st = lstatSync(local, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(local, scope);
    else if (st.isFile()) check(scope, st);
  }
  return { unsettled, wakeAt };
}

/**
 * A path that no longer exists whose parent is gone too (a directory removed with its contents, and
 * only some of the events seen) is replaced by its topmost missing ancestor, so the deletion at the
 * destinations takes the whole subtree.
 */
export function liftMissing(scopes: string[], layout: SourceLayout): string[] {
  return scopes.map((scope) => {
    let path = scope;
    while (path !== layout.top && covers(layout.top, path)) {
      const parent = parentOf(path);
      const local = layout.localOf(parent);
      if (local === undefined || lstatSync(local, { throwIfNoEntry: false })) break;
      path = parent;
    }
    return path;
  });
}

/**
 * An exclude rule that matches exactly one wire path (gitignore syntax: anchored, specials escaped);
 * undefined for a name no rule can express (a line break, trailing white space).
 */
export function exactPattern(wire: string): string | undefined {
  if (/[\r\n]|\s$/.test(wire)) return undefined;
  return `/${wire.replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}`;
}
