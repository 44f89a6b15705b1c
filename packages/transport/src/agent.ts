/**
 * The agent: the destination side of a session. It serves one destination root over any pair of
 * byte streams (stdin/stdout of `deltacast agent`, an SSH exec channel, an in-process pipe). It lists
 * the tree, makes signatures of basis files, and applies deltas into temporary files beside their
 * targets, verifying each file's whole-file hash before renaming it into place. Every path it is sent goes
 * through `resolveInRoot`; every field through the readers in messages.ts.
 */
import { chmodSync, chownSync, close, closeSync, constants, createReadStream, lchownSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, utimesSync, fchmodSync, fchownSync, futimesSync, linkSync, lstatSync, openSync, realpathSync, readSync, renameSync, rmdirSync, rmSync, writeSync, writevSync, type Stats } from 'node:fs';
import { lchown, lstat, lutimes, mkdir, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import {
  bufferBasis,
  encodeSignature,
  fileHashLoaded,
  loadFileHashes,
  loadStrongSums,
  patchPieces,
  patchStream,
  DeltacastError,
  type BasisReader,
} from '@deltacast/core/deferred';
import { fileSignature } from './file-signature.js';
import { ByteBudget, ChunkQueue } from './chunk-queue.js';
import type { Frame, Header } from './frame.js';
import { PathError, ProtocolError, TransportError } from './errors.js';
import {
  bool,
  CAPABILITIES,
  DATA_CHUNK,
  MAX_LIST_PATHS,
  MAX_OWNER_IDS,
  MIN_PROTOCOL_VERSION,
  optStr,
  optTime,
  optUint,
  PROTOCOL_VERSION,
  str,
  strList,
  time,
  uint,
  type EntryType,
} from './messages.js';
import { joinWire, resolveInRootSync } from './paths.js';
import { decodeBatchFiles, decodeLinks, decodeMkdirs, decodeSetattrs, encodeBatchResults, MAX_BATCH_BASIS, numberResults, MAX_BATCH_FILES, TOO_LARGE, type BatchFile, type BatchResult, type SetattrEntry } from './batch.js';
import { normalizeScope } from './scope.js';
import { decodeListing, inflateListing, MAX_LISTING_BYTES, MAX_LISTING_ENTRIES } from './listing.js';
import { ListingComparer } from './listing-comparer.js';
import { WalkGate } from './walk-gate.js';
import { decodeFuzzy, placeFuzzyBasis } from './fuzzy.js';
import { BASIS, decodeLinkDest, linkDestDirs, linkFromDirs, type LinkDestContext } from './link-dest.js';
import { entryTypeOf, lstatFields, type EntryStat } from './lstat-fields.js';
import { parsePartialName, parseTempName, partialPathFor, processAlive, tempPathFor } from './tempfile.js';
import { FrameSession, type ByteStreams } from './wire.js';
import { parseStageName, Stage } from './stage.js';
import { DestinationLock, LOCK_NAME } from './lock.js';
import { backupPath, checkBackup, type Backup } from './backup.js';
import { resolveOwnerName, resolveOwnerNames, type OwnerDatabaseFiles } from './owner-names.js';
import { checkReleaseId, currentRelease, discardRelease, listReleases, prepareRelease, pruneReleases, RELEASES_DIR, switchRelease, unshare } from './release.js';

export interface AgentOptions {
  /** If set, only roots inside this directory may be served. */
  allowedRoot?: string;
  /**
   * If set, the one root served, whatever the peer would like: a hello must name it as '.' (a
   * pull's local destination, served to the remote sender, which is not trusted to choose it);
   * any other root is refused (PATH_ESCAPE).
   */
  root?: string;
  /**
   * With `root` (a pull's agent): the only --link-dest directories a peer may name (the user's own,
   * as given), so that the peer cannot have files elsewhere on this host linked into the root.
   */
  linkDestDirs?: string[];
  /** The user and group databases names are resolved in (then `getent`); default /etc/passwd and /etc/group. */
  ownerFiles?: OwnerDatabaseFiles;
  /** Version string reported in the hello. */
  version?: string;
}

/** Listing entries per frame are bounded by bytes, to keep headers far below the 64 KiB cap. */
const LIST_BATCH_BYTES = 24 * 1024;
const HASH_BATCH = 256;
const QUEUE_HIGH = 8 * 1024 * 1024;
const QUEUE_LOW = 2 * 1024 * 1024;
/**
 * Requests that leave the tree as it is: walks (`list`, `compare`) and reads. Any other request
 * changes it, and never runs during a walk (walk-gate.ts).
 */
const LEAVES_TREE = new Set(['list', 'compare', 'sig', 'sigs', 'hash', 'release-list', 'owners']);

interface SessionOptions {
  owner: boolean;
  partial: boolean;
  /** Keep what a change replaces or deletes (backup.ts); undefined: no backups. */
  backup?: Backup;
  /** --chown: the ids every file, directory and symlink written gets (either may be absent). */
  chown?: { uid?: number; gid?: number };
  /** --owner by name (`owners`): the client's ids to this host's, where the names map them elsewhere. */
  idMap?: { uids: Map<number, number>; gids: Map<number, number> };
}

/** Serves one session; resolves when the peer says bye or closes, rejects on a protocol error. */
export function serveAgent(streams: ByteStreams, options: AgentOptions = {}): Promise<void> {
  return new Agent(streams, options).done;
}

/**
 * Waits, before a put patches anything, for XXH3-128 in case its deltas carry it: begun when a
 * compare finds files that differ or a signature is asked for, not at hello (~10 ms of CPU a session
 * with nothing to patch does not spend). A failure to set it up fails only such deltas (NOT_READY),
 * not the SHA-256 ones.
 */
async function fileHashesReady(): Promise<void> {
  if (!fileHashLoaded('xxh128')) await loadFileHashes().catch(() => {});
}

/** Begins setting XXH3-128 up ahead of the puts a request announces (fileHashesReady waits for it). */
function beginFileHashes(): void {
  loadFileHashes().catch(() => {});
}

class Agent {
  readonly done: Promise<void>;
  private readonly session: FrameSession;
  private root: string | undefined;
  private opts: SessionOptions = { owner: false, partial: false };
  private readonly puts = new Map<number, ChunkQueue>();
  private readonly budget: ByteBudget;
  private readonly tasks = new Set<Promise<void>>();
  private helloPromise: Promise<void> | undefined;
  private readonly active = new Set<number>();
  /** Temp files of puts in flight in this process: a listing must not take them for leftovers. */
  private readonly inFlight = new Set<string>();
  /** Targets whose partial name holds another version placed by `link-dest` this session: their basis, with or without --partial. */
  private readonly placedBases = new Set<string>();
  private byeReceived = false;
  /** Open stages of a whole-tree commit, by the client's stage id. */
  private readonly stages = new Map<string, Stage>();
  private lock: DestinationLock | undefined;
  /** The root named at hello; `root` moves into a release directory after release-enter. */
  private baseRoot: string | undefined;
  /** In a release directory files may be hard links shared with older releases. */
  private inRelease = false;
  /**
   * The walk begun at hello when the client announced a compare of the whole tree (`walk`): the
   * first compare uses it, so the walk ran while the client scanned its side. Any other request
   * drops it (it may change the tree), as does a root that moved (release-enter).
   */
  private prewalk: { root: string; entries: Promise<Walked> } | undefined;
  /** Walks and changes to the tree never overlap (walk-gate.ts). */
  private readonly gate = new WalkGate();
  /**
   * Directories under the root this session has seen to be real directories (checked for a path,
   * walked, or made): a path's parents among them are not checked again (docs/protocol.md, Paths).
   * Forgotten when this agent deletes or replaces them, cleared by a new walk, a commit and the
   * release steps.
   */
  private readonly dirs = new Set<string>();

  constructor(
    streams: ByteStreams,
    private readonly options: AgentOptions,
  ) {
    this.session = new FrameSession(streams);
    this.budget = new ByteBudget(QUEUE_HIGH, QUEUE_LOW, () => this.session.pause(), () => this.session.resume());
    this.done = new Promise((resolvePromise, reject) => {
      this.session.onClose((closeError) => {
        // Input that ends without a bye means the client died: transfers in flight are abandoned.
        const error = closeError ?? (this.byeReceived ? undefined : new TransportError('CLOSED', 'input ended without bye', {}));
        const failure = error ?? new TransportError('CLOSED', 'peer closed the session', {});
        // Stages never committed leave the tree as it was.
        for (const stage of this.stages.values()) stage.abort();
        this.stages.clear();
        this.lock?.release();
        for (const queue of this.puts.values()) queue.fail(failure);
        this.puts.clear();
        void Promise.allSettled([...this.tasks]).then(() => (error ? reject(error) : resolvePromise()));
      });
    });
    this.session.onFrame((frame) => this.dispatch(frame));
  }

  private dispatch(frame: Frame): void {
    const h = frame.header;
    if (h.t === 'hello') {
      this.helloPromise = this.track(this.hello(h));
      return;
    }
    if (h.t === 'bye') {
      this.byeReceived = true;
      // Released now: the client may end this process as soon as our output closes. Stages never
      // committed go first (the lock was made before them: undone in reverse order).
      for (const stage of this.stages.values()) stage.abort();
      this.stages.clear();
      this.lock?.release();
      this.session.end();
      return;
    }
    if (this.root === undefined && !this.helloPromise) {
      throw new ProtocolError('BAD_MESSAGE', `"${h.t}" before hello`, { type: h.t });
    }
    if (h.t === 'data') {
      const queue = this.puts.get(uint(h, 'id'));
      if (!queue) return; // the put already failed; its data is dropped
      if (frame.payload) queue.push(bool(h, 'z') ? inflate(frame.payload) : frame.payload.slice());
      return;
    }
    if (h.t === 'end') {
      const id = uint(h, 'id');
      this.puts.get(id)?.end();
      this.puts.delete(id);
      return;
    }
    const id = uint(h, 'id');
    const handler = this.handlerFor(h.t);
    if (!handler) throw new ProtocolError('BAD_MESSAGE', `unknown message type "${h.t}"`, { type: h.t });
    if (h.t !== 'compare') this.prewalk = undefined;
    if (h.t.startsWith('release-')) this.dirs.clear(); // the root, or what lies under it, moves
    if (this.active.has(id)) throw new ProtocolError('BAD_MESSAGE', `request id ${id} is already in flight`, { id });
    this.active.add(id);
    // A put's data may all arrive (and its `end` remove it from the routing map) before its
    // handler runs, so the handler gets its queue now.
    const queue = h.t === 'put' || h.t === 'compare' ? new ChunkQueue(this.budget) : undefined;
    if (queue) this.puts.set(id, queue);
    // A batch's payload counts against the same budget as queued put data until the batch is done.
    const payload = h.t === 'puts' ? frame.payload : undefined;
    if (payload) this.budget.add(payload.length);
    const run = async () => {
      await this.helloPromise;
      try {
        // A request sent right behind a hello that failed: that session is over, with nothing to answer.
        if (this.root === undefined) {
          queue?.discard();
          if (queue && this.puts.get(id) === queue) this.puts.delete(id);
          return;
        }
        const call = () => handler.call(this, id, h, queue, payload);
        await (LEAVES_TREE.has(h.t) ? call() : this.gate.change(call));
      } catch (error) {
        queue?.discard();
        if (queue && this.puts.get(id) === queue) this.puts.delete(id);
        await this.replyError(id, error, typeof h.path === 'string' ? h.path : null);
      } finally {
        this.active.delete(id);
        if (payload) this.budget.release(payload.length);
      }
    };
    this.track(run());
  }

  private handlerFor(type: string): ((id: number, h: Header, queue?: ChunkQueue, payload?: Uint8Array) => Promise<void>) | undefined {
    switch (type) {
      case 'puts':
        return this.putBatch;
      case 'sigs':
        return this.signatureBatch;
      case 'list':
        return this.list;
      case 'compare':
        return this.compare;
      case 'sig':
        return this.signature;
      case 'put':
        return this.put;
      case 'mkdir':
        return this.mkdir;
      case 'mkdirs':
        return this.mkdirBatch;
      case 'symlink':
        return this.symlink;
      case 'delete':
        return this.remove;
      case 'setattr':
        return this.setattr;
      case 'setattrs':
        return this.setattrBatch;
      case 'links':
        return this.linkBatch;
      case 'link-dest':
        return this.linkDest;
      case 'fuzzy':
        return this.fuzzy;
      case 'hash':
        return this.hash;
      case 'owners':
        return this.mapOwners;
      case 'commit':
        return this.commitStage;
      case 'release-prepare':
        return this.releasePrepare;
      case 'release-enter':
        return this.releaseEnter;
      case 'release-switch':
        return this.releaseSwitch;
      case 'release-discard':
        return this.releaseDiscard;
      case 'release-list':
        return this.releaseList;
      case 'abort':
        return this.abortStage;
      default:
        return undefined;
    }
  }

  private track(task: Promise<void>): Promise<void> {
    const tracked = task.catch((error) => {
      this.session.destroy(error instanceof TransportError ? error : new ProtocolError('BAD_MESSAGE', String(error), {}));
    });
    this.tasks.add(tracked);
    void tracked.finally(() => this.tasks.delete(tracked));
    return tracked;
  }

  private async hello(h: Header): Promise<void> {
    const versions = h.v;
    if (!Array.isArray(versions) || versions.length !== 2 || !versions.every((v) => Number.isInteger(v))) {
      throw new ProtocolError('BAD_MESSAGE', 'hello: "v" must be [min, max]', {});
    }
    const [min, max] = versions as number[];
    if (max < MIN_PROTOCOL_VERSION || min > PROTOCOL_VERSION) {
      await this.session.send({ t: 'error', id: 0, code: 'VERSION_MISMATCH', message: `agent speaks protocol ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}, client ${min}..${max}` });
      throw new ProtocolError('VERSION_MISMATCH', `client speaks protocol ${min}..${max}`, { min, max });
    }
    let backup: Backup | undefined;
    let chown: SessionOptions['chown'];
    let rootAttrs: { mode: number; mtime: number; uid: number; gid: number; made: boolean } | undefined;
    try {
      // Checked before the lock is taken: a malformed request takes nothing.
      if (h.backup !== undefined && h.backup !== null) {
        const b = h.backup as Record<string, unknown>;
        if (typeof b !== 'object' || (b.dir !== undefined && typeof b.dir !== 'string') || typeof b.suffix !== 'string') {
          throw new ProtocolError('BAD_MESSAGE', 'hello: "backup" must be a map of dir (optional) and suffix', {});
        }
        backup = checkBackup({ dir: b.dir as string | undefined, suffix: b.suffix });
      }
      // Names resolved here, where the files are: ids differ between hosts. Only root can give files away.
      if (h.chown !== undefined && h.chown !== null && process.getuid?.() === 0) chown = resolveChown(h.chown, this.options.ownerFiles);
      const allowed = this.options.allowedRoot !== undefined ? await realpath(this.options.allowedRoot) : undefined;
      // A relative root is relative to the allowed root if there is one, else to the working directory.
      const named = str(h, 'root');
      if (this.options.root !== undefined && named !== '.') throw new PathError('PATH_ESCAPE', `this agent serves one root, ${this.options.root}, named '.', not ${JSON.stringify(named)}`, { root: named });
      const requested = this.options.root !== undefined ? resolve(this.options.root) : allowed !== undefined ? resolve(allowed, named) : resolve(named);
      const inside = (path: string) => allowed === undefined || path === allowed || path.startsWith(`${allowed}/`);
      if (!inside(requested)) throw new PathError('PATH_ESCAPE', `root ${requested} is outside the allowed ${allowed}`, { root: requested });
      // Like rsync, create the destination directory itself if it is missing; a dry run (`dry`)
      // makes nothing: a missing root lists as empty, and the run would make it.
      const dry = bool(h, 'dry');
      const missing = dry && (await lstat(requested).catch(() => undefined)) === undefined;
      const made = missing || (!dry && (await mkdir(requested, { recursive: true })) !== undefined);
      const real = missing ? await realpathOfMissing(requested) : await realpath(requested);
      // Checked again after resolving symlinks: a link inside the allowed root may point out of it.
      if (!inside(real)) throw new PathError('PATH_ESCAPE', `root ${requested} resolves to ${real}, outside the allowed ${allowed}`, { root: real });
      // The root's own attributes, before the lock touches its mtime: the client compares them.
      const st = missing ? undefined : await lstat(real);
      rootAttrs = st ? { mode: st.mode & 0o7777, mtime: st.mtimeMs, uid: st.uid, gid: st.gid, made } : { mode: 0, mtime: 0, uid: 0, gid: 0, made };
      if (bool(h, 'lock') && !missing) this.lock = DestinationLock.acquire(real);
      this.root = real;
      this.baseRoot = real;
    } catch (error) {
      await this.replyError(0, error);
      this.byeReceived = true; // the agent ends this session itself: a clean end
      this.session.end();
      return;
    }
    // Owners are kept only by an agent that can set them (root); elsewhere the option does nothing, as
    // it says, rather than failing each file owned by someone else with EPERM.
    this.opts = { owner: bool(h, 'owner') && process.getuid?.() === 0, partial: bool(h, 'partial'), backup, chown };
    await this.session.send({
      t: 'hello',
      v: PROTOCOL_VERSION,
      caps: [...CAPABILITIES],
      root: this.root,
      version: this.options.version ?? '0',
      uid: process.getuid?.() ?? -1,
      rootAttrs,
      // The ids --chown resolved to here, for the client to compare owners against.
      ...(chown ? { chown: { ...(chown.uid !== undefined ? { uid: chown.uid } : {}), ...(chown.gid !== undefined ? { gid: chown.gid } : {}) } } : {}),
    });
    // Signatures need the hash modules: set up now, off this thread's back while it walks or waits,
    // not when the first signature request arrives (a failure is reported by that request).
    loadStrongSums(['xxh64']).catch(() => {});
    if (bool(h, 'walk')) {
      const entries = new Walked();
      // Once the reply is out. It never overlaps a request that changes the tree (walk-gate.ts).
      const walked = new Promise<void>((r) => setImmediate(r))
        .then(() => this.walkListing(undefined, entries.add))
        .then(() => entries);
      walked.catch(() => {}); // a failed walk is walked again, and reported, by the compare
      this.prewalk = { root: this.rootDir, entries: walked };
    }
  }

  /** The local path of a wire path, its parents checked (resolveInRootSync) against `dirs`. */
  private resolve(path: string): string {
    return resolveInRootSync(this.rootDir, path, this.dirs);
  }

  /** Forgets `target` and what lies under it, if it was a known directory (none under it is, else). */
  private forgetDirs(target: string): void {
    if (!this.dirs.delete(target)) return;
    const prefix = `${target}/`;
    for (const dir of this.dirs) if (dir.startsWith(prefix)) this.dirs.delete(dir);
  }

  private get rootDir(): string {
    if (this.root === undefined) throw new TransportError('CLOSED', 'no root: hello failed', {});
    return this.root;
  }

  /**
   * Sends the tree depth-first, entries in batches (docs/protocol.md, Listing); with `paths` (a
   * scoped sync) only those.
   */
  private async list(id: number, h: Header): Promise<void> {
    const requested = h.paths === undefined || h.paths === null ? undefined : strList(h, 'paths', MAX_LIST_PATHS);
    const scope = normalizeScope(requested); // PathError for a malformed path: the request fails alone
    const out = new EntryBatcher(this.session, id);
    await this.walkListing(scope, (path, type, st, linkTarget) => out.push(wireEntry(path, type, st, linkTarget)));
    await out.flush();
    await this.session.send({ t: 'done', id, n: out.count });
  }

  /**
   * Compares the client's listing with the tree (docs/protocol.md, Compared listing): sends the
   * entries that are not unchanged by plan.ts's quick check, then a bitmap of the source entries
   * held unchanged.
   */
  private async compare(id: number, h: Header, queue?: ChunkQueue): Promise<void> {
    const requested = h.paths === undefined || h.paths === null ? undefined : strList(h, 'paths', MAX_LIST_PATHS);
    const n = uint(h, 'n', MAX_LISTING_ENTRIES);
    const size = uint(h, 'size', MAX_LISTING_BYTES);
    const extraneous = bool(h, 'extra');
    // Deflated (list-compare-zlib): `size` bytes on the wire that inflate to exactly `raw`.
    const deflated = bool(h, 'z');
    const raw = deflated ? uint(h, 'raw', MAX_LISTING_BYTES) : size;
    if (!queue) throw new ProtocolError('BAD_MESSAGE', `compare ${id}: no queue`, { id });
    const scope = normalizeScope(requested);
    const parts: Uint8Array[] = [];
    let received = 0;
    for await (const chunk of queue) {
      received += chunk.length;
      if (received > size) throw new ProtocolError('BAD_MESSAGE', `compare ${id}: more than the ${size} bytes announced`, { id, size });
      parts.push(chunk);
    }
    if (received !== size) throw new ProtocolError('BAD_MESSAGE', `compare ${id}: ${received} bytes, ${size} announced`, { id, size });
    const bytes = Buffer.concat(parts, size);
    const listing = decodeListing(deflated ? inflateListing(bytes, raw) : bytes);
    if (listing.paths.length !== n) throw new ProtocolError('BAD_MESSAGE', `compare ${id}: listing holds ${listing.paths.length} entries, ${n} announced`, { id, n });
    const comparer = new ListingComparer(listing, extraneous);
    const out = new EntryBatcher(this.session, id);
    const compareEntry: EmitEntry = (path, type, st, linkTarget) =>
      comparer.reports(path, type, st.size, st.mtimeMs, st.mode, linkTarget) ? out.push(wireEntry(path, type, st, linkTarget)) : undefined;
    const prewalk = this.prewalk;
    this.prewalk = undefined;
    const entries = scope === undefined && prewalk?.root === this.rootDir ? await prewalk.entries.catch(() => undefined) : undefined;
    if (entries) {
      for (let k = 0; k < entries.paths.length; k++) {
        const sent = compareEntry(entries.paths[k], entries.types[k], entries.stat(k), entries.targets[k]);
        if (sent) await sent;
      }
    } else {
      await this.walkListing(scope, compareEntry);
    }
    await out.flush();
    await this.session.send({ t: 'compared', id, n: out.count }, comparer.bitmap);
    // Files differ: puts will follow, which may carry XXH3-128 (fileHashesReady); set up now,
    // while the client plans, not in a run with nothing to send.
    if (!comparer.allHeld) beginFileHashes();
  }

  /**
   * Walks the tree depth-first, passing each entry to `emit` with its lstat (for a partial, the
   * partial file's) and, for a symlink, its target; removes stale temp files on the way. With a
   * scope, only those paths: for each, the directories above it, the path itself and, for a
   * directory, its subtree. Synchronous but for what `emit` returns: a promise (a full batch being
   * sent) is awaited, so the walk costs no promise per entry.
   */
  private walkListing(scope: string[] | undefined, emit: EmitEntry): Promise<void> {
    return this.gate.walk(() => this.walkTree(scope, emit));
  }

  /** walkListing's walk, which the gate runs apart from changes to the tree. */
  private async walkTree(scope: string[] | undefined, emit: EmitEntry): Promise<void> {
    const root = this.rootDir;
    // What the walk sees is what later requests check against: directories known before it are not.
    this.dirs.clear();
    /** Lists one entry; false for devices, sockets and fifos, which are not synced. */
    const push = (path: string, full: string, st: EntryStat): EntryType | undefined | Promise<EntryType | undefined> => {
      const type = entryTypeOf(st.mode);
      if (!type) return undefined;
      const sent = emit(path, type, st, type === 'l' ? readlinkSync(full) : undefined);
      return sent ? sent.then(() => type) : type;
    };
    const walk = async (dir: string, wire: string): Promise<void> => {
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const name of names) {
        const full = childPath(dir, name);
        // The lock, staging directories, temp and partial files all start with a dot.
        if (name.charCodeAt(0) === 0x2e && (await this.walkHidden(dir, wire, name, full, emit))) continue;
        const st = lstatFields(full);
        if (!st) continue; // vanished while listing
        const path = joinWire(wire, name);
        let type = push(path, full, st);
        if (typeof type === 'object') type = await type;
        if (type === 'd') {
          this.dirs.add(full);
          await walk(full, path);
        }
      }
    };
    /**
     * One scope path, component by component as resolveInRoot checks them: a symlink above it is
     * refused (PATH_SYMLINK); a missing directory ends it; a file where a directory would be is
     * listed (the client sees the conflict) and ends it. Names a whole listing hides (the lock,
     * staging directories, temp and partial files) are treated as missing.
     */
    const ancestorsListed = new Set<string>();
    const listScoped = async (path: string): Promise<void> => {
      const parts = path.split('/');
      let dir = root;
      let wire = '';
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i];
        if (hiddenFromListing(name, wire)) return;
        const full = join(dir, name);
        const here = joinWire(wire, name);
        const st = lstatFields(full);
        if (i === parts.length - 1) {
          if (st) {
            if ((await push(here, full, st)) === 'd') await walk(full, here);
          } else if (this.opts.partial) {
            // Nothing there: a partial kept from an interrupted transfer of this new file may be.
            const partial = partialPathFor(full);
            const kept = partial !== undefined ? lstatSync(partial, MAY_BE_GONE) : undefined;
            if (kept?.isFile()) await emit(here, 'p', kept, undefined);
          }
          return;
        }
        if (!st) return;
        const type = entryTypeOf(st.mode);
        if (type === 'l') {
          throw new PathError('PATH_SYMLINK', `parent of ${JSON.stringify(path)} is a symlink: ${JSON.stringify(here)}`, { path, symlink: here });
        }
        if (!ancestorsListed.has(here)) {
          ancestorsListed.add(here);
          await push(here, full, st);
        }
        if (type !== 'd') return;
        dir = full;
        wire = here;
      }
    };
    if (scope === undefined) await walk(root, '');
    else for (const path of scope) await listScoped(path);
  }

  /**
   * A dot name met by the walk in `dir`: the lock and staging directories (at the root), temporary
   * and partial files are never listed. Stale ones (their agent gone) are removed, or, with
   * --partial, temp files kept as partials and partials listed as "p". False for any other name.
   */
  private async walkHidden(dir: string, wire: string, name: string, full: string, emit: EmitEntry): Promise<boolean> {
    if (wire === '' && name === LOCK_NAME) return true;
    const stagePid = wire === '' ? parseStageName(name) : undefined;
    if (stagePid !== undefined) {
      if (!processAlive(stagePid)) await rm(full, { recursive: true, force: true }).catch(() => {});
      return true;
    }
    const temp = parseTempName(name);
    if (temp) {
      // Left by a run whose agent is gone: remove it, or keep it to resume from with --partial.
      if (this.inFlight.has(full) || processAlive(temp.pid)) return true;
      const partial = this.opts.partial && temp.target !== undefined ? partialPathFor(join(dir, temp.target)) : undefined;
      if (partial && temp.target !== undefined) {
        const kept = await rename(full, partial).then(
          () => lstat(partial),
          () => unlink(full).then(() => undefined, () => undefined),
        );
        if (kept) await emit(joinWire(wire, temp.target), 'p', kept, undefined);
      } else {
        await unlink(full).catch(() => {});
      }
      return true;
    }
    const partialOf = parsePartialName(name);
    if (partialOf === undefined) return false;
    if (!this.opts.partial) await unlink(full).catch(() => {});
    else {
      const st = lstatSync(full, MAY_BE_GONE);
      if (st?.isFile()) await emit(joinWire(wire, partialOf), 'p', st, undefined);
    }
    return true;
  }

  /** Native signature of a basis file, seeded by the client; sent as data frames, then `sig`. */
  private async signature(id: number, h: Header): Promise<void> {
    beginFileHashes(); // the put that follows may carry XXH3-128
    const path = str(h, 'path');
    const target = this.resolve(path);
    const basis = this.openBasis(target, path);
    try {
      // A large basis is summed on every core (file-signature.ts): the client waits for this.
      const sig = await fileSignature(basis.fd, basis.size, { seed: seedOf(h), blockLength: optUint(h, 'block', 1 << 24) });
      const bytes = encodeSignature(sig);
      for (let at = 0; at < bytes.length; at += DATA_CHUNK) {
        await this.session.send({ t: 'data', id }, bytes.subarray(at, at + DATA_CHUNK));
      }
      await this.session.send({ t: 'sig', id, size: bytes.length, basis: basis.fromPartial ? 'partial' : 'file' });
    } finally {
      closeSync(basis.fd);
    }
  }

  /**
   * The basis for a path: the file itself or, with --partial and no file, a partial from a failed
   * run. File I/O in the agent is synchronous: it serves one client, and per-file thread-pool round
   * trips (open, write, chmod, utimes, rename, close) cost more than the work itself.
   */
  private openBasis(target: string, path: string) {
    let candidate = target;
    let fromPartial = false;
    let st = lstatSync(target, MAY_BE_GONE);
    const partial = this.opts.partial || this.placedBases.has(target) ? partialPathFor(target) : undefined;
    if (!st && partial) {
      candidate = partial;
      st = lstatSync(candidate, MAY_BE_GONE);
      fromPartial = true;
    }
    if (!st || !st.isFile()) {
      throw new PathError('PATH_INVALID', `basis ${JSON.stringify(path)} is not a regular file`, { path });
    }
    const fd = openSync(candidate, 'r');
    return { fd, size: st.size, fromPartial, path: candidate };
  }

  /**
   * Receives a file: data frames carry a native delta (against the basis, or against nothing for a
   * new file). Patched into a temp file beside the target, verified (length and whole-file hash), given its
   * mode and mtime, then renamed over the target.
   */
  private async put(id: number, h: Header, queue?: ChunkQueue): Promise<void> {
    await fileHashesReady();
    const path = str(h, 'path');
    const size = uint(h, 'size');
    const mode = uint(h, 'mode', 0o7777);
    const mtime = time(h, 'mtime');
    const useBasis = bool(h, 'basis');
    const uid = optUint(h, 'uid', 0xffffffff);
    const gid = optUint(h, 'gid', 0xffffffff);
    if (!queue) throw new ProtocolError('BAD_MESSAGE', `put ${id}: no queue`, { id });
    const target = this.resolve(path);
    const stage = this.stageOf(h);
    const basis = useBasis ? this.openBasis(target, path) : undefined;
    const temp = stage ? stage.nextPath() : tempPathFor(target);
    let out: number | undefined;
    let renamed = false;
    this.inFlight.add(temp);
    try {
      // O_EXCL without O_TRUNC: ext4 treats O_TRUNC as "replace via truncate" and flushes such files on close.
      out = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      const reader = basis ? alternatingBasis(basis.fd, basis.size) : bufferBasis(new Uint8Array(0));
      // Each chunk is written out before the next is asked for: literals need no copy.
      const patch = patchStream(reader, queue, { maxOutputLength: size, viewLiterals: true });
      let result;
      for (;;) {
        const step = await patch.next();
        if (step.done) {
          result = step.value;
          break;
        }
        for (let written = 0; written < step.value.length; ) {
          written += writeSync(out, step.value, written, step.value.length - written);
        }
      }
      if (!result.verified) {
        throw new ProtocolError('BAD_MESSAGE', `put ${JSON.stringify(path)}: delta was not a verifiable native delta`, { path });
      }
      fchmodSync(out, mode);
      const owner = this.ownership(uid, gid);
      if (owner) fchownSync(out, owner.uid, owner.gid);
      futimesSync(out, Date.now() / 1000, mtime / 1000);
      closeSync(out);
      out = undefined;
      if (stage) stage.record({ kind: 'place', path, staged: temp });
      else {
        this.keepBackup(path, target, false);
        renameSync(temp, target);
      }
      renamed = true;
      if (basis?.fromPartial) rmSync(basis.path, { force: true });
      await this.session.send({ t: 'ok', id, size: result.outputLength });
    } finally {
      if (out !== undefined) closeSync(out);
      // Closed on the thread pool: once the target was renamed over, this is the old file's last
      // reference, and freeing its blocks (1-3 ms a small file here, 0.3 s for 1 GiB) need not hold
      // up the next request. The process does not exit before the close is done.
      if (basis) close(basis.fd, () => {});
      if (!renamed) {
        const partial = this.opts.partial && !basis ? partialPathFor(target) : undefined;
        try {
          if (partial) renameSync(temp, partial);
          else rmSync(temp, { force: true });
        } catch {
          rmSync(temp, { force: true });
        }
      }
      this.inFlight.delete(temp);
    }
  }

  /**
   * A batch of small files (docs/protocol.md, Batches): each file's native delta is patched in memory
   * and placed as a put places it (temp file, verified, attributes, rename or stage), each file
   * failing alone. Synchronous from the first file to the reply: a batch is one turn of work.
   */
  private async putBatch(id: number, h: Header, _queue?: ChunkQueue, payload?: Uint8Array): Promise<void> {
    await fileHashesReady();
    const files = decodeBatchFiles(h);
    const total = files.reduce((n, f) => n + f.length, 0);
    let data = payload ?? new Uint8Array(0);
    if (bool(h, 'z')) data = inflateBatch(data, total);
    if (data.length !== total) throw new ProtocolError('BAD_MESSAGE', `puts ${id}: ${data.length} payload bytes for deltas of ${total}`, { id });
    const stage = this.stageOf(h);
    const results: (BatchResult | Promise<BatchResult>)[] = [];
    let at = 0;
    for (const file of files) {
      const delta = data.subarray(at, (at += file.length));
      try {
        const size = this.placeFromDelta(file, delta, stage);
        results.push(
          typeof size === 'number'
            ? { ok: true, size }
            : size.then(
                (n): BatchResult => ({ ok: true, size: n }),
                (error: unknown) => this.batchFailure(error),
              ),
        );
      } catch (error) {
        if (error instanceof ProtocolError) throw error; // as for a put: the session ends
        results.push(this.batchFailure(error));
      }
    }
    // Every file is in place (or failed) before the reply says so.
    await this.session.send({ t: 'ok', id, r: encodeBatchResults(await Promise.all(results)) });
  }

  /**
   * One file of a `puts`: its basis read whole (small, or TOO_LARGE), patched, placed; its size. A
   * file with a basis is renamed over it on the thread pool (its size comes as a promise): renaming
   * over an existing file makes ext4 start writing the new one back (auto_da_alloc), ~0.3 ms a file
   * here, and meanwhile the next files of the batch are patched.
   */
  private placeFromDelta(file: BatchFile, delta: Uint8Array, stage: Stage | undefined): number | Promise<number> {
    const target = this.resolve(file.path);
    let basisBytes: Uint8Array = EMPTY;
    let basisPath: string | undefined;
    if (file.basis) {
      const basis = this.openBasis(target, file.path);
      try {
        if (basis.size > MAX_BATCH_BASIS) throw new TransportError(TOO_LARGE, `basis ${JSON.stringify(file.path)} is larger than a batch takes`, { path: file.path, size: basis.size });
        basisBytes = readWhole(basis.fd, basis.size);
      } finally {
        closeSync(basis.fd);
      }
      if (basis.fromPartial) basisPath = basis.path;
    }
    const { pieces, result } = patchPieces(basisBytes, delta, { maxOutputLength: file.size });
    if (!result.verified) {
      throw new ProtocolError('BAD_MESSAGE', `put ${JSON.stringify(file.path)}: delta was not a verifiable native delta`, { path: file.path });
    }
    const temp = stage ? stage.nextPath() : tempPathFor(target);
    let out: number | undefined = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    let placed = false;
    try {
      writeAll(out, pieces, result.outputLength);
      fchmodSync(out, file.mode);
      const owner = this.ownership(file.uid, file.gid);
      if (owner) fchownSync(out, owner.uid, owner.gid);
      futimesSync(out, Date.now() / 1000, file.mtime / 1000);
      closeSync(out);
      out = undefined;
      if (stage) stage.record({ kind: 'place', path: file.path, staged: temp });
      else if (file.basis) {
        this.keepBackup(file.path, target, false);
        placed = true; // the rename below owns the temp file now
        return rename(temp, target).then(
          () => {
            if (basisPath !== undefined) rmSync(basisPath, { force: true });
            return result.outputLength;
          },
          (error: unknown) => {
            rmSync(temp, { force: true });
            throw error;
          },
        );
      } else {
        this.keepBackup(file.path, target, false);
        renameSync(temp, target);
      }
      placed = true;
    } finally {
      if (out !== undefined) closeSync(out);
      if (!placed) rmSync(temp, { force: true });
    }
    if (basisPath !== undefined) rmSync(basisPath, { force: true });
    return result.outputLength;
  }

  /**
   * Signatures of small basis files (docs/protocol.md, Batches): data frames carry them one after
   * another, then `sigs` says each one's length or why it failed (a basis over MAX_BATCH_BASIS is
   * TOO_LARGE, for the client to ask for alone).
   */
  private async signatureBatch(id: number, h: Header): Promise<void> {
    const paths = strList(h, 'paths', MAX_BATCH_FILES);
    const seed = seedOf(h);
    const blockLength = optUint(h, 'block', 1 << 24);
    beginFileHashes(); // the puts that follow may carry XXH3-128
    await loadStrongSums(['xxh64']);
    const results: BatchResult[] = [];
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (const path of paths) {
      try {
        const target = this.resolve(path);
        const basis = this.openBasis(target, path);
        try {
          if (basis.size > MAX_BATCH_BASIS) throw new TransportError(TOO_LARGE, `basis ${JSON.stringify(path)} is larger than a batch takes`, { path, size: basis.size });
          const sig = encodeSignature(await fileSignature(basis.fd, basis.size, { seed, blockLength }));
          parts.push(sig);
          bytes += sig.length;
          results.push({ ok: true, size: sig.length });
        } finally {
          closeSync(basis.fd);
        }
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        results.push(this.batchFailure(error));
      }
    }
    const all = Buffer.concat(parts, bytes);
    for (let at = 0; at < all.length; at += DATA_CHUNK) await this.session.send({ t: 'data', id }, all.subarray(at, at + DATA_CHUNK));
    await this.session.send({ t: 'sigs', id, r: encodeBatchResults(results) });
  }

  /** A batch file's failure as its result: what an error reply of its own would have said. */
  private batchFailure(error: unknown): BatchResult {
    return { ok: false, ...this.failureOf(error) };
  }

  /** The code and message an error reply (or a batch's result) gives for `error`; the root is not disclosed. */
  private failureOf(error: unknown): { code: string; message: string } {
    const e = error as NodeJS.ErrnoException;
    const code = error instanceof DeltacastError || error instanceof TransportError ? String(e.code) : typeof e.code === 'string' ? e.code : 'IO';
    return { code, message: (e.message ?? String(error)).replaceAll(this.root ?? '\0', '<root>') };
  }

  private async mkdir(id: number, h: Header): Promise<void> {
    this.applyMkdir(str(h, 'path'), optUint(h, 'mode', 0o7777) ?? 0o755, this.stageOf(h));
    await this.session.send({ t: 'ok', id });
  }

  /** Directories in order (parents before children), each as a mkdir, each succeeding or failing alone. */
  private async mkdirBatch(id: number, h: Header): Promise<void> {
    const entries = decodeMkdirs(h);
    const stage = this.stageOf(h);
    const results: BatchResult[] = [];
    for (const { path, mode } of entries) {
      try {
        this.applyMkdir(path, mode, stage);
        results.push({ ok: true, size: 0 });
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        results.push(this.batchFailure(error));
      }
    }
    await this.session.send({ t: 'ok', id, r: encodeBatchResults(results) });
  }

  /** One directory made (an existing one is fine, anything else in its place is EEXIST), or recorded in the stage. */
  private applyMkdir(path: string, mode: number, stage: Stage | undefined): void {
    const target = this.resolve(path);
    if (stage) {
      stage.record({ kind: 'mkdir', path, mode });
      return;
    }
    try {
      mkdirSync(target, { mode: mode | 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const st = lstatSync(target);
      if (!st.isDirectory()) throw Object.assign(new Error(`${path} exists and is not a directory`), { code: 'EEXIST' });
    }
    this.dirs.add(target);
  }

  /** Creates or replaces a symlink atomically (temp link + rename). Its target is stored, never followed. */
  private async symlink(id: number, h: Header): Promise<void> {
    const path = str(h, 'path');
    const linkTarget = str(h, 'target');
    if (linkTarget.includes('\0')) throw new PathError('PATH_INVALID', 'symlink target contains NUL', { path });
    const target = this.resolve(path);
    const stage = this.stageOf(h);
    const temp = stage ? stage.nextPath() : tempPathFor(target);
    await symlink(linkTarget, temp);
    try {
      const mtime = optTime(h, 'mtime');
      if (mtime !== undefined) await lutimes(temp, Date.now() / 1000, mtime / 1000);
      const uid = optUint(h, 'uid', 0xffffffff);
      const gid = optUint(h, 'gid', 0xffffffff);
      const owner = this.ownership(uid, gid);
      if (owner) await lchown(temp, owner.uid, owner.gid);
      if (stage) stage.record({ kind: 'place', path, staged: temp });
      else {
        this.forgetDirs(target);
        this.keepBackup(path, target, false);
        await rename(temp, target);
      }
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await this.session.send({ t: 'ok', id });
  }

  private async remove(id: number, h: Header): Promise<void> {
    const path = str(h, 'path');
    if (path === '') throw new PathError('PATH_INVALID', 'refusing to delete the root', { path });
    const target = this.resolve(path);
    const stage = this.stageOf(h);
    if (stage) {
      stage.record({ kind: 'delete', path });
      await this.session.send({ t: 'ok', id });
      return;
    }
    // fs.rm removes a symlink itself, never what it points to.
    this.forgetDirs(target);
    if (this.opts.backup) this.deleteKeepingBackups(path, target);
    else await rm(target, { recursive: true, force: true });
    await this.session.send({ t: 'ok', id });
  }

  /**
   * The owner and group to give what is written, from the ids the client sent (kept with `owner`)
   * and --chown's (which win); -1 leaves one as it is; undefined: neither is set.
   */
  private ownership(uid: number | undefined, gid: number | undefined): { uid: number; gid: number } | undefined {
    const { chown, idMap } = this.opts;
    const kept = this.opts.owner && uid !== undefined && gid !== undefined;
    const u = chown?.uid ?? (kept ? (idMap?.uids.get(uid!) ?? uid!) : -1);
    const g = chown?.gid ?? (kept ? (idMap?.gids.get(gid!) ?? gid!) : -1);
    return u === -1 && g === -1 ? undefined : { uid: u, gid: g };
  }

  /**
   * `owners` (docs/protocol.md, Owners by name): the client's ids with their names there; replies
   * with this host's id for each name it knows that maps elsewhere, and keeps that map for the
   * session's uid/gid. Ids 0 are never mapped (rsync's rule). An agent that does not keep owners
   * (not root, or no `owner`) maps nothing.
   */
  private async mapOwners(id: number, h: Header): Promise<void> {
    const users = idNamePairs(h, 'users');
    const groups = idNamePairs(h, 'groups');
    const map = (pairs: [number, string][], database: 'passwd' | 'group'): Map<number, number> => {
      const result = new Map<number, number>();
      if (!this.opts.owner) return result;
      const named = pairs.filter(([from]) => from !== 0);
      const ids = resolveOwnerNames(
        named.map(([, name]) => name),
        database,
        this.options.ownerFiles,
      );
      for (const [from, name] of named) {
        const to = ids.get(name);
        if (to !== undefined && to !== from) result.set(from, to);
      }
      return result;
    };
    const mapped = { uids: map(users, 'passwd'), gids: map(groups, 'group') };
    // A long list comes in several requests: each adds to the session's map.
    const idMap = this.opts.idMap ?? { uids: new Map(), gids: new Map() };
    for (const [from, to] of mapped.uids) idMap.uids.set(from, to);
    for (const [from, to] of mapped.gids) idMap.gids.set(from, to);
    this.opts = { ...this.opts, idMap };
    await this.session.send({ t: 'owners', id, users: [...mapped.uids], groups: [...mapped.gids] });
  }

  /**
   * Before `target` (wire path `path`), a file or symlink, is replaced (`move` false: hard-linked to
   * its backup, so the path is never missing) or deleted (`move` true: moved there): its backup, when
   * the session keeps backups. A directory is left to the caller.
   */
  private keepBackup(path: string, target: string, move: boolean): void {
    const backup = this.opts.backup;
    if (!backup) return;
    const st = lstatSync(target, { throwIfNoEntry: false });
    if (!st || st.isDirectory()) return;
    const wire = backupPath(backup, path);
    const full = this.resolve(wire); // parents inside the root, none a symlink
    if (backup.dir !== undefined) mkdirSync(dirname(full), { recursive: true });
    rmSync(full, { recursive: true, force: true }); // the previous backup of this path
    if (move) {
      renameSync(target, full);
      return;
    }
    try {
      linkSync(target, full);
    } catch {
      // No hard links here (another file system, a restrictive mount): moved, as rsync does.
      renameSync(target, full);
    }
  }

  /**
   * A delete that keeps backups: each file and symlink under `target` moved to its backup, then the
   * directories removed, deepest first, where nothing is left in them (a backup kept beside its file
   * keeps its directory, as in rsync).
   */
  private deleteKeepingBackups(path: string, target: string): void {
    const st = lstatSync(target, { throwIfNoEntry: false });
    if (!st) return;
    if (!st.isDirectory()) {
      this.keepBackup(path, target, true);
      return;
    }
    for (const name of readdirSync(target)) this.deleteKeepingBackups(joinWire(path, name), `${target}/${name}`);
    try {
      rmdirSync(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }

  private async setattr(id: number, h: Header): Promise<void> {
    const path = str(h, 'path');
    this.applySetattr(
      { path, mode: optUint(h, 'mode', 0o7777), mtime: optTime(h, 'mtime'), uid: optUint(h, 'uid', 0xffffffff), gid: optUint(h, 'gid', 0xffffffff) },
      this.stageOf(h),
    );
    await this.session.send({ t: 'ok', id });
  }

  /**
   * Attributes of many paths (docs/protocol.md, Batches): applied in the order given (a client sends
   * directories deepest first), each failing alone as its own setattr would.
   */
  private async setattrBatch(id: number, h: Header): Promise<void> {
    const entries = decodeSetattrs(h);
    const stage = this.stageOf(h);
    const results: BatchResult[] = [];
    for (const entry of entries) {
      try {
        this.applySetattr(entry, stage);
        results.push({ ok: true, size: 0 });
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        results.push(this.batchFailure(error));
      }
    }
    await this.session.send({ t: 'ok', id, r: encodeBatchResults(results) });
  }

  /**
   * `links` (-H): each path made another name of its target's file (a regular file in the root):
   * nothing where it already is one (result 0), else a link made beside it and renamed over it, so
   * the path is never missing (result 1 where it replaced a file, 2 where the path was free; with
   * `dry`, only said). A file it replaces is backed up as any replaced file.
   */
  private async linkBatch(id: number, h: Header): Promise<void> {
    const entries = decodeLinks(h);
    const dry = bool(h, 'dry');
    const results: BatchResult[] = [];
    for (const entry of entries) {
      try {
        if (entry.path === '' || entry.target === '') throw new PathError('PATH_INVALID', 'links: the root is not a file', { path: entry.path });
        const target = this.resolve(entry.target);
        const path = this.resolve(entry.path);
        const t = lstatSync(target, { throwIfNoEntry: false });
        if (!t?.isFile()) throw new TransportError('NOT_A_FILE', `links: ${entry.target} is not a regular file here`, { path: entry.path, target: entry.target });
        const p = lstatSync(path, { throwIfNoEntry: false });
        if (p && p.dev === t.dev && p.ino === t.ino) {
          results.push({ ok: true, size: 0 });
          continue;
        }
        if (!dry) {
          const temp = tempPathFor(path);
          linkSync(target, temp);
          try {
            this.forgetDirs(path);
            this.keepBackup(entry.path, path, false);
            renameSync(temp, path);
          } catch (error) {
            rmSync(temp, { force: true });
            throw error;
          }
        }
        results.push({ ok: true, size: p ? 1 : 2 });
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        results.push(this.batchFailure(error));
      }
    }
    await this.session.send({ t: 'ok', id, r: encodeBatchResults(results) });
  }

  /**
   * `link-dest` (link-dest.ts, docs/protocol.md): for each new file, whether a basis directory holds
   * it as the source has it, and (unless `dry`) the hard link, or the copy, made from there.
   */
  private async linkDest(id: number, h: Header): Promise<void> {
    const { dirs, how, entries } = decodeLinkDest(h);
    const dry = bool(h, 'dry');
    const named = this.options.linkDestDirs;
    if (this.options.root !== undefined && !dirs.every((d) => named?.includes(d))) {
      throw new PathError('PATH_ESCAPE', 'link-dest: only the directories given on this side may be named', { dirs });
    }
    const allowed = this.options.allowedRoot !== undefined ? await realpath(this.options.allowedRoot) : undefined;
    const context: LinkDestContext = {
      root: this.rootDir,
      allowed: (path) => allowed === undefined || path === allowed || path.startsWith(`${allowed}/`),
      realpath: (path) => realpathSync(path),
      owner: (uid, gid) => (this.opts.owner ? this.ownership(uid, gid) : undefined),
    };
    const from = linkDestDirs(dirs, context);
    const found: number[] = [];
    for (const entry of entries) {
      const target = this.resolve(entry.path); // a path that leaves the root fails the request
      let index = 0;
      try {
        const basis = partialPathFor(target);
        index = linkFromDirs(entry, target, from, context, dry, how, basis);
        // Another version placed as the basis: this session's puts resume from it (openBasis).
        if (index > BASIS && !dry) this.placedBases.add(target);
      } catch {
        index = 0; // not linked (unreadable, gone): the client sends it
      }
      found.push(index);
    }
    await this.session.send({ t: 'ok', id, r: numberResults(found) });
  }

  /**
   * `fuzzy` (fuzzy.ts, docs/protocol.md): for each new file, a basis from its own directory (same
   * size and mtime, else a close name), copied to its partial name unless `dry`.
   */
  private async fuzzy(id: number, h: Header): Promise<void> {
    const entries = decodeFuzzy(h);
    const dry = bool(h, 'dry');
    const listed = new Map<string, { name: string; size: number; mtimeMs: number }[]>();
    const found: number[] = [];
    for (const entry of entries) {
      const target = this.resolve(entry.path); // a path that leaves the root fails the request
      let placed = false;
      try {
        placed = placeFuzzyBasis(target, entry, partialPathFor(target), dry, listed);
      } catch {
        placed = false; // no basis (unreadable, gone): the client sends the file whole
      }
      if (placed && !dry) this.placedBases.add(target);
      found.push(placed ? 1 : 0);
    }
    await this.session.send({ t: 'ok', id, r: numberResults(found) });
  }

  /** One path's mode, owner and mtime (undefined fields left alone), or recorded in the stage. */
  private applySetattr(entry: SetattrEntry, stage: Stage | undefined): void {
    const { path, mode, mtime, uid, gid } = entry;
    const target = this.resolve(path);
    if (stage) {
      stage.record({ kind: 'setattr', path, attributes: { mode, mtime, uid, gid } });
      return;
    }
    // Synchronous, as the put path: a thread-pool round trip per call cost more than the call.
    const st = lstatSync(target);
    // Never change the attributes of a file an older release shares.
    if (this.inRelease) unshare(target);
    const owner = this.ownership(uid, gid);
    if (st.isSymbolicLink()) {
      if (owner) lchownSync(target, owner.uid, owner.gid);
      if (mtime !== undefined) lutimesSync(target, Date.now() / 1000, mtime / 1000);
    } else {
      if (mode !== undefined) chmodSync(target, mode);
      if (owner) chownSync(target, owner.uid, owner.gid);
      if (mtime !== undefined) utimesSync(target, Date.now() / 1000, mtime / 1000);
    }
  }

  private get releaseRoot(): string {
    if (this.baseRoot === undefined) throw new TransportError('CLOSED', 'no root: hello failed', {});
    return this.baseRoot;
  }

  /** Makes releases/ID as a hard-link clone of the current release (docs/protocol.md). */
  private async releasePrepare(id: number, h: Header): Promise<void> {
    const { previous } = prepareRelease(this.releaseRoot, checkReleaseId(str(h, 'release', 64)));
    await this.session.send({ t: 'ok', id, previous: previous ?? null });
  }

  /** Moves this session's root into releases/ID: the rest of the session syncs that release. */
  private async releaseEnter(id: number, h: Header): Promise<void> {
    const release = checkReleaseId(str(h, 'release', 64));
    const dir = await realpath(join(this.releaseRoot, RELEASES_DIR, release));
    if (!dir.startsWith(`${this.releaseRoot}/`)) throw new PathError('PATH_ESCAPE', `release ${release} is outside the root`, { release });
    this.root = dir;
    this.inRelease = true;
    await this.session.send({ t: 'ok', id });
  }

  private async releaseSwitch(id: number, h: Header): Promise<void> {
    switchRelease(this.releaseRoot, checkReleaseId(str(h, 'release', 64)));
    const keep = optUint(h, 'keep', 1_000_000);
    const pruned = keep !== undefined ? pruneReleases(this.releaseRoot, keep) : [];
    await this.session.send({ t: 'ok', id, pruned });
  }

  private async releaseDiscard(id: number, h: Header): Promise<void> {
    discardRelease(this.releaseRoot, checkReleaseId(str(h, 'release', 64)));
    await this.session.send({ t: 'ok', id });
  }

  private async releaseList(id: number): Promise<void> {
    await this.session.send({ t: 'ok', id, releases: listReleases(this.releaseRoot), current: currentRelease(this.releaseRoot) ?? null });
  }

  /** The stage a request names (created on first use), or undefined for a live change. */
  private stageOf(h: Header): Stage | undefined {
    const id = optStr(h, 'stage', 64);
    if (id === undefined) return undefined;
    let stage = this.stages.get(id);
    if (!stage) {
      stage = new Stage(this.rootDir, id, (uid, gid) => this.ownership(uid, gid));
      this.stages.set(id, stage);
    }
    return stage;
  }

  /** Applies a stage in one quick phase of renames (a stage with nothing in it commits trivially). */
  private async commitStage(id: number, h: Header): Promise<void> {
    const stageId = str(h, 'stage', 64);
    const stage = this.stages.get(stageId);
    this.stages.delete(stageId);
    // The commit deletes and renames: directories checked before it are checked again after.
    this.dirs.clear();
    await stage?.commit();
    this.dirs.clear();
    await this.session.send({ t: 'ok', id });
  }

  private async abortStage(id: number, h: Header): Promise<void> {
    const stageId = str(h, 'stage', 64);
    this.stages.get(stageId)?.abort();
    this.stages.delete(stageId);
    await this.session.send({ t: 'ok', id });
  }

  /** SHA-256 of files, for --checksum; null for a path that is not a regular file. */
  private async hash(id: number, h: Header): Promise<void> {
    const paths = strList(h, 'paths', HASH_BATCH);
    const hashes: (string | null)[] = [];
    for (const path of paths) {
      const target = this.resolve(path);
      const st = await lstat(target).catch(() => undefined);
      if (!st?.isFile()) {
        hashes.push(null);
        continue;
      }
      const hasher = createHash('sha256');
      for await (const chunk of createReadStream(target, { highWaterMark: 1 << 20 })) hasher.update(chunk as Buffer);
      hashes.push(hasher.digest('hex'));
    }
    await this.session.send({ t: 'hashes', id, h: hashes });
  }

  /** Reports a failed request; `path` is the wire path (never a local one: the client has no use for it). */
  private async replyError(id: number, error: unknown, path: string | null = null): Promise<void> {
    if (this.session.closed) return;
    if (error instanceof ProtocolError) throw error;
    await this.session.send({ t: 'error', id, ...this.failureOf(error), path });
  }
}


/** Listing entries going out in `entries` frames, each under about LIST_BATCH_BYTES of header. */
class EntryBatcher {
  private batch: unknown[][] = [];
  private bytes = 0;
  count = 0;

  constructor(
    private readonly session: FrameSession,
    private readonly id: number,
  ) {}

  /** A promise only when a full batch is being sent: a listing's walk awaits nothing per entry. */
  push(entry: unknown[]): Promise<void> | undefined {
    this.batch.push(entry);
    this.bytes += Buffer.byteLength(entry[0] as string) * 2 + 64;
    this.count++;
    return this.bytes >= LIST_BATCH_BYTES ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const e = this.batch;
    this.batch = [];
    this.bytes = 0;
    await this.session.send({ t: 'entries', id: this.id, e });
  }
}

/**
 * The entries a walk found, kept for a later compare: what a compare reads of each, column by column,
 * rather than an object (or the Stats, with its four Dates) for each of 20,000 entries.
 */
class Walked {
  readonly paths: string[] = [];
  readonly types: (EntryType | 'p')[] = [];
  readonly sizes: number[] = [];
  readonly mtimes: number[] = [];
  readonly modes: number[] = [];
  readonly uids: number[] = [];
  readonly gids: number[] = [];
  readonly targets: (string | undefined)[] = [];
  private readonly st = { dev: 0, size: 0, mtimeMs: 0, mode: 0, uid: 0, gid: 0, nlink: 1, ino: 0 };

  /** An EmitEntry: records the entry, never waits. */
  readonly add: EmitEntry = (path, type, st, linkTarget) => {
    this.paths.push(path);
    this.types.push(type);
    this.sizes.push(st.size);
    this.mtimes.push(st.mtimeMs);
    this.modes.push(st.mode);
    this.uids.push(st.uid);
    this.gids.push(st.gid);
    this.targets.push(linkTarget);
    return undefined;
  };

  /** Entry k's lstat as a listing sends it, in one object reused for every entry (wireEntry copies it). */
  stat(k: number): EntryStat {
    const st = this.st;
    st.size = this.sizes[k];
    st.mtimeMs = this.mtimes[k];
    st.mode = this.modes[k];
    st.uid = this.uids[k];
    st.gid = this.gids[k];
    return st;
  }
}


/** An entry found by the walk; a promise when the caller must wait (a full batch being sent). */
type EmitEntry = (path: string, type: EntryType | 'p', st: EntryStat, linkTarget: string | undefined) => Promise<void> | undefined;

/** The wire array of a listing entry (docs/protocol.md, Listing). */
function wireEntry(path: string, type: EntryType | 'p', st: EntryStat, linkTarget: string | undefined): unknown[] {
  const entry: unknown[] = [path, type, type === 'f' || type === 'p' ? st.size : 0, st.mtimeMs, st.mode & 0o7777, st.uid, st.gid];
  if (type === 'l') entry.push(linkTarget);
  return entry;
}

/** `dir/name` for a name read from `dir` (an absolute, normalized path): path.join would normalize it again. */
function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** Names a listing never shows: the lock and staging directories at the root, temp and partial files. */
function hiddenFromListing(name: string, parentWire: string): boolean {
  if (parentWire === '' && (name === LOCK_NAME || parseStageName(name) !== undefined)) return true;
  return parseTempName(name) !== undefined || parsePartialName(name) !== undefined;
}

/**
 * The basis of a put, read synchronously into two buffers in turn: patchStream reads the next piece
 * before it yields the current one, and put writes each piece before it asks for the next, so a
 * buffer is free again two reads later. A fresh buffer per piece (up to 1 MiB) cost a page-faulted
 * allocation for every piece of a large file.
 */
function alternatingBasis(fd: number, size: number): BasisReader {
  const buffers: Uint8Array[] = [];
  let turn = 0;
  return {
    size,
    read(position, length) {
      const want = Math.min(length, Math.max(0, size - position));
      turn ^= 1;
      if (!buffers[turn] || buffers[turn].length < want) buffers[turn] = new Uint8Array(Math.max(want, 64 * 1024));
      const out = buffers[turn].subarray(0, want);
      let filled = 0;
      while (filled < want) {
        const n = readSync(fd, out, filled, want - filled, position + filled);
        if (n === 0) break;
        filled += n;
      }
      return filled === want ? out : out.subarray(0, filled);
    },
  };
}

const EMPTY = new Uint8Array(0);

/** lstat's options for a path that may be gone: one object for every call of a walk. */
const MAY_BE_GONE = { throwIfNoEntry: false } as const;

/** A small file's `size` bytes (fewer if it shrank). */
function readWhole(fd: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    const n = readSync(fd, out, filled, size - filled, filled);
    if (n === 0) break;
    filled += n;
  }
  return filled === size ? out : out.subarray(0, filled);
}

/** Writes `pieces` (`length` bytes in all) to `fd`: one vectored write, more only if it falls short. */
function writeAll(fd: number, pieces: Uint8Array[], length: number): void {
  let written = pieces.length > 0 ? writevSync(fd, pieces) : 0;
  if (written === length) return;
  for (const piece of pieces) {
    if (written >= piece.length) {
      written -= piece.length;
      continue;
    }
    for (let at = written; at < piece.length; ) at += writeSync(fd, piece, at, piece.length - at);
    written = 0;
  }
}

/** A compressed batch inflates to exactly its deltas' length; anything else is a protocol error. */
function inflateBatch(payload: Uint8Array, length: number): Uint8Array {
  try {
    return inflateRawSync(payload, { maxOutputLength: Math.max(1, length) });
  } catch (error) {
    throw new ProtocolError('BAD_MESSAGE', `compressed batch is invalid or inflates past ${length} bytes: ${(error as Error).message}`, {});
  }
}

/** A compressed data frame inflates to at most one data chunk; more is a protocol error. */
function inflate(payload: Uint8Array): Uint8Array {
  try {
    return inflateRawSync(payload, { maxOutputLength: DATA_CHUNK });
  } catch (error) {
    throw new ProtocolError('BAD_MESSAGE', `compressed data frame is invalid or inflates past ${DATA_CHUNK} bytes: ${(error as Error).message}`, {});
  }
}

/** The client's u64 seed, sent as a decimal string (msgpack has no portable u64). */
function seedOf(h: Header): bigint {
  const text = str(h, 'seed', 20);
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > 0xffffffffffffffffn) {
    throw new ProtocolError('BAD_MESSAGE', 'message "sig": field "seed" must be a decimal u64', { field: 'seed' });
  }
  return BigInt(text);
}

/**
 * The real path a missing `path` would have: its nearest existing ancestor's real path, with the
 * rest of the components after it (so a dry run's root is checked against --root like a real one).
 */
async function realpathOfMissing(path: string): Promise<string> {
  const rest: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(await realpath(at), ...rest.reverse());
    } catch (error) {
      const parent = dirname(at);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) throw error;
      rest.push(basename(at));
      at = parent;
    }
  }
}

/** A request's list of [id, name] pairs (ids up to 2^32 - 1, names of 1 to 256 characters, no ':' or newline). */
function idNamePairs(h: Header, field: string): [number, string][] {
  const value = h[field];
  const bad = () => new ProtocolError('BAD_MESSAGE', `owners: "${field}" must be a list of at most ${MAX_OWNER_IDS} [id, name] pairs`, { field });
  if (!Array.isArray(value) || value.length > MAX_OWNER_IDS) throw bad();
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) throw bad();
    const [from, name] = pair as unknown[];
    if (!Number.isInteger(from) || (from as number) < 0 || (from as number) > 0xffffffff) throw bad();
    if (typeof name !== 'string' || name.length === 0 || name.length > 256 || /[:\n\0]/.test(name)) throw bad();
  }
  return value as [number, string][];
}

/**
 * The hello's `chown` ({ user?, group? }, names or numbers) as ids on this host; a name it does not
 * know refuses the session (NO_SUCH_USER, NO_SUCH_GROUP) rather than leave files to the wrong owner.
 */
function resolveChown(value: unknown, files?: OwnerDatabaseFiles): { uid?: number; gid?: number } {
  const c = value as Record<string, unknown>;
  if (typeof c !== 'object' || (c.user !== undefined && typeof c.user !== 'string') || (c.group !== undefined && typeof c.group !== 'string')) {
    throw new ProtocolError('BAD_MESSAGE', 'hello: "chown" must be a map of user and group names', {});
  }
  const result: { uid?: number; gid?: number } = {};
  if (c.user !== undefined) {
    result.uid = resolveOwnerName(c.user as string, 'passwd', files);
    if (result.uid === undefined) throw new TransportError('NO_SUCH_USER', `no user ${JSON.stringify(c.user)} on this host`, { user: c.user as string });
  }
  if (c.group !== undefined) {
    result.gid = resolveOwnerName(c.group as string, 'group', files);
    if (result.gid === undefined) throw new TransportError('NO_SUCH_GROUP', `no group ${JSON.stringify(c.group)} on this host`, { group: c.group as string });
  }
  return result;
}
