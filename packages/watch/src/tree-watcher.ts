/**
 * The source-tree watcher of watch mode: one non-recursive `fs.watch` (one inotify watch) per directory,
 * turned into "this path may have changed" signals, with the failure modes of inotify made explicit:
 * a possibly overflowed event queue, directories that could not be watched, new directories whose first
 * files were written before their watch existed, and the root itself going away.
 *
 * Why not `fs.watch(root, { recursive: true })`: on Linux, Node 20 emulates it in JavaScript (a scan per
 * event, slow and racy). Why not @parcel/watcher: it ignores IN_Q_OVERFLOW and does not scan new
 * directories, the two ways lsyncd-style tools silently drift.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { BigIntStats } from 'node:fs';

export interface TreeWatcherOptions {
  /** Local directory to watch (the source tree). */
  root: string;
  /**
   * Paths (relative to root, '/' separators) that are not watched and not reported; directories excluded
   * are not descended. For a path that no longer exists the watcher passes `isDirectory: true` only when it
   * knew the path as a directory.
   */
  excludes?: (path: string, isDirectory: boolean) => boolean;
  /**
   * Events in one event-loop turn taken as a possible queue overflow. Default: the kernel's
   * fs.inotify.max_queued_events minus an eighth (events for watches already closed occupy the queue
   * but never reach JavaScript, so the count can fall short of the queue size).
   */
  overflowThreshold?: number;
}

export type WatchSignal =
  /** A relative path that may have been created, modified, deleted or renamed (from or to); '' = the whole tree. A directory path means its whole subtree. */
  | { type: 'change'; path: string }
  /**
   * Events may have been lost: treat the whole tree as changed. `degraded` is the state when the signal is
   * sent: true while some directory is not watched (the watch limit, permissions, the root gone), so the
   * consumer should also rescan periodically; a later rescan with `degraded: false` says every directory
   * is watched again.
   */
  | { type: 'rescan'; reason: string; degraded: boolean };

/** One watched (or meant to be watched) directory. The tree mirrors the source tree minus excludes. */
interface DirNode {
  rel: string;
  name: string;
  dev: bigint;
  ino: bigint;
  watcher: FSWatcher | null;
  parent: DirNode | null;
  children: Map<string, DirNode>;
  /** Names of excluded subdirectories, so that their deletion is judged as a directory's. */
  excludedDirs: Set<string>;
  live: boolean;
}

/** What one structural operation (watching, scanning, dropping) found, reported once it is complete. */
interface OpContext {
  /** Paths whose subtree is new or gone: each is reported once its watches are in place. */
  changed: Set<string>;
  failures: { rel: string; reason: string }[];
}

const ROOT_POLL_MS = 1000;
/**
 * Attempts in a row at watching a directory that fs.watch calls missing (ENOENT, ENOTDIR) while lstat
 * calls it a directory, or that is replaced between the lstat before its watch and the one after.
 */
const WATCH_ATTEMPTS = 3;

/**
 * Overflow inference. libuv reads the whole inotify queue in one I/O callback and drops IN_Q_OVERFLOW
 * (its wd is -1), so the only trace of an overflow is a turn that delivered about a full queue of events.
 * The queue is per inotify instance, and libuv has one per process: the count is shared by all watchers.
 */
interface TurnListener {
  count(eventsThisTurn: number): void;
  newTurn(): void;
}
const turnListeners = new Set<TurnListener>();
let eventsThisTurn = 0;

function countEvent(): void {
  if (eventsThisTurn === 0) {
    // setImmediate runs after the poll phase, so everything libuv dispatched in this read falls in one turn.
    setImmediate(() => {
      eventsThisTurn = 0;
      for (const listener of turnListeners) listener.newTurn();
    });
  }
  eventsThisTurn++;
  for (const listener of turnListeners) listener.count(eventsThisTurn);
}

function defaultOverflowThreshold(): number {
  let queued = 16384;
  try {
    const value = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'), 10);
    if (Number.isSafeInteger(value) && value > 0) queued = value;
  } catch {
    // Not Linux, or /proc not mounted: the kernel default.
  }
  return Math.max(1, queued - Math.max(64, Math.floor(queued / 8)));
}

function describeWatchError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') {
    return 'ENOSPC: the inotify watch limit is reached (raise fs.inotify.max_user_watches)';
  }
  if (e?.code === 'EMFILE') {
    return 'EMFILE: the inotify instance limit is reached (raise fs.inotify.max_user_instances)';
  }
  if (!e?.code) return String(err);
  // Node's messages start with the code already ("ENOENT: no such file or directory, watch '/x'").
  return e.message?.startsWith(`${e.code}:`) ? e.message : `${e.code}: ${e.message}`;
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function parentRel(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

function isGone(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** lstat telling "gone" (null) from "cannot tell" (undefined, e.g. EACCES on a parent). */
async function lstatOrGone(abs: string): Promise<BigIntStats | null | undefined> {
  try {
    return await lstat(abs, { bigint: true });
  } catch (err) {
    return isGone(err) ? null : undefined;
  }
}

/**
 * Watches a local directory tree and reports what may have changed. Signals say "look here", never what
 * happened: the consumer compares the source with its destinations, so a spurious signal costs a compare,
 * and a missing one would cost drift; every path where events may have been lost is therefore reported
 * as a directory (its subtree) or as a rescan.
 */
export class TreeWatcher {
  readonly #root: string;
  readonly #excludes: (path: string, isDirectory: boolean) => boolean;
  readonly #threshold: number;
  readonly #onSignal: (signal: WatchSignal) => void;
  #rootNode: DirNode | null = null;
  #watched = 0;
  /** Directories that exist but are not watched, with why: non-empty means degraded. */
  readonly #failures = new Map<string, string>();
  #started = false;
  #closed = false;
  /** Paths being looked at after an event, with whether another event came meanwhile (look again). */
  readonly #settling = new Map<string, boolean>();
  /** Structural operations run one at a time so two of them never watch the same directory twice. */
  #queue: Promise<void> = Promise.resolve();
  readonly #queuedPaths = new Set<string>();
  #reconcileQueued = false;
  #overflowThisTurn = false;
  /** This turn's events, looked at when the turn ends: dropped unread if the turn turns out an overflow. */
  #turnEvents: [DirNode, string | null][] = [];
  #rootPoll: NodeJS.Timeout | null = null;
  readonly #turnListener: TurnListener;

  constructor(options: TreeWatcherOptions, onSignal: (signal: WatchSignal) => void) {
    this.#root = resolve(options.root);
    this.#excludes = options.excludes ?? (() => false);
    this.#threshold = options.overflowThreshold ?? defaultOverflowThreshold();
    if (!Number.isSafeInteger(this.#threshold) || this.#threshold < 1) {
      throw new RangeError(`overflowThreshold must be a positive integer, got ${options.overflowThreshold}`);
    }
    this.#onSignal = onSignal;
    this.#turnListener = {
      count: (events) => {
        if (events >= this.#threshold && !this.#overflowThisTurn) {
          this.#overflowThisTurn = true;
          this.#turnEvents = [];
          this.#queueReconcile(
            `${events} inotify events in one event-loop turn (threshold ${this.#threshold}): the kernel queue may have overflowed`,
          );
        }
      },
      newTurn: () => {
        const events = this.#turnEvents;
        this.#turnEvents = [];
        this.#overflowThisTurn = false;
        for (const [node, name] of events) this.#dispatch(node, name);
      },
    };
  }

  /** Number of directories with a live watch. */
  get watchedDirectories(): number {
    return this.#watched;
  }

  /**
   * Watches every non-excluded directory under the root; resolves once all are watched (or failed to be,
   * which is reported as a degraded rescan). Rejects if the root is not a directory.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('TreeWatcher.start() was already called');
    this.#started = true;
    const st = await lstat(this.#root);
    if (!st.isDirectory()) throw new Error(`cannot watch ${this.#root}: not a directory`);
    if (this.#closed) return;
    turnListeners.add(this.#turnListener);
    await this.#enqueue(async () => {
      const ctx = newContext();
      await this.#ensure('', null, true, ctx, true);
      if (!this.#rootNode) {
        this.#rootGone();
        return;
      }
      this.#reportFailures(ctx);
    });
  }

  /** Stops watching; idempotent. No signal is sent after it returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    turnListeners.delete(this.#turnListener);
    if (this.#rootPoll) clearInterval(this.#rootPoll);
    this.#rootPoll = null;
    this.#turnEvents = [];
    if (this.#rootNode) this.#drop(this.#rootNode);
  }

  #emit(signal: WatchSignal): void {
    if (this.#closed) return;
    try {
      this.#onSignal(signal);
    } catch (err) {
      // A throwing consumer must not break the watcher's bookkeeping; surface it as uncaught instead.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  #lookup(rel: string): DirNode | null {
    let node = this.#rootNode;
    if (rel === '' || !node) return node;
    for (const name of rel.split('/')) {
      node = node.children.get(name) ?? null;
      if (!node) return null;
    }
    return node;
  }

  #enqueue(op: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      try {
        await op();
      } catch (err) {
        this.#emit({ type: 'rescan', reason: `watcher error: ${describeWatchError(err)}`, degraded: true });
      }
    };
    this.#queue = this.#queue.then(run);
    return this.#queue;
  }

  // ---- events ----

  #onEvent(node: DirNode, filename: string | Buffer | null): void {
    if (this.#closed || !node.live) return;
    countEvent();
    // The rescan that follows covers everything this turn delivered.
    if (this.#overflowThisTurn) return;
    this.#turnEvents.push([node, filename === null || filename === undefined ? null : String(filename)]);
  }

  #dispatch(node: DirNode, name: string | null): void {
    if (this.#closed || !node.live) return;
    if (name === null) {
      // Something in this directory changed, but not what: rescan it (it may hold a new subdirectory).
      this.#queuePath(node.rel, true, true);
      return;
    }
    // Events about the watched directory itself (IN_ATTRIB, IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED)
    // arrive named after it (libuv substitutes its basename), like a child of the same name would:
    // check the directory first, and the child only if the directory is still the one watched.
    if (name === basename(this.#abs(node.rel))) {
      this.#queuePath(node.rel, false, false, () => {
        if (node.live) this.#settle(joinRel(node.rel, name));
      });
      return;
    }
    this.#settle(joinRel(node.rel, name));
  }

  #onWatchError(node: DirNode, err: unknown): void {
    if (this.#closed || !node.live || !node.watcher) return;
    node.watcher.close();
    node.watcher = null;
    this.#watched--;
    const reason = describeWatchError(err);
    this.#failures.set(node.rel, reason);
    this.#emit({
      type: 'rescan',
      reason: `watching ${node.rel === '' ? 'the root' : node.rel} failed: ${reason}`,
      degraded: true,
    });
  }

  /** Looks at a path an event named, at most one look in flight per path (storms collapse). */
  #settle(rel: string): void {
    if (this.#settling.has(rel)) {
      this.#settling.set(rel, true);
      return;
    }
    this.#settling.set(rel, false);
    void (async () => {
      try {
        do {
          this.#settling.set(rel, false);
          await this.#settleOnce(rel);
        } while (this.#settling.get(rel) === true && !this.#closed);
      } catch (err) {
        // Only the excludes callback can throw here; the path's fate is unknown.
        this.#emit({ type: 'rescan', reason: `watcher error: ${describeWatchError(err)}`, degraded: true });
      } finally {
        this.#settling.delete(rel);
      }
    })();
  }

  async #settleOnce(rel: string): Promise<void> {
    let st: BigIntStats | null = null;
    let gone = false;
    try {
      st = await lstat(this.#abs(rel), { bigint: true });
    } catch (err) {
      gone = isGone(err);
    }
    if (this.#closed) return;
    const parent = this.#lookup(parentRel(rel));
    // The parent was dropped meanwhile: its own removal was (or will be) reported.
    if (!parent || !parent.live) return;
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    const child = parent.children.get(name);
    if (st?.isDirectory()) {
      if (this.#excludes(rel, true)) {
        parent.excludedDirs.add(name);
        if (child) this.#queuePath(rel, false, false);
        return;
      }
      parent.excludedDirs.delete(name);
      // Even a watched directory's change goes through the queue: an operation may be watching its
      // subtree right now (a second event for a new directory), and a directory is reported only once
      // its watches are in place. New, replaced, or unwatched after a failure: watched there too.
      this.#queuePath(rel, true, false);
      return;
    }
    if ((st === null && !gone) || (gone && this.#failures.has(rel))) {
      // Cannot tell what it is (EACCES): #ensure looks again and counts it as a failure, so the tree is
      // degraded until it can be watched. Gone after a failure: #ensure forgets the failure and says so.
      this.#queuePath(rel, true, false);
      return;
    }
    if (child) {
      // A watched directory is gone or became a file (or symlink): drop its watches, then report.
      this.#queuePath(rel, true, false);
      return;
    }
    if (gone && parent.excludedDirs.delete(name)) return;
    if (st) parent.excludedDirs.delete(name);
    if (!this.#excludes(rel, false)) this.#emit({ type: 'change', path: rel });
  }

  // ---- structural operations ----

  /**
   * Brings the watches at `rel` in line with the disk, then reports. `report`: send a change for `rel`
   * even if its watches did not change; `deep`: rescan an already-watched subtree too.
   */
  #queuePath(rel: string, report: boolean, deep: boolean, then?: () => void): void {
    const key = `${report ? 'r' : '-'}${deep ? 'd' : '-'}${rel}`;
    // A queued look that has not started yet will see whatever this event saw; `then` must not be lost.
    if (!then && this.#queuedPaths.has(key)) return;
    if (!then) this.#queuedPaths.add(key);
    void this.#enqueue(async () => {
      if (!then) this.#queuedPaths.delete(key);
      await this.#lookAt(rel, report, deep);
      then?.();
    });
  }

  async #lookAt(rel: string, report: boolean, deep: boolean): Promise<void> {
    const wasDegraded = this.#failures.size > 0;
    const ctx = newContext();
    if (rel === '') {
      const before = this.#rootNode;
      if (!before) return; // the root is gone: its poll takes over
      await this.#ensure('', null, deep, ctx, true);
      if (!this.#rootNode) return this.#rootGone();
      if (this.#rootNode !== before) {
        this.#emit({
          type: 'rescan',
          reason: `the root ${this.#root} was replaced by another directory`,
          degraded: this.#failures.size > 0,
        });
        return;
      }
      this.#report(ctx, report ? '' : null, wasDegraded);
      return;
    }
    const parent = this.#lookup(parentRel(rel));
    if (!parent) return; // its removal covers this path
    await this.#ensure(rel, parent, deep, ctx, true);
    this.#report(ctx, report ? rel : null, wasDegraded);
  }

  /** After a possible overflow: re-walk the whole tree (new directories' events may be lost), then rescan. */
  #queueReconcile(reason: string): void {
    if (this.#reconcileQueued) return;
    this.#reconcileQueued = true;
    void this.#enqueue(async () => {
      this.#reconcileQueued = false;
      const before = this.#rootNode;
      if (!before) return; // the root is gone: its poll rescans when it comes back
      const ctx = newContext();
      await this.#ensure('', null, true, ctx, true);
      if (!this.#rootNode) return this.#rootGone();
      this.#emit({ type: 'rescan', reason, degraded: this.#failures.size > 0 });
    });
  }

  #report(ctx: OpContext, alsoPath: string | null, wasDegraded: boolean): void {
    for (const path of ctx.changed) this.#emit({ type: 'change', path });
    if (alsoPath !== null && !ctx.changed.has(alsoPath)) this.#emit({ type: 'change', path: alsoPath });
    if (ctx.failures.length > 0) {
      this.#reportFailures(ctx);
    } else if (wasDegraded && this.#failures.size === 0) {
      this.#emit({ type: 'rescan', reason: 'every directory is watched again', degraded: false });
    }
  }

  #reportFailures(ctx: OpContext): void {
    if (ctx.failures.length === 0) return;
    const first = ctx.failures[0];
    const more = ctx.failures.length > 1 ? ` and ${ctx.failures.length - 1} more` : '';
    this.#emit({
      type: 'rescan',
      reason: `cannot watch ${first.rel === '' ? 'the root' : first.rel}${more}: ${first.reason}`,
      degraded: true,
    });
  }

  #rootGone(): void {
    this.#emit({
      type: 'rescan',
      reason: `the root ${this.#root} was deleted or moved away; waiting for it to reappear`,
      degraded: true,
    });
    if (this.#rootPoll || this.#closed) return;
    // Nothing is left to watch, and the parent may not exist either: poll for the root's return.
    this.#rootPoll = setInterval(() => {
      lstat(this.#root).then(
        (st) => {
          if (!st.isDirectory() || this.#closed || !this.#rootPoll) return;
          clearInterval(this.#rootPoll);
          this.#rootPoll = null;
          void this.#enqueue(async () => {
            const ctx = newContext();
            await this.#ensure('', null, true, ctx, true);
            if (!this.#rootNode) return this.#rootGone();
            this.#emit({
              type: 'rescan',
              reason: `the root ${this.#root} reappeared`,
              degraded: this.#failures.size > 0,
            });
          });
        },
        () => {},
      );
    }, ROOT_POLL_MS);
  }

  /**
   * Makes the watches at `rel` match the disk: drops them if the directory is gone, replaced or now
   * excluded; otherwise watches it first and lists it second (whatever is created after the watch raises
   * events, whatever came before is in the listing), recursing into subdirectories that are new, or into
   * all of them when `deep`. New subtrees and dropped ones are recorded in ctx.changed. A directory that
   * is still there after its watch failed is a failure (ctx.failures and #failures: a degraded rescan),
   * whatever the error, so that none is left unwatched in silence; one that vanished is not.
   */
  async #ensure(rel: string, parent: DirNode | null, deep: boolean, ctx: OpContext, announce: boolean): Promise<void> {
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    const abs = this.#abs(rel);
    // The node this call created: still new on a later attempt, so it is listed and announced.
    let created: DirNode | undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.#closed || (parent && !parent.live)) return;
      const existing = parent ? parent.children.get(name) : this.#rootNode;
      let before: BigIntStats;
      try {
        before = await lstat(abs, { bigint: true });
      } catch (err) {
        if (this.#closed || (parent && !parent.live)) return;
        const current = parent ? parent.children.get(name) : this.#rootNode;
        if (current) this.#dropAndRecord(current, ctx);
        if (isGone(err)) {
          this.#failures.delete(rel);
        } else if (parent) {
          // Kept among the failures (the tree is degraded) until a look succeeds or finds it gone.
          const reason = describeWatchError(err);
          this.#failures.set(rel, reason);
          ctx.failures.push({ rel, reason });
        }
        return;
      }
      if (this.#closed || (parent && !parent.live)) return;
      // Structural operations are serialized, so nothing else replaced the node during the lstat.
      let node = existing;
      if (!before.isDirectory() || (parent !== null && this.#excludes(rel, true))) {
        this.#failures.delete(rel);
        if (parent && before.isDirectory()) parent.excludedDirs.add(name);
        if (node) this.#dropAndRecord(node, ctx);
        return;
      }
      if (node && (node.ino !== before.ino || node.dev !== before.dev)) {
        this.#dropAndRecord(node, ctx);
        node = undefined;
      }
      let fresh = node !== undefined && node === created;
      if (!node) {
        node = created = this.#addNode(rel, name, parent, before);
        fresh = true;
      }
      let recovered = false;
      if (!node.watcher) {
        let failure: string | null = null;
        const err = this.#startWatch(node);
        if (err === null) {
          // A directory swapped for a symlink between the lstat and the watch would have us watching
          // the link's target: compare with a second lstat and retry if it changed.
          let after: BigIntStats | null = null;
          try {
            after = await lstat(abs, { bigint: true });
          } catch {
            after = null;
          }
          if (!node.live) return;
          if (after?.isDirectory() && after.ino === before.ino && after.dev === before.dev) {
            recovered = !fresh;
          } else {
            // The watch may be on another inode than the path names: never keep it.
            this.#drop(node);
            if (attempt < WATCH_ATTEMPTS) continue;
            failure = `it was replaced while being watched, ${WATCH_ATTEMPTS} times in a row`;
          }
        } else if (isGone(err)) {
          // Vanished since the lstat (or a path component did), or an error that does not mean it: the
          // next attempt's lstat tells, and ends silently if it is gone (its parent's event covers it).
          if (attempt < WATCH_ATTEMPTS) continue;
          failure = `${describeWatchError(err)} (lstat says it is still a directory)`;
        } else {
          failure = describeWatchError(err);
        }
        if (failure !== null) {
          if (isGone(err) || err === null) {
            // Out of attempts: look once more, so that only a directory still there is a failure.
            const now = await lstatOrGone(abs);
            if (this.#closed || (parent && !parent.live)) return;
            if (now === null || (now !== undefined && !now.isDirectory())) {
              if (node.live) this.#dropAndRecord(node, ctx);
              else if (parent) ctx.changed.add(rel);
              return;
            }
            // undefined (cannot tell): keep what we know, and count it as a failure.
            if (now !== undefined && (!node.live || node.ino !== now.ino || node.dev !== now.dev)) {
              if (node.live) this.#dropAndRecord(node, ctx);
              node = created = this.#addNode(rel, name, parent, now);
              fresh = true;
            } else if (!node.live) {
              node = created = this.#addNode(rel, name, parent, before);
              fresh = true;
            }
          }
          // The node stays, unwatched, so that an event naming it or a re-walk tries again; below it,
          // the listing still watches what it can.
          this.#failures.set(rel, failure);
          ctx.failures.push({ rel, reason: failure });
        }
      }
      if ((fresh || recovered) && announce) ctx.changed.add(rel);
      if (!fresh && !recovered && !deep) return;
      let entries;
      try {
        entries = await readdir(abs, { withFileTypes: true });
      } catch (err) {
        if (!node.live) return;
        if (isGone(err)) {
          this.#dropAndRecord(node, ctx);
        } else {
          // Listed or not, its subdirectories are unknown: degraded until a later look succeeds.
          const reason = `cannot list: ${describeWatchError(err)}`;
          this.#failures.set(rel, reason);
          ctx.failures.push({ rel, reason });
        }
        return;
      }
      if (!node.live) return;
      if (node.watcher) this.#failures.delete(rel);
      const subdirs: string[] = [];
      const present = new Set<string>();
      for (const entry of entries) {
        if (!entry.isDirectory()) continue; // symlinks included: never followed
        const childRel = joinRel(rel, entry.name);
        if (this.#excludes(childRel, true)) {
          node.excludedDirs.add(entry.name);
          continue;
        }
        present.add(entry.name);
        subdirs.push(entry.name);
      }
      // A listing racing with renames may miss entries, so it is trusted for neither side:
      // - a known subdirectory missing from it is looked at (lstat) by #ensure, which drops it only if it
      //   is gone, not a directory, or another directory, rather than dropped on the listing's word;
      // - a subdirectory it misses was not there all along (a getdents pass returns every entry present
      //   throughout it), so it was created or renamed into this directory during or after the listing,
      //   which is after the watch above was added: that watch raised an event for it (IN_CREATE or
      //   IN_MOVED_TO), delivered to this node (registered, live, before its watch), and the look at it
      //   (#settleOnce) queues a #lookAt that runs after this operation and watches it. The same holds
      //   for one created between the watch and the listing: listed, or evented, or both.
      for (const childName of node.children.keys()) {
        if (!present.has(childName)) subdirs.push(childName);
      }
      const current = node;
      // Children of a new directory are covered by its own report; only announce them under an old one.
      const announceChildren = !fresh && !recovered;
      await Promise.all(
        subdirs.map((childName) => this.#ensure(joinRel(rel, childName), current, deep, ctx, announceChildren)),
      );
      return;
    }
  }

  /** Registers a node for a directory (before its watch, so that the watch's events find it live). */
  #addNode(rel: string, name: string, parent: DirNode | null, st: BigIntStats): DirNode {
    const node: DirNode = {
      rel,
      name,
      dev: st.dev,
      ino: st.ino,
      watcher: null,
      parent,
      children: new Map(),
      excludedDirs: new Set(),
      live: true,
    };
    if (parent) parent.children.set(name, node);
    else this.#rootNode = node;
    return node;
  }

  /** Adds the inotify watch of a node: null, or the error (the caller decides what it means). */
  #startWatch(node: DirNode): unknown {
    try {
      const watcher = watch(this.#abs(node.rel), { persistent: true }, (_event, filename) =>
        this.#onEvent(node, filename),
      );
      watcher.on('error', (err) => this.#onWatchError(node, err));
      node.watcher = watcher;
      this.#watched++;
      this.#failures.delete(node.rel);
      return null;
    } catch (err) {
      return err ?? new Error('fs.watch threw nothing');
    }
  }

  #dropAndRecord(node: DirNode, ctx: OpContext): void {
    const rel = node.rel;
    this.#drop(node);
    ctx.changed.add(rel);
  }

  /** Closes the watches of a subtree and forgets it. */
  #drop(node: DirNode): void {
    for (const child of node.children.values()) this.#drop(child);
    node.children.clear();
    node.live = false;
    if (node.watcher) {
      node.watcher.close();
      node.watcher = null;
      this.#watched--;
    }
    this.#failures.delete(node.rel);
    // Failures below it with no node of their own (a directory that could not be looked at) go too.
    const below = node.rel === '' ? '' : `${node.rel}/`;
    for (const rel of this.#failures.keys()) if (rel.startsWith(below)) this.#failures.delete(rel);
    if (node.parent) {
      if (node.parent.children.get(node.name) === node) node.parent.children.delete(node.name);
    } else if (this.#rootNode === node) {
      this.#rootNode = null;
    }
  }
}

function newContext(): OpContext {
  return { changed: new Set(), failures: [] };
}
