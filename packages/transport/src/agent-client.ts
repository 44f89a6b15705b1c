/**
 * The client side of a session: typed requests to an agent, matched to responses by id, with
 * several in flight at once (pipelining across files). Everything the agent sends back is checked as
 * strictly as the agent checks what it receives: a listing path that would leave the root is a
 * PathError, a malformed message a ProtocolError that ends the session.
 */
import { deflateRawSync } from 'node:zlib';
import type { Frame, Header } from './frame.js';
import { ConnectError, ProtocolError, RemoteError, TransportError } from './errors.js';
import {
  CAPABILITIES,
  DATA_CHUNK,
  LIST_COMPARE_ZLIB_CAPABILITY,
  LIST_PATHS_CAPABILITY,
  MAX_LIST_PATHS,
  MAX_OWNER_IDS,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  str,
  uint,
  type EntryType,
} from './messages.js';
import { wirePathComponents } from './paths.js';
import type { Backup } from './backup.js';
import { decodeBatchResults, encodeBatchFiles, encodeLinks, encodeMkdirs, encodeSetattrs, MAX_BATCH_FILES, type BatchFile, type BatchResult, type LinkEntry, type MkdirEntry, type SetattrEntry } from './batch.js';
import { normalizeScope, Scope } from './scope.js';
import { bitIsSet, bitmapBytes, deflatedListing, encodeListing, sourceIndex } from './listing.js';
import type { SourceEntry } from './tree.js';
import { FrameSession, type ByteStreams } from './wire.js';

/** One entry of a destination listing. */
/** The hello's `rootAttrs` as an entry; BAD_MESSAGE for another shape. */
function rootEntry(value: unknown): RootEntry {
  const r = value as Record<string, unknown>;
  const id = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
  if (typeof r !== 'object' || !id(r.mode) || (r.mode as number) > 0o7777 || typeof r.mtime !== 'number' || !Number.isFinite(r.mtime) || !id(r.uid) || !id(r.gid) || typeof r.made !== 'boolean') {
    throw new ProtocolError('BAD_MESSAGE', 'hello: "rootAttrs" must hold mode, mtime, uid, gid and made', {});
  }
  return { path: '', type: 'd', size: 0, mode: r.mode as number, mtimeMs: r.mtime, uid: r.uid as number, gid: r.gid as number, made: r.made };
}

/** Bytes of names (and their ids) in one `owners` request, well under the 64 KiB header cap. */
const OWNER_REQUEST_BYTES = 40 * 1024;

/** Source ids to destination ids (ids not in a map stay as they are). */
export interface OwnerMap {
  uids: Map<number, number>;
  gids: Map<number, number>;
}

export interface RemoteEntry {
  path: string;
  /** 'p': a partial file kept from an interrupted transfer of `path` (listed with --partial only). */
  type: EntryType | 'p';
  size: number;
  mtimeMs: number;
  mode: number;
  uid: number;
  gid: number;
  linkTarget?: string;
}

export interface HelloOptions {
  root: string;
  owner?: boolean;
  partial?: boolean;
  /** Take the destination's lock for this session (a second run is refused with LOCKED). */
  lock?: boolean;
  /**
   * Fail the session (TransportError 'TIMEOUT') when requests are pending and nothing arrives for
   * this long: a hung peer must not block the others. Default 60 s; 0 disables.
   */
  idleTimeoutMs?: number;
  /**
   * The client will compare its listing of the whole tree (`compare`, no paths) as its first request:
   * an agent may walk the tree at once and compare against that walk when the listing arrives, so its
   * walk overlaps the client's scan (docs/protocol.md, Hello). Not for release mode or --checksum.
   */
  walk?: boolean;
  /** Keep what the session replaces or deletes (backup.ts); the agent must list BACKUP_CAPABILITY. */
  backup?: Backup;
  /** --chown: user and group names (or numbers) the agent resolves and gives everything it writes. */
  chown?: { user?: string; group?: string };
  /** A dry run: the agent leaves a missing root missing (it lists as empty), as rsync -n makes nothing. */
  dryRun?: boolean;
}

export interface AgentInfo {
  version: string;
  root: string;
  capabilities: string[];
  uid: number;
  /** The ids --chown resolved to at the agent, when it applies them (it runs as root). */
  chown?: { uid?: number; gid?: number };
  /** The root directory's own attributes as the session began (`made`: the hello created it). */
  rootAttrs?: RootEntry;
}

/** The destination root as an entry (path ''), for comparing its own attributes. */
export interface RootEntry extends RemoteEntry {
  made: boolean;
}

export interface FileAttributes {
  mode: number;
  mtimeMs: number;
  size: number;
  uid?: number;
  gid?: number;
}

interface Pending {
  onFrame: (frame: Frame) => boolean; // true when this frame completes the request
  reject: (error: Error) => void;
}

export class AgentClient {
  private readonly session: FrameSession;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Signatures asked for ahead (prefetchSignatures), by seed and path, each taken once. */
  private readonly ahead = new Map<string, Promise<SignatureResult>>();
  private aheadSeed: bigint | undefined;
  private closeError: TransportError | undefined;
  info: AgentInfo | undefined;
  /**
   * When set, every change (put, mkdir, symlink, delete, setattr) is staged under this id and applied
   * only by `commitStage()`; `abortStage()` or the session ending drops it (docs/protocol.md).
   */
  stage: string | undefined;

  private constructor(streams: ByteStreams) {
    this.session = new FrameSession(streams);
    this.session.onFrame((frame) => this.onFrame(frame));
    this.session.onClose((error) => {
      this.closeError = error ?? new TransportError('CLOSED', 'agent closed the session', {});
      for (const p of this.pending.values()) p.reject(this.closeError);
      this.pending.clear();
    });
  }

  /** Bytes of frames written to the agent and read from it so far (rsync's --stats "Total bytes sent/received"). */
  get bytesSent(): number {
    return this.session.bytesWritten;
  }

  get bytesReceived(): number {
    return this.session.bytesRead;
  }

  /** Opens a session: sends hello, waits for the agent's. */
  static async connect(streams: ByteStreams, options: HelloOptions): Promise<AgentClient> {
    const { client, ready } = AgentClient.open(streams, options);
    await ready;
    return client;
  }

  /**
   * Opens a session without waiting for the agent's hello: requests made at once travel right behind
   * ours (the agent serves them once its hello is done), so the agent's start-up and their work
   * overlap whatever the caller does next. `ready` settles as `connect` does; until it resolves, a
   * request's failure may only mean that the hello failed.
   */
  static open(streams: ByteStreams, options: HelloOptions): { client: AgentClient; ready: Promise<void> } {
    const client = new AgentClient(streams);
    client.watchIdle(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT);
    const ready = client.hello(options).catch((error: unknown) => {
      throw client.startFailure(error);
    });
    return { client, ready };
  }

  /** Whether any frame came from the agent. */
  private heard = false;

  /**
   * A hello that failed before the agent sent a single frame means no agent was started, whatever
   * ended it: a ConnectError 'CONNECT', as for a host that cannot be reached (an agent process that
   * exited is one already). Bytes that are no frame get a hint: a login script that writes to stdout
   * is the usual cause. A refusal (LOCKED...) or a hello of the wrong version stays as it is.
   */
  private startFailure(error: unknown): unknown {
    if (this.heard || error instanceof ConnectError || !(error instanceof TransportError)) return error;
    const hint = error instanceof ProtocolError ? " (the agent's first bytes are no deltacast frame: does the remote command, or a login script of its shell, write to stdout?)" : '';
    if (!(error instanceof ProtocolError) && !['CLOSED', 'IO', 'TIMEOUT'].includes(error.code)) return error;
    return new ConnectError('CONNECT', `no session with the agent: ${error.message}${hint}`, { cause: error.code });
  }

  /** When the session last made progress (a frame in, or data taken by the agent). */
  private lastFrame = performance.now();

  private idleTimeoutMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  /** Ends the session when requests wait and the peer has been silent for `ms`. */
  private watchIdle(ms: number): void {
    if (ms <= 0) return;
    this.idleTimeoutMs = ms;
    this.session.onClose(() => {
      clearInterval(this.idleTimer);
      this.idleTimer = undefined;
    });
  }

  /**
   * Registers a request awaiting replies. The idle check runs only while some request waits, so a
   * session kept open between runs (watch mode) costs no timer while it is idle.
   */
  private track(id: number, pending: Pending): void {
    this.pending.set(id, pending);
    if (this.idleTimer || this.idleTimeoutMs <= 0 || this.closeError) return;
    const ms = this.idleTimeoutMs;
    this.lastFrame = performance.now();
    this.idleTimer = setInterval(() => {
      if (this.pending.size === 0) {
        clearInterval(this.idleTimer);
        this.idleTimer = undefined;
      } else if (performance.now() - this.lastFrame > ms) {
        this.session.destroy(new TransportError('TIMEOUT', `no reply from the agent for ${Math.round(ms / 1000)} s`, { idleTimeoutMs: ms }));
      }
    }, Math.min(ms, 1000));
    this.idleTimer.unref();
  }

  private hello(options: HelloOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.track(0, {
        onFrame: (frame) => {
          const h = frame.header;
          if (h.t === 'error') {
            reject(new RemoteError(String(h.code ?? 'REMOTE'), `agent refused the session: ${String(h.message ?? '')}`, { code: h.code }));
            return true;
          }
          if (h.t !== 'hello') throw new ProtocolError('BAD_MESSAGE', `expected hello, got "${h.t}"`, {});
          const v = uint(h, 'v');
          if (v < MIN_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
            throw new ProtocolError('VERSION_MISMATCH', `agent chose protocol ${v}, we speak ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`, { v });
          }
          this.info = {
            version: str(h, 'version', 64),
            root: str(h, 'root'),
            capabilities: Array.isArray(h.caps) ? h.caps.filter((c): c is string => typeof c === 'string') : [],
            uid: typeof h.uid === 'number' ? h.uid : -1,
          };
          if (h.rootAttrs !== undefined && h.rootAttrs !== null) this.info.rootAttrs = rootEntry(h.rootAttrs);
          if (h.chown !== undefined && h.chown !== null) {
            const c = h.chown as Record<string, unknown>;
            const id = (v: unknown) => (v === undefined ? undefined : Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : badChown());
            const badChown = (): never => {
              throw new ProtocolError('BAD_MESSAGE', 'hello: "chown" must hold whole-number ids', {});
            };
            this.info.chown = { uid: id(c.uid), gid: id(c.gid) };
          }
          resolve();
          return true;
        },
        reject,
      });
      this.session
        .send({
          t: 'hello',
          v: [MIN_PROTOCOL_VERSION, PROTOCOL_VERSION],
          caps: [...CAPABILITIES],
          root: options.root,
          owner: options.owner ?? false,
          partial: options.partial ?? false,
          lock: options.lock ?? false,
          ...(options.walk ? { walk: true } : {}),
          ...(options.dryRun ? { dry: true } : {}),
          ...(options.chown ? { chown: { ...(options.chown.user !== undefined ? { user: options.chown.user } : {}), ...(options.chown.group !== undefined ? { group: options.chown.group } : {}) } } : {}),
          ...(options.backup ? { backup: { ...(options.backup.dir !== undefined ? { dir: options.backup.dir } : {}), suffix: options.backup.suffix } } : {}),
        })
        .catch(reject);
    });
  }

  private onFrame(frame: Frame): void {
    this.lastFrame = performance.now();
    this.heard = true;
    const h = frame.header;
    const id = h.t === 'hello' || (h.t === 'error' && h.id === 0) ? 0 : uint(h, 'id');
    const pending = this.pending.get(id);
    if (!pending) throw new ProtocolError('BAD_MESSAGE', `"${h.t}" for unknown request ${id}`, { id, type: h.t });
    if (pending.onFrame(frame)) this.pending.delete(id);
  }

  /** A request whose single reply is `ok` (resolves with its header) or `error` (RemoteError). */
  private request(header: Header, collect?: (frame: Frame) => void, finalType = 'ok'): Promise<Header> {
    if (this.closeError) return Promise.reject(this.closeError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.track(id, {
        onFrame: (frame) => {
          const h = frame.header;
          if (h.t === 'error') {
            const path = typeof h.path === 'string' ? h.path : (header.path as string | undefined);
            reject(new RemoteError(String(h.code ?? 'REMOTE'), `${String(header.t)} ${path ?? ''}: ${String(h.message ?? '')}`.trim(), {
              code: h.code,
              path,
            }));
            return true;
          }
          if (h.t === finalType) {
            resolve(h);
            return true;
          }
          if (!collect) throw new ProtocolError('BAD_MESSAGE', `unexpected "${h.t}" for ${String(header.t)}`, { type: h.t });
          collect(frame);
          return false;
        },
        reject,
      });
      const staged = this.stage !== undefined && STAGED.has(String(header.t)) ? { stage: this.stage } : {};
      this.session.send({ ...header, ...staged, id }).catch(reject);
    });
  }

  /**
   * The destination tree, every entry checked. With `paths` (wire paths; '' or undefined is the whole
   * tree), only those paths, their subtrees and the directories above them (src/scope.ts): an agent
   * with the `list-paths` capability lists just that (several requests for a long scope); an older
   * one lists everything, filtered here. A malformed path throws PathError before anything is sent; a
   * path the agent refuses (a symlink above it) rejects with a RemoteError of that code.
   */
  async list(paths?: readonly string[]): Promise<RemoteEntry[]> {
    const scope = normalizeScope(paths);
    if (scope === undefined) return this.listRequest(undefined);
    const batches: string[][] = [];
    let bytes = 0;
    for (const path of scope) {
      const last = batches.at(-1);
      if (!last || last.length >= MAX_LIST_PATHS || bytes + path.length > LIST_PATHS_BYTES) {
        batches.push([path]);
        bytes = path.length;
      } else {
        last.push(path);
        bytes += path.length;
      }
    }
    if (batches.length === 0) return [];
    const scoped = () => this.info?.capabilities.includes(LIST_PATHS_CAPABILITY) ?? false;
    let lists: RemoteEntry[][];
    if (this.info === undefined) {
      // The agent's hello is still on its way (see open): the first batch goes at once. An agent
      // without the capability ignores `paths` and lists everything; by its reply we know which.
      const first = await this.listRequest(batches[0]);
      lists = [first, ...(scoped() ? await Promise.all(batches.slice(1).map((b) => this.listRequest(b))) : [])];
    } else if (scoped()) {
      lists = await Promise.all(batches.map((b) => this.listRequest(b)));
    } else {
      lists = [await this.listRequest(undefined)];
    }
    // Requests share ancestors, kept once; the filter narrows an older agent's whole listing.
    const covered = new Scope(scope);
    const seen = new Set<string>();
    const entries: RemoteEntry[] = [];
    for (const e of lists.flat()) {
      const key = `${e.type === 'p' ? 'p' : ''}:${e.path}`;
      if (seen.has(key) || !covered.covers(e.path)) continue;
      seen.add(key);
      entries.push(e);
    }
    return entries;
  }

  private async listRequest(paths: string[] | undefined): Promise<RemoteEntry[]> {
    const entries: RemoteEntry[] = [];
    await this.request(
      paths === undefined ? { t: 'list' } : { t: 'list', paths },
      (frame) => {
        const e = frame.header.e;
        if (frame.header.t !== 'entries' || !Array.isArray(e)) throw new ProtocolError('BAD_MESSAGE', 'listing frame malformed', {});
        for (const raw of e) entries.push(parseEntry(raw));
      },
      'done',
    );
    return entries;
  }

  /**
   * Compares the source entries with the destination (an agent with `list-compare`; docs/protocol.md,
   * Compared listing): the listing is encoded once per entries array and the same bytes go to every
   * agent. Resolves with the destination's entries that are not unchanged by the quick check
   * (partials too, and entries not in the source when `extraneous`), and the bitmap of the source
   * entries it holds unchanged. `paths` scopes it as for `list` (at most one request's worth).
   */
  async compare(
    source: readonly SourceEntry[],
    options: { paths?: readonly string[]; extraneous: boolean },
  ): Promise<{ entries: RemoteEntry[]; unchanged: Uint8Array }> {
    if (this.closeError) throw this.closeError;
    const listing = encodeListing(source);
    // Deflated for an agent that takes it so (made once for all agents, usually while they started).
    const packed = this.info?.capabilities.includes(LIST_COMPARE_ZLIB_CAPABILITY) ? await deflatedListing(source) : undefined;
    if (this.closeError) throw this.closeError;
    const sent = packed ?? listing;
    const id = this.nextId++;
    const entries: RemoteEntry[] = [];
    const reply = new Promise<Uint8Array>((resolve, reject) => {
      this.track(id, {
        onFrame: (frame) => {
          const h = frame.header;
          if (h.t === 'entries') {
            if (!Array.isArray(h.e)) throw new ProtocolError('BAD_MESSAGE', 'listing frame malformed', {});
            for (const raw of h.e) entries.push(parseEntry(raw));
            return false;
          }
          if (h.t === 'error') {
            reject(new RemoteError(String(h.code ?? 'REMOTE'), `compare: ${String(h.message ?? '')}`, { code: h.code, path: h.path }));
            return true;
          }
          if (h.t !== 'compared') throw new ProtocolError('BAD_MESSAGE', `unexpected "${h.t}" for compare`, {});
          const bitmap = frame.payload ?? new Uint8Array(0);
          const n = source.length;
          if (bitmap.length !== bitmapBytes(n) || (n % 8 !== 0 && bitmap.length > 0 && bitmap[bitmap.length - 1] >> n % 8 !== 0)) {
            throw new ProtocolError('BAD_MESSAGE', `compared bitmap of ${bitmap.length} bytes for ${n} entries`, { n, bytes: bitmap.length });
          }
          if (uint(h, 'n') !== entries.length) throw new ProtocolError('BAD_MESSAGE', `compared: ${String(h.n)} entries announced, ${entries.length} came`, {});
          resolve(bitmap.slice());
          return true;
        },
        reject,
      });
    });
    reply.catch(() => {});
    const header: Header = { t: 'compare', id, n: source.length, size: sent.length, extra: options.extraneous };
    if (packed) {
      header.z = true;
      header.raw = listing.length;
    }
    if (options.paths !== undefined) header.paths = [...options.paths];
    await this.session.send(header);
    for (let at = 0; at < sent.length; at += DATA_CHUNK) {
      await this.session.send({ t: 'data', id }, sent.subarray(at, at + DATA_CHUNK));
      this.lastFrame = performance.now();
    }
    await this.session.send({ t: 'end', id });
    // Made while the agent walks and compares (the check below and the plan need it when anything
    // differs): ~20 ms for 20,000 entries that would otherwise follow the reply.
    const indexOf = sourceIndex(source);
    const unchanged = await reply;
    for (const e of entries) {
      // An entry both held unchanged and listed as different: the agent contradicts itself.
      const i = e.type === 'p' ? undefined : indexOf.get(e.path);
      if (i !== undefined && bitIsSet(unchanged, i)) {
        const error = new ProtocolError('BAD_MESSAGE', `compared: ${JSON.stringify(e.path)} both unchanged and listed`, { path: e.path });
        this.session.destroy(error);
        throw error;
      }
    }
    return { entries, unchanged };
  }

  /** A native signature of the destination's file, with our seed. */
  async signature(path: string, seed: bigint, blockLength?: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    const final = await this.request(
      { t: 'sig', path, seed: seed.toString(), block: blockLength ?? null },
      (frame) => {
        if (frame.header.t !== 'data' || !frame.payload) throw new ProtocolError('BAD_MESSAGE', 'signature frame malformed', {});
        parts.push(frame.payload.slice());
        total += frame.payload.length;
      },
      'sig',
    );
    if (uint(final, 'size') !== total) throw new ProtocolError('BAD_MESSAGE', `signature size ${String(final.size)} but ${total} bytes came`, {});
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * Signatures of several small files in one request (docs/protocol.md, Batches), in `paths` order:
   * each a native signature with our seed, or the failure of that file alone (TOO_LARGE: ask for it
   * alone). Those asked for ahead (prefetchSignatures, same seed) are taken from there.
   */
  async signatureBatch(paths: readonly string[], seed: bigint): Promise<SignatureResult[]> {
    const taken = paths.map((path) => {
      const key = aheadKey(seed, path);
      const ahead = this.ahead.get(key);
      if (ahead) this.ahead.delete(key);
      return ahead;
    });
    const rest = paths.filter((_, i) => taken[i] === undefined);
    const fresh = rest.length > 0 ? await this.requestSignatures(rest, seed) : [];
    const results: SignatureResult[] = [];
    let next = 0;
    for (const ahead of taken) results.push(ahead ? await ahead : fresh[next++]);
    return results;
  }

  /**
   * Asks now, MAX_BATCH_FILES to a request, for the signatures that later signatureBatch calls with
   * this seed will want: the agent makes them while this side plans (a sync asks for those of the
   * small files its compared listing found changed). Each is taken once; a failed request fails the
   * signatureBatch that takes its results. Returns the number of requests made; they leave with the
   * session's next batch of frames (the next turn of the event loop).
   */
  prefetchSignatures(paths: readonly string[], seed: bigint): number {
    // A run has one seed: what an earlier run (a kept session) asked for and never took goes.
    if (seed !== this.aheadSeed) this.ahead.clear();
    this.aheadSeed = seed;
    for (let i = 0; i < paths.length; i += MAX_BATCH_FILES) {
      const chunk = paths.slice(i, i + MAX_BATCH_FILES);
      const reply = this.requestSignatures(chunk, seed);
      chunk.forEach((path, k) => {
        const result = reply.then((results) => results[k]);
        result.catch(() => {}); // one never taken (the session failed first) must not go unhandled
        this.ahead.set(aheadKey(seed, path), result);
      });
    }
    return Math.ceil(paths.length / MAX_BATCH_FILES);
  }

  /** One `sigs` request. */
  private async requestSignatures(paths: readonly string[], seed: bigint): Promise<SignatureResult[]> {
    const parts: Uint8Array[] = [];
    let total = 0;
    const final = await this.request(
      { t: 'sigs', paths: [...paths], seed: seed.toString(), block: null },
      (frame) => {
        if (frame.header.t !== 'data' || !frame.payload) throw new ProtocolError('BAD_MESSAGE', 'signature batch frame malformed', {});
        parts.push(frame.payload.slice());
        total += frame.payload.length;
      },
      'sigs',
    );
    const results = decodeBatchResults(final, paths.length);
    const all = Buffer.concat(parts, total);
    let at = 0;
    const out = results.map((r) => {
      if (!r.ok) return r;
      if (r.size > total - at) throw new ProtocolError('BAD_MESSAGE', `signature batch: ${total} bytes came, more announced`, {});
      return { ok: true as const, signature: all.subarray(at, (at += r.size)) };
    });
    if (at !== total) throw new ProtocolError('BAD_MESSAGE', `signature batch: ${total} bytes came, ${at} announced`, {});
    return out;
  }

  /**
   * Sends several small files in one request (docs/protocol.md, Batches): `payload` holds their
   * native deltas one after another, `length` bytes each (`basis` as for put). Resolves with each
   * file's result, in order, once the agent has placed (or failed) every one of them.
   */
  async putBatch(
    files: readonly { path: string; attributes: FileAttributes; basis: boolean; length: number }[],
    payload: Uint8Array,
    options: { compress?: boolean },
  ): Promise<{ results: BatchResult[]; sentBytes: number }> {
    if (this.closeError) throw this.closeError;
    const id = this.nextId++;
    const list: BatchFile[] = files.map((f) => ({
      path: f.path,
      size: f.attributes.size,
      mode: f.attributes.mode,
      mtime: f.attributes.mtimeMs,
      uid: f.attributes.uid,
      gid: f.attributes.gid,
      basis: f.basis,
      length: f.length,
    }));
    const sent = options.compress ? deflateRawSync(payload) : payload;
    const reply = new Promise<Header>((resolve, reject) => {
      this.track(id, {
        onFrame: (frame) => {
          const h = frame.header;
          if (h.t === 'ok') resolve(h);
          else if (h.t === 'error') reject(new RemoteError(String(h.code ?? 'REMOTE'), `puts: ${String(h.message ?? '')}`, { code: h.code }));
          else throw new ProtocolError('BAD_MESSAGE', `unexpected "${h.t}" for puts`, {});
          return true;
        },
        reject,
      });
    });
    reply.catch(() => {});
    const header: Header = { t: 'puts', id, f: encodeBatchFiles(list), ...(options.compress ? { z: true } : {}) };
    if (this.stage !== undefined) header.stage = this.stage;
    await this.session.send(header, sent);
    this.lastFrame = performance.now();
    return { results: decodeBatchResults(await reply, files.length), sentBytes: sent.length };
  }

  /**
   * Sends one file as a native delta (against the destination's file when `basis`, else against
   * nothing). Resolves when the agent has verified and renamed it. A chunk of `delta` must not
   * change once yielded: frames are batched (a small file's put, data and end go as one write).
   */
  async put(
    path: string,
    attributes: FileAttributes,
    delta: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { basis: boolean; compress?: boolean },
  ): Promise<{ size: number; sentBytes: number }> {
    if (this.closeError) throw this.closeError;
    const id = this.nextId++;
    let sentBytes = 0;
    const reply = new Promise<Header>((resolve, reject) => {
      this.track(id, {
        onFrame: (frame) => {
          const h = frame.header;
          if (h.t === 'ok') resolve(h);
          else if (h.t === 'error') {
            reject(new RemoteError(String(h.code ?? 'REMOTE'), `put ${path}: ${String(h.message ?? '')}`, { code: h.code, path }));
          } else throw new ProtocolError('BAD_MESSAGE', `unexpected "${h.t}" for put`, {});
          return true;
        },
        reject,
      });
    });
    // An early error reply must not go unhandled while we are still sending.
    reply.catch(() => {});
    // Sends are awaited (for backpressure) only every UNAWAITED_BYTES, so that the put, its data and its
    // end share one write, one SSH packet, when the file is small.
    let unawaited: Promise<void>[] = [];
    let unawaitedBytes = 0;
    const send = async (header: Header, payload?: Uint8Array) => {
      const sent = this.session.send(header, payload);
      sent.catch(() => {}); // awaited below, or the session's failure is reported by `reply`
      unawaited.push(sent);
      unawaitedBytes += payload?.length ?? 0;
      if (unawaitedBytes < UNAWAITED_BYTES) return;
      const pending = unawaited;
      unawaited = [];
      unawaitedBytes = 0;
      await Promise.all(pending);
      // The agent took the data: progress, even though it replies only at the end.
      this.lastFrame = performance.now();
    };
    await send({
      t: 'put',
      id,
      path,
      size: attributes.size,
      mode: attributes.mode,
      mtime: attributes.mtimeMs,
      uid: attributes.uid ?? null,
      gid: attributes.gid ?? null,
      basis: options.basis,
      ...(this.stage !== undefined ? { stage: this.stage } : {}),
    });
    let failed = false;
    void reply.catch(() => (failed = true));
    for await (const chunk of delta) {
      if (failed) break;
      for (let at = 0; at < chunk.length; at += DATA_CHUNK) {
        const piece = chunk.subarray(at, at + DATA_CHUNK);
        if (options.compress) {
          const packed = deflateRawSync(piece);
          await send({ t: 'data', id, z: true }, packed);
          sentBytes += packed.length;
        } else {
          await send({ t: 'data', id }, piece);
          sentBytes += piece.length;
        }
      }
    }
    if (!failed) unawaited.push(this.session.send({ t: 'end', id }));
    await Promise.all(unawaited);
    this.lastFrame = performance.now();
    const h = await reply;
    return { size: uint(h, 'size'), sentBytes };
  }

  async mkdir(path: string, mode: number): Promise<void> {
    await this.request({ t: 'mkdir', path, mode });
  }

  async symlink(path: string, target: string, mtimeMs?: number, uid?: number, gid?: number): Promise<void> {
    await this.request({ t: 'symlink', path, target, mtime: mtimeMs ?? null, uid: uid ?? null, gid: gid ?? null });
  }

  async remove(path: string): Promise<void> {
    await this.request({ t: 'delete', path });
  }

  async setattr(path: string, attributes: { mode?: number; mtimeMs?: number; uid?: number; gid?: number }): Promise<void> {
    await this.request({
      t: 'setattr',
      path,
      mode: attributes.mode ?? null,
      mtime: attributes.mtimeMs ?? null,
      uid: attributes.uid ?? null,
      gid: attributes.gid ?? null,
    });
  }

  /**
   * Attributes of several paths in one request (docs/protocol.md, Batches), applied by the agent in
   * this order: each entry's result, a failure affecting that entry alone. An agent must list
   * `setattrs`; at most MAX_SETATTRS entries.
   */
  /** Directories made in this order (agents listing `mkdirs`): each one's result. */
  async mkdirBatch(entries: readonly MkdirEntry[]): Promise<BatchResult[]> {
    return decodeBatchResults(await this.request({ t: 'mkdirs', f: encodeMkdirs(entries) }), entries.length);
  }

  /**
   * Hard links (-H, agents listing `hardlinks`): each result's size is 0 where the path already was a
   * name of its target's file, else 1 where a link replaced what the path held and 2 where the path
   * was free (with `dry`: would be).
   */
  async linkBatch(entries: readonly LinkEntry[], dry = false): Promise<BatchResult[]> {
    return decodeBatchResults(await this.request({ t: 'links', f: encodeLinks(entries), ...(dry ? { dry: true } : {}) }), entries.length);
  }

  /**
   * --link-dest, --copy-dest, --compare-dest (agents listing `link-dest`, link-dest.ts): for each of
   * `count` new files (`f`, their wire form), the 1-based index of the directory its match was (with
   * `dry`: would be) linked or copied from (`how`), as a result's size; 0 for none.
   */
  async linkDest(dirs: readonly string[], how: 'link' | 'copy' | 'compare', f: unknown[][], count: number, dry: boolean): Promise<BatchResult[]> {
    return decodeBatchResults(await this.request({ t: 'link-dest', dirs: [...dirs], ...(how !== 'link' ? { how } : {}), f, ...(dry ? { dry: true } : {}) }), count);
  }

  /**
   * --fuzzy (agents listing `fuzzy`, fuzzy.ts): for each of `count` new files (`f`, their wire form),
   * whether a basis was found in its directory (size 1) and (unless `dry`) placed at its partial name.
   */
  async fuzzy(f: unknown[][], count: number, dry: boolean): Promise<BatchResult[]> {
    return decodeBatchResults(await this.request({ t: 'fuzzy', f, ...(dry ? { dry: true } : {}) }), count);
  }

  async setattrBatch(entries: readonly SetattrEntry[]): Promise<BatchResult[]> {
    return decodeBatchResults(await this.request({ t: 'setattrs', f: encodeSetattrs(entries) }), entries.length);
  }

  /**
   * --owner by name (`owners`, docs/protocol.md): sends the source's ids with their names; the agent
   * maps each name it knows to its own id from then on. Resolves to that map (ids it keeps are left
   * out), which `ownerMap` then holds for comparing owners.
   */
  async mapOwners(users: readonly [number, string][], groups: readonly [number, string][]): Promise<OwnerMap> {
    // Requests of at most MAX_OWNER_IDS pairs of each kind and OWNER_REQUEST_BYTES of names each (the frame
    // header cap is 64 KiB), all sent at once; the agent adds each to its map.
    const requests: { users: [number, string][]; groups: [number, string][] }[] = [];
    let current = { users: [] as [number, string][], groups: [] as [number, string][] };
    let bytes = 0;
    const add = (kind: 'users' | 'groups', pair: [number, string]) => {
      const size = Buffer.byteLength(pair[1]) + 8;
      if (current[kind].length === MAX_OWNER_IDS || bytes + size > OWNER_REQUEST_BYTES) {
        requests.push(current);
        current = { users: [], groups: [] };
        bytes = 0;
      }
      current[kind].push(pair);
      bytes += size;
    };
    for (const pair of users) add('users', pair);
    for (const pair of groups) add('groups', pair);
    requests.push(current);
    const replies = await Promise.all(requests.map((r) => this.request({ t: 'owners', users: r.users, groups: r.groups }, undefined, 'owners')));
    const map: OwnerMap = { uids: new Map(), gids: new Map() };
    for (const h of replies) {
      for (const [field, into] of [['users', map.uids], ['groups', map.gids]] as const) {
        const value = h[field];
        const ok = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
        if (!Array.isArray(value) || !value.every((p) => Array.isArray(p) && p.length === 2 && ok(p[0]) && ok(p[1]))) {
          throw new ProtocolError('BAD_MESSAGE', `owners reply: "${field}" malformed`, { field });
        }
        for (const [from, to] of value as [number, number][]) into.set(from, to);
      }
    }
    this.ownerMap = map;
    return map;
  }

  /** The source's ids to the destination's, where `mapOwners` found names that map them elsewhere. */
  ownerMap: OwnerMap | undefined;

  /** SHA-256 (hex) of destination files, null where not a regular file. */
  async hashes(paths: string[]): Promise<(string | null)[]> {
    const h = await this.request({ t: 'hash', paths }, undefined, 'hashes');
    const list = h.h;
    if (!Array.isArray(list) || list.length !== paths.length || !list.every((x) => x === null || (typeof x === 'string' && /^[0-9a-f]{64}$/.test(x)))) {
      throw new ProtocolError('BAD_MESSAGE', 'hashes reply malformed', {});
    }
    return list as (string | null)[];
  }

  /** Applies everything staged under `stage` in one quick phase. */
  async commitStage(): Promise<void> {
    if (this.stage === undefined) return;
    await this.request({ t: 'commit', stage: this.stage });
  }

  /** Drops everything staged; the destination stays as it was. */
  async abortStage(): Promise<void> {
    if (this.stage === undefined) return;
    await this.request({ t: 'abort', stage: this.stage });
  }

  /** Creates releases/ID from the current release (hard links); resolves with the previous release. */
  async releasePrepare(release: string): Promise<string | undefined> {
    const h = await this.request({ t: 'release-prepare', release });
    return typeof h.previous === 'string' ? h.previous : undefined;
  }

  /** From now on the session works inside releases/ID. */
  async releaseEnter(release: string): Promise<void> {
    // The session's root is now the release's: the hello's attributes are not its own.
    if (this.info) this.info.rootAttrs = undefined;
    await this.request({ t: 'release-enter', release });
  }

  /**
   * The root's attributes from the hello, once: a session kept for further runs (watch) changed
   * them since, and those runs leave the root to what changes in it.
   */
  takeRootAttrs(): RootEntry | undefined {
    const attrs = this.info?.rootAttrs;
    if (this.info) this.info.rootAttrs = undefined;
    return attrs;
  }

  /** Points `current` at releases/ID; with `keep`, removes all but the newest `keep` releases. */
  async releaseSwitch(release: string, keep?: number): Promise<string[]> {
    const h = await this.request({ t: 'release-switch', release, keep: keep ?? null });
    return Array.isArray(h.pruned) ? h.pruned.filter((x): x is string => typeof x === 'string') : [];
  }

  async releaseDiscard(release: string): Promise<void> {
    await this.request({ t: 'release-discard', release });
  }

  async releaseList(): Promise<{ releases: string[]; current: string | undefined }> {
    const h = await this.request({ t: 'release-list' });
    const releases = Array.isArray(h.releases) ? h.releases.filter((x): x is string => typeof x === 'string') : [];
    return { releases, current: typeof h.current === 'string' ? h.current : undefined };
  }

  /** True once the session has ended (closed, failed or aborted): it takes no more requests. */
  get closed(): boolean {
    return this.closeError !== undefined;
  }

  /** Ends the session politely and waits for the agent to close. */
  async close(): Promise<void> {
    if (this.closeError) return;
    const closed = new Promise<void>((resolve) => this.session.onClose(() => resolve()));
    await this.session.send({ t: 'bye' }).catch(() => {});
    this.session.end();
    // The agent closes its output once it has finished everything, its lock released: what its
    // process does after that (a large file's old blocks freed as its last descriptor closes,
    // ~0.7 s for 1 GiB on ext4) and its exit status are not waited for.
    const ended = this.session.streams.outputEnded;
    await Promise.race([closed, ...(ended ? [ended] : []), new Promise((r) => setTimeout(r, 5000).unref())]);
    this.session.destroy();
  }

  /** Drops the connection at once (after a failure). */
  abort(error?: TransportError): void {
    this.session.destroy(error);
  }
}

/** A small file's signature from a batch, or why that file failed (TOO_LARGE: ask for it alone). */
export type SignatureResult = { ok: true; signature: Uint8Array } | Extract<BatchResult, { ok: false }>;

function aheadKey(seed: bigint, path: string): string {
  return `${seed}/${path}`;
}

const DEFAULT_IDLE_TIMEOUT = 60_000;
/** A put waits for the stream to take its frames once this many payload bytes are unawaited. */
const UNAWAITED_BYTES = 256 * 1024;

/** Path characters per `list` request, keeping its header well under the 64 KiB cap. */
const LIST_PATHS_BYTES = 32 * 1024;

/** Requests that change the tree, and so carry the stage when there is one. */
const STAGED = new Set(['mkdir', 'mkdirs', 'symlink', 'delete', 'setattr', 'setattrs']);

function parseEntry(raw: unknown): RemoteEntry {
  if (!Array.isArray(raw) || raw.length < 7) throw new ProtocolError('BAD_MESSAGE', 'listing entry malformed', {});
  const [path, type, size, mtimeMs, mode, uid, gid, linkTarget] = raw as unknown[];
  if (typeof path !== 'string') throw new ProtocolError('BAD_MESSAGE', 'listing entry path is not a string', {});
  wirePathComponents(path); // a path from the agent must stay inside the root too
  if (path === '') throw new ProtocolError('BAD_MESSAGE', 'listing entry for the root itself', {});
  if (type !== 'f' && type !== 'd' && type !== 'l' && type !== 'p') throw new ProtocolError('BAD_MESSAGE', `listing entry type ${String(type)}`, {});
  for (const [name, v] of [['size', size], ['mode', mode], ['uid', uid], ['gid', gid]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ProtocolError('BAD_MESSAGE', `listing entry ${name} malformed`, {});
  }
  if (typeof mtimeMs !== 'number' || !Number.isFinite(mtimeMs)) throw new ProtocolError('BAD_MESSAGE', 'listing entry mtime malformed', {});
  if (type === 'l' && typeof linkTarget !== 'string') throw new ProtocolError('BAD_MESSAGE', 'listing symlink without target', {});
  return {
    path,
    type,
    size: size as number,
    mtimeMs,
    mode: mode as number,
    uid: uid as number,
    gid: gid as number,
    linkTarget: type === 'l' ? (linkTarget as string) : undefined,
  };
}
