/**
 * What a destination needs, from the source tree and the destination's listing: the rsync -a
 * decisions. Quick check by size and mtime (to the millisecond), or by content with `checksum`.
 * Deletions are scoped to what is transferred (a "dir" source only deletes under dir/), and excluded
 * paths are never deleted, as in rsync without --delete-excluded. A scoped tree (`tree.scope`) narrows
 * that further: only paths in the scope (and their subtrees) are deleted; the directories above them
 * are never deleted, not even to replace a non-directory the destination has there.
 * Extraneous entries are deleted in a fixed order (comparePaths), so that --max-delete (limitDeletes)
 * picks the same ones whatever order the destination listed them in.
 */
import type { RemoteEntry, RootEntry } from './agent-client.js';
import type { PathFilter } from './filter.js';
import type { EntryType } from './messages.js';
import { Scope } from './scope.js';
import type { SourceEntry, SourceTree } from './tree.js';

export type ChangeKind = 'create' | 'update' | 'attrs' | 'mkdir' | 'symlink' | 'delete' | 'hardlink';

export interface Change {
  kind: ChangeKind;
  path: string;
  source?: SourceEntry;
  remote?: RemoteEntry;
  /** A create that can resume from a partial file the destination kept (--partial). */
  resume?: boolean;
  /** A delete of an entry the source does not have (--delete), not of one whose type changes. */
  extraneous?: boolean;
  /**
   * A delete of a directory: the entries under it that the destination listed, deepest first (they
   * go with it; itemized one by one, as rsync does).
   */
  contents?: RemoteEntry[];
  /** A hard link (-H): the path of the name its file is sent under, which this one is linked to. */
  linkTo?: string;
}

/** Whether a file change is sent as a delta against a basis at the destination (its file, or a kept partial). */
export function hasBasis(change: Change): boolean {
  return change.kind === 'update' || change.resume === true;
}

export interface Plan {
  /**
   * Entries whose type changes (in source order), then extraneous entries, topmost only, in
   * comparePaths order.
   */
  deletes: Change[];
  /** Directories to create, parents before children. */
  mkdirs: Change[];
  /** Regular files to create or update. */
  files: Change[];
  /** --link-dest: new files a link-dest directory holds as they are, linked from there instead of sent (link-dest.ts sets it). */
  linkDest?: Change[];
  /** --link-dest, --copy-dest: new files (still in `files`) a basis directory holds in another version, to be sent as deltas against it. */
  basisDest?: Change[];
  symlinks: Change[];
  /**
   * -H: files that are other names of a file sent (or kept) under its first name in the tree: each
   * is linked to that name, made anew only where the destination does not have it so already.
   */
  hardlinks: Change[];
  /** Attribute-only changes of files (mode, mtime). */
  attrs: Change[];
  /** Directories whose mode or mtime must be (re)set at the end, deepest first. */
  dirAttrs: Change[];
  unchanged: number;
  /** Files and symlinks left as they are by a transfer rule (TransferRules), though they differ or are missing. */
  skipped: number;
  /** Their paths (and those --compare-dest leaves out): what the destination does not get (--remove-source-files keeps them). */
  leftAlone: Set<string>;
  /** What was compared beyond size, mtime and mode, for itemizing the changes (itemize.ts). */
  compared: { checksum: boolean; owner?: PlanOptions['owner'] };
}

/**
 * rsync's transfer rules: they limit which files are sent, not the listing, so they never change
 * what --delete removes.
 */
export interface TransferRules {
  /**
   * -u, --update: a regular file the destination holds with a newer mtime is left alone (its data and
   * attributes). As in rsync, symlinks are not concerned, and an entry of another type is replaced
   * whatever its time.
   */
  update?: boolean;
  /** --ignore-existing: a file or symlink is sent only where the destination has nothing at its path. */
  ignoreExisting?: boolean;
  /** --existing: nothing new is created (no file, symlink or directory the destination lacks); what exists is updated. */
  existing?: boolean;
  /**
   * --size-only: a file of the same size counts as unchanged whatever its mtime; only its attributes
   * (mode, mtime) are set, as rsync -a does. Not with --checksum, which decides by content.
   */
  sizeOnly?: boolean;
  /**
   * -I, --ignore-times: no quick check for regular files: every file the destination has is sent
   * (as a delta, so an unchanged one costs its signature and a delta of copies). Not with --checksum,
   * which decides by content.
   */
  ignoreTimes?: boolean;
  /** --max-size: a regular file larger than this many bytes is not sent (new or changed). */
  maxSize?: number;
  /** --min-size: a regular file smaller than this many bytes is not sent (new or changed). */
  minSize?: number;
}

/** Whether the rules leave `source` as the destination holds it (`remote`: its entry there, if any). */
export function skippedByRules(rules: TransferRules, source: CheckedAttributes, remote: CheckedAttributes | undefined): boolean {
  if (source.type === 'd') return rules.existing === true && remote === undefined;
  if (source.type === 'f' && ((rules.maxSize !== undefined && source.size > rules.maxSize) || (rules.minSize !== undefined && source.size < rules.minSize))) return true;
  if (remote === undefined) return rules.existing === true;
  if (rules.ignoreExisting) return true;
  return rules.update === true && source.type === 'f' && remote.type === 'f' && remote.mtimeMs > source.mtimeMs && !sameTime(remote.mtimeMs, source.mtimeMs);
}

export interface PlanOptions extends TransferRules {
  delete: boolean;
  /** With `delete`, rsync's --delete-excluded: excluded entries at the destination are deleted too. */
  deleteExcluded?: boolean;
  /** -H, --hard-links: names of one file in the source are hard links to one file at the destination. */
  hardLinks?: boolean;
  /** With `delete`: destination entries never deleted as extraneous (backups, backup.ts). */
  protect?: (path: string) => boolean;
  /**
   * --owner or --chown at an agent that can keep owners: the owner and group each entry should have
   * (either undefined: not compared). An entry whose owner or group differs needs its attributes set
   * (a symlink is made anew) even when the quick check holds. Needs the full listing.
   */
  owner?: (source: SourceEntry) => { uid?: number; gid?: number };
  /** For --checksum: whether a same-size file has the same content (decided by the caller). */
  sameContent?: (source: SourceEntry, remote: RemoteEntry) => boolean;
  /**
   * The destination root's own attributes (the agent's hello): a "dir/" source's root directory is
   * compared with them as any directory is (rsync's `./`), its mode, mtime and owner set where they differ.
   */
  root?: RootEntry;
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
export function sameTime(a: number, b: number): boolean {
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

interface TreeIndex {
  length: number;
  readonly sourcePaths: Set<string>;
  readonly dirs: Map<string, SourceEntry>;
  /** Bit i (byte i >> 3, bit i & 7) set: entry i is a directory. */
  readonly dirBits: Uint8Array;
}

/** Set bits of each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, v) => {
  let n = 0;
  for (let x = v; x; x &= x - 1) n++;
  return n;
});

const treeIndexes = new WeakMap<readonly SourceEntry[], TreeIndex>();

/**
 * Lookups over the source entries, made once per scan however many destinations are planned, and
 * each only when first needed (a run without --delete, or with no directory to touch, needs neither).
 */
function treeIndex(tree: SourceTree): TreeIndex {
  let index = treeIndexes.get(tree.entries);
  if (!index || index.length !== tree.entries.length) {
    const entries = tree.entries;
    let sourcePaths: Set<string> | undefined;
    let dirs: Map<string, SourceEntry> | undefined;
    let dirBits: Uint8Array | undefined;
    index = {
      length: entries.length,
      get sourcePaths() {
        if (!sourcePaths) {
          sourcePaths = new Set();
          for (const e of entries) sourcePaths.add(e.path);
        }
        return sourcePaths;
      },
      get dirs() {
        if (!dirs) {
          dirs = new Map();
          for (const e of entries) if (e.type === 'd') dirs.set(e.path, e);
        }
        return dirs;
      },
      get dirBits() {
        if (!dirBits) {
          dirBits = new Uint8Array(Math.ceil(entries.length / 8));
          for (let i = 0; i < entries.length; i++) if (entries[i].type === 'd') dirBits[i >> 3] |= 1 << (i & 7);
        }
        return dirBits;
      },
    };
    treeIndexes.set(tree.entries, index);
  }
  return index;
}

export function planChanges(tree: SourceTree, remote: RemoteEntry[], filter: PathFilter, options: PlanOptions): Plan {
  const partials = new Set(remote.filter((e) => e.type === 'p').map((e) => e.path));
  remote = remote.filter((e) => e.type !== 'p');
  const remoteByPath = new Map(remote.map((e) => [e.path, e]));
  const plan: Plan = {
    deletes: [],
    mkdirs: [],
    files: [],
    symlinks: [],
    hardlinks: [],
    attrs: [],
    dirAttrs: [],
    unchanged: 0,
    skipped: 0,
    leftAlone: new Set(),
    compared: { checksum: options.sameContent !== undefined, owner: options.owner },
  };
  const owner = options.owner;
  const rules = options.update || options.ignoreExisting || options.existing || options.maxSize !== undefined || options.minSize !== undefined;
  const index = treeIndex(tree);
  const touchedDirs = new Set<string>();
  const parentOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  /** Each deleted path's delete: the topmost's own, or the one that takes it with its directory. */
  const deleted = new Map<string, Change>();
  const scope = tree.scope ? new Scope(tree.scope) : undefined;

  /** Whether the owner or group `remote` has is not the one `entry` should have (owners kept). */
  const ownerDiffers = (entry: SourceEntry, remote: RemoteEntry): boolean => {
    const want = owner?.(entry);
    return want !== undefined && ((want.uid !== undefined && remote.uid !== want.uid) || (want.gid !== undefined && remote.gid !== want.gid));
  };
  const rootRemote = options.root;
  if (tree.root && rootRemote && (ownerDiffers(tree.root, rootRemote) || rootRemote.mode !== tree.root.mode || !sameTime(rootRemote.mtimeMs, tree.root.mtimeMs))) {
    touchedDirs.add('');
  }

  const held = options.unchanged;
  if (held) {
    // Entries the agent found to pass the quick check (below) need nothing: counted by the byte
    // (directories are not counted), and skipped eight at a time where the whole byte is held. A
    // plan runs once per destination, mostly before V8 has optimized it: a step per entry of a
    // 20,000-entry tree cost ~8 ms a destination.
    const dirs = index.dirBits;
    for (let b = 0; b < held.length; b++) plan.unchanged += POPCOUNT[held[b] & ~(dirs[b] ?? 0) & 0xff];
  }
  // -H: every later name of a file is linked to its first, whatever the agent's compare found (it
  // does not see links); held ones were counted unchanged above, which the link's reply decides.
  const followers = options.hardLinks ? hardLinkFollowers(tree) : undefined;
  if (followers) {
    for (const [i, leader] of followers) {
      const entry = tree.entries[i];
      const r = remoteByPath.get(entry.path);
      // Transfer rules leave alone what differs or is missing; a name held unchanged is neither.
      if (held && (held[i >> 3] & (1 << (i & 7))) !== 0) plan.unchanged--;
      else if (rules && skippedByRules(options, entry, r)) {
        plan.skipped++;
        plan.leftAlone.add(entry.path);
        continue;
      }
      if (r && r.type !== 'f' && (!scope || scope.contains(entry.path))) {
        const change: Change = { kind: 'delete', path: entry.path, remote: r };
        plan.deletes.push(change);
        deleted.set(entry.path, change);
      }
      plan.hardlinks.push({ kind: 'hardlink', path: entry.path, source: entry, remote: r?.type === 'f' ? r : undefined, linkTo: leader });
      touchedDirs.add(parentOf(entry.path));
    }
  }
  for (let i = 0; i < tree.entries.length; i++) {
    if (held) {
      const byte = held[i >> 3];
      if (byte === 0xff && (i & 7) === 0) {
        i += 7;
        continue;
      }
      if ((byte & (1 << (i & 7))) !== 0) continue;
    }
    if (followers?.has(i)) continue;
    const entry = tree.entries[i];
    const r = remoteByPath.get(entry.path);
    if (rules && skippedByRules(options, entry, r)) {
      if (entry.type !== 'd') {
        plan.skipped++;
        plan.leftAlone.add(entry.path);
      }
      continue;
    }
    // A directory above the scope that the destination holds as a file is not replaced (a scoped run
    // never deletes outside its scope): its mkdir fails and the paths under it are reported.
    if (r && r.type !== entry.type && (!scope || scope.contains(entry.path))) {
      const change: Change = { kind: 'delete', path: entry.path, remote: r };
      plan.deletes.push(change);
      deleted.set(entry.path, change);
    }
    const existing = r && r.type === entry.type ? r : undefined;
    const ownerChanged = existing !== undefined && ownerDiffers(entry, existing);
    if (existing && !ownerChanged && (entry.type !== 'f' || (!options.sameContent && !options.ignoreTimes)) && quickCheck(entry, existing)) {
      if (entry.type !== 'd') plan.unchanged++;
      continue;
    }
    if (entry.type === 'd') {
      if (!existing) {
        plan.mkdirs.push({ kind: 'mkdir', path: entry.path, source: entry });
        touchedDirs.add(parentOf(entry.path));
        touchedDirs.add(entry.path);
      } else if (ownerChanged || existing.mode !== entry.mode || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
        touchedDirs.add(entry.path);
      }
      continue;
    }
    if (entry.type === 'l') {
      if (!existing || ownerChanged || existing.linkTarget !== entry.linkTarget || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
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
      : !options.ignoreTimes && sameSize && (options.sizeOnly || sameTime(existing.mtimeMs, entry.mtimeMs));
    if (!unchanged) {
      plan.files.push({ kind: 'update', path: entry.path, source: entry, remote: existing });
      touchedDirs.add(parentOf(entry.path));
    } else if (ownerChanged || existing.mode !== entry.mode || !sameTime(existing.mtimeMs, entry.mtimeMs)) {
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
    // In comparePaths order whatever the listing's: a directory comes before its contents.
    // What lies under a directory listed without its contents (a mount point with -x) is kept.
    const opaque = tree.entries.filter((e) => e.noContent).map((e) => `${e.path}/`);
    const underOpaque = (path: string) => opaque.length > 0 && opaque.some((p) => path.startsWith(p));
    const extraneous = remote.filter(
      (r) =>
        !index.sourcePaths.has(r.path) &&
        inScope(r.path) &&
        !underOpaque(r.path) &&
        !options.protect?.(r.path) &&
        (options.deleteExcluded || !filter.excludes(r.path, r.type === 'd')),
    );
    extraneous.sort((a, b) => comparePaths(a.path, b.path));
    for (const r of extraneous) {
      // Only the topmost extraneous entry: deleting a directory takes its contents.
      let parent = parentOf(r.path);
      let covering: Change | undefined;
      while (parent !== '') {
        covering = deleted.get(parent);
        if (covering) break;
        parent = parentOf(parent);
      }
      if (covering) {
        (covering.contents ??= []).push(r);
        deleted.set(r.path, covering);
        continue;
      }
      const change: Change = { kind: 'delete', path: r.path, remote: r, extraneous: true };
      deleted.set(r.path, change);
      plan.deletes.push(change);
      touchedDirs.add(parentOf(r.path));
    }
    // Deepest first, as they go: comparePaths order put each directory before what is in it.
    for (const change of plan.deletes) change.contents?.reverse();
  }

  for (const path of touchedDirs) {
    const source = path === '' ? tree.root : index.dirs.get(path);
    if (!source) continue;
    const r = path === '' ? rootRemote : remoteByPath.get(path);
    plan.dirAttrs.push(r?.type === 'd' ? { kind: 'attrs', path, source, remote: r } : { kind: 'attrs', path, source });
  }
  plan.dirAttrs = byDepth(plan.dirAttrs, -1);
  return plan;
}

const followerCache = new WeakMap<readonly SourceEntry[], Map<number, string>>();

/**
 * -H: the entries that are not the first name (in tree order) of a file with several names in the
 * tree, each with that first name's path. Found once per scan, however many destinations.
 */
export function hardLinkFollowers(tree: SourceTree): Map<number, string> {
  let followers = followerCache.get(tree.entries);
  if (!followers) {
    followers = new Map();
    const first = new Map<string, string>();
    tree.entries.forEach((e, i) => {
      if (e.inode === undefined) return;
      const leader = first.get(e.inode);
      if (leader === undefined) first.set(e.inode, e.path);
      else followers!.set(i, leader);
    });
    followerCache.set(tree.entries, followers);
  }
  return followers;
}

/**
 * The order of a depth-first walk with the names in each directory sorted by UTF-16 code units (as
 * tree.ts and the agent's listing walk): component by component, a directory before what is in it.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A '/' ends a component: "a/z" comes before "a-b", as "a" does.
    if (x === 47) return -1;
    if (y === 47) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * --max-delete: the deletes a run makes when at most `max` extraneous entries may go (undefined: no
 * limit). Each extraneous delete of the plan counts as one (a directory with all it holds is one, as
 * the plan lists only the topmost), and the first `max` in the plan's order are kept. Deletes of
 * entries whose type changes are not counted and always kept, as rsync does not count them (delete.c,
 * DEL_MAKE_ROOM): the entry replacing them could not be made otherwise.
 */
export function limitDeletes(deletes: readonly Change[], max: number | undefined): { deletes: Change[]; skipped: number } {
  if (max === undefined) return { deletes: [...deletes], skipped: 0 };
  const kept: Change[] = [];
  let counted = 0;
  let skipped = 0;
  for (const change of deletes) {
    if (!change.extraneous) kept.push(change);
    else if (counted < max) {
      kept.push(change);
      counted++;
    } else skipped++;
  }
  return { deletes: kept, skipped };
}

/**
 * `changes` sorted by the depth of their paths, shallowest first (`order` 1) or deepest first (-1),
 * keeping the order of equal depths; each depth counted once, not at every comparison.
 */
export function byDepth(changes: readonly Change[], order: 1 | -1): Change[] {
  const depths = changes.map((c) => depth(c.path));
  const at = changes.map((_, i) => i);
  at.sort((a, b) => order * (depths[a] - depths[b]) || a - b);
  return at.map((i) => changes[i]);
}

export function depth(path: string): number {
  if (path === '') return 0;
  let n = 1;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}
