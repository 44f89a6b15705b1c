/**
 * One source tree to a destination, the way `rsync -a` users expect: scan the source, list the
 * destination, plan, then delete / mkdir / send files (pipelined, several in flight) / symlinks /
 * directory attributes. A changed file costs one signature from the agent and one native delta to it;
 * a new file is sent as literal data. The agent verifies each file's whole-file hash before it
 * renames it into place, so a failure leaves the old file (never a partial one) and is reported per
 * path.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createDelta, decodeSignature, indexSignature, literalDelta, LiteralDeltaStream, loadStrongSums } from '@deltacast/core/deferred';
import { AgentClient, type RemoteEntry } from './agent-client.js';
import { ProtocolError, TransportError } from './errors.js';
import type { EventListener, SyncSummary } from './events.js';
import { DestinationRun, emptySummary, isSessionFailure, recordFailure } from './destination-run.js';
import { parseFilterFile, PathFilter, type FilterRule } from './filter.js';
import { hasBasis, planChanges, type Change, type PlanOptions, type TransferRules } from './plan.js';
import { scanSource, type ScanOptions, type SourceEntry, type SourceTree } from './tree.js';
import { encodeAhead, listRemote, needsFullListing, type RemoteListing } from './listing.js';
import { InFlightBytes } from './in-flight.js';
import { parseChmod } from './chmod.js';
import { BACKUP_CAPABILITY, checkBackup, isBackup, type BackupOptions } from './backup.js';
import { BATCH_CAPABILITY, HARDLINKS_CAPABILITY } from './batch.js';
import { deltaFileHash, loadDeltaHashes } from './delta-hash.js';
import { batchable, batchEnd, changedSmallFiles, sendBatch, smallChange } from './batch-send.js';
import type { ByteStreams } from './wire.js';
import { openDestination, type DestinationOptions } from './open-destination.js';
import { basisDirs, planLinkDest } from './link-dest.js';
import { planFuzzy } from './fuzzy.js';
import { removeSourceFiles } from './remove-source.js';
import { ownerNamesOf } from './owner-names.js';
import { OWNER_NAMES_CAPABILITY } from './messages.js';

export interface TransferOptions extends TransferRules {
  /** Remove destination entries that are not in the source (within the transferred scope). */
  delete?: boolean;
  /**
   * With `delete`, rsync's --delete-after: extraneous entries go once every file, link and symlink
   * arrived, not before, so that what still refers to them (a page to an old asset) finds them
   * while the run lasts. Entries replaced by one of another type go first in any case.
   */
  deleteAfter?: boolean;
  /**
   * With `delete`, rsync's --max-delete: at most this many extraneous entries are deleted per
   * destination per run (a directory deleted with its contents is one entry; replacing an entry by
   * one of another type is not counted). Those deleted are the first in the plan's order (a
   * depth-first walk, names sorted by UTF-16 code units: plan.ts comparePaths); the rest stay, and
   * everything else is done. Skipping any makes the run not ok, with one error per destination:
   * code 'MAX_DELETE', path '', its message giving the number skipped. 0: no deletions at all.
   * A dry run itemizes and counts only the deletions that would happen. With staged commits
   * (atomic 'tree', all-or-none, releases) that error is a failure to stage everything: the
   * destination is not committed. Undefined: no limit.
   */
  maxDelete?: number;
  /**
   * With `delete`, rsync's --delete-excluded: destination entries that the filters exclude are deleted
   * too (without it they are protected).
   */
  deleteExcluded?: boolean;
  /**
   * rsync's --chmod, as rsync writes it (chmod.ts): the source's directories and regular files are
   * sent, and compared, with their modes so changed. A malformed value is INVALID_OPTION.
   */
  chmod?: string;
  /**
   * Symlinks in the source: 'keep' (default) sends them as links; 'copy' (rsync's -L) sends what they
   * point to; 'copy-unsafe' (--copy-unsafe-links) does so for those pointing outside the source
   * tree; 'safe' (--safe-links) leaves those out (tree.ts ScanOptions.links). A link that cannot be
   * followed fails its path (NO_REFERENT, SYMLINK_LOOP).
   */
  links?: 'keep' | 'copy' | 'copy-unsafe' | 'safe';
  /**
   * rsync's -x: 1 lists a directory on another file system than the source's (a mount point) as an
   * empty directory and keeps what the destination has under it; 2 (-xx) leaves it out.
   */
  oneFileSystem?: number;
  /**
   * rsync's --backup (backup.ts): what the run replaces or deletes at a destination is kept, as
   * PATH~ (`suffix`) or under `dir` inside the root; backups are never deleted as extraneous. Not
   * with staged commits or releases (INVALID_OPTION). An agent without the capability fails the
   * destination (UNSUPPORTED).
   */
  backup?: BackupOptions;
  /**
   * rsync's --chown USER:GROUP: everything written at a destination gets this owner and/or group,
   * names resolved there (an unknown one fails the destination: NO_SUCH_USER, NO_SUCH_GROUP), owners
   * differing are put back, as with `owner`. Takes effect where the agent runs as root; an agent
   * without the capability fails the destination (UNSUPPORTED).
   */
  chown?: { user?: string; group?: string };
  /** Compare content (SHA-256) instead of size + mtime. */
  checksum?: boolean;
  /** Filter rules in order; first match wins. */
  filters?: FilterRule[];
  /** Files with filter rules, one a line (rsync's --exclude-from); their rules apply after `filters`. */
  excludeFrom?: string[];
  /** Report what would change; change nothing. */
  dryRun?: boolean;
  /** Compress file data on the wire (zlib raw deflate per data frame). */
  compress?: boolean;
  /**
   * Preserve owner and group (takes effect when the agent runs as root), by name as rsync does: each
   * destination gives a file the ids its own host has for the source's user and group names (ids
   * without a name there, and 0, stay as they are).
   */
  owner?: boolean;
  /** With `owner`: keep the source's ids as numbers, not mapped by name (rsync's --numeric-ids). */
  numericIds?: boolean;
  /**
   * -H, rsync's --hard-links: files with several names in the source arrive as one file with those
   * names at the destination (needs an agent listing `hardlinks`; not with staged commits).
   */
  hardLinks?: boolean;
  /** Keep interrupted transfers of new files as a basis for the next run. */
  partial?: boolean;
  /**
   * rsync's --link-dest (link-dest.ts): a new file that one of these directories on the destination's
   * host holds as the source has it (relative ones to the destination root; up to 20, the first match
   * wins) is hard-linked from there instead of sent. Not with staged commits (INVALID_OPTION); an agent
   * without the capability fails the destination (UNSUPPORTED).
   */
  linkDest?: string[];
  /** rsync's --copy-dest: as linkDest, but the match is copied (a local copy on the destination's host). */
  copyDest?: string[];
  /** rsync's --compare-dest: a new file one of these directories holds as the source has it is left out (counted as skipped). */
  compareDest?: string[];
  /**
   * rsync's -y, --fuzzy (fuzzy.ts): a new file gets a basis from its own directory at the destination
   * (a file of the same size and mtime, else a close name), so a renamed file goes as a delta. An
   * agent without the capability fails the destination (UNSUPPORTED).
   */
  fuzzy?: boolean;
  /**
   * rsync's --remove-source-files (remove-source.ts): once at the destination (sent, or found there
   * unchanged), the source's files and symlinks are removed, directories kept; what failed, what a
   * rule left out, and what changed since the scan stay. One destination only: the fan-out refuses it
   * (INVALID_OPTION). Not in a dry run.
   */
  removeSourceFiles?: boolean;
  /**
   * Files (or batches of small files, src/batch-send.ts) in flight at once (default 32), and together
   * at most IN_FLIGHT_BYTES of them but for a single larger one: many small files need a deep
   * pipeline (each is a request and its reply), a few large ones do not, and each holds its delta
   * state meanwhile.
   */
  concurrency?: number;
  /**
   * A destination whose agent sends nothing for this long while a request waits is given up (TIMEOUT),
   * so a hung peer never holds up a run. Default 60 s; 0 disables.
   */
  idleTimeoutMs?: number;
  /**
   * Limit the run to these wire paths (relative to the destination root, '/'-separated, as
   * `SourceEntry.path`; '' is the whole tree): each is scanned and listed with its subtree and the
   * directories above it, and `delete` removes only inside them (docs/protocol.md, Listing).
   */
  paths?: string[];
  onEvent?: EventListener;
}

export interface SyncTarget {
  /** Label for events and errors (e.g. "web1:/srv/site"). */
  name: string;
  streams: ByteStreams;
  /** Root path as the agent should resolve it. */
  root: string;
  /** On another host (changes are itemized as sent, `<`, not received, `>`). */
  remote?: boolean;
}

const DEFAULT_CONCURRENCY = 32;
/** Bytes of files in flight at once (a larger file goes alone). */
const IN_FLIGHT_BYTES = 64 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;

export async function buildFilter(options: TransferOptions): Promise<PathFilter> {
  const rules: FilterRule[] = [...(options.filters ?? [])];
  for (const file of options.excludeFrom ?? []) rules.push(...parseFilterFile(await readFile(file, 'utf8')));
  return new PathFilter(rules);
}

/**
 * Runs one transfer to an agent already connected over `target.streams`. A `source` given as a
 * function is called once the hello and the list request are on their way, so that the (blocking)
 * scan of the source runs while the agent starts and lists the destination.
 */
export async function syncTree(
  source: SourceTree | Promise<SourceTree> | (() => Promise<SourceTree>),
  target: SyncTarget,
  filter: PathFilter,
  options: TransferOptions = {},
): Promise<SyncSummary> {
  const started = performance.now();
  // Deltas need xxh64: set up while the session starts, not at the first changed file.
  loadStrongSums(['xxh64']).catch(() => {});
  const { client, ready } = AgentClient.open(target.streams, helloOptions(target.root, options, comparesWholeTree(options)));
  // --checksum needs the whole listing: asked for at once, it is walked while the source is scanned.
  // Otherwise the agent compares the source listing once it has it (listRemote; `list` for an agent
  // without list-compare) and sends back only what differs, not 20,000 entries to decode and plan.
  const early = needsFullListing(options) ? client.list(options.paths).then((entries): RemoteListing => ({ entries })) : undefined;
  // setImmediate runs after the session's own, which writes the batched hello (and list).
  const scanned = typeof source === 'function' ? new Promise<void>((r) => setImmediate(r)).then(source) : Promise.resolve(source);
  // Awaited below; a failed hello must not leave them unhandled.
  early?.catch(() => {});
  scanned.catch(() => {});
  try {
    await ready;
    checkAgentCapabilities(client, options, target.name);
  } catch (error) {
    target.streams.close?.();
    throw error;
  }
  let run: DestinationRun | undefined;
  let summary: SyncSummary;
  let tree: SourceTree | undefined;
  try {
    tree = await scanned;
    // XXH3-128 for the deltas, set up while the agent walks and compares (this side waits then).
    if (!options.dryRun) loadDeltaHashes().catch(() => {});
    // The names go first: the plan compares owners through the agent's map.
    const owners = mapOwnersByName(client, tree, options);
    const remote = await (early ?? listRemote(client, tree, { extraneous: options.delete ?? false }));
    await owners;
    const seed = randomBytes(8).readBigUInt64BE();
    const batches = client.info?.capabilities.includes(BATCH_CAPABILITY) ?? false;
    // The agent signs the small files it found changed while this side plans. The requests leave
    // first: the plan holds this thread, and they would wait for it in the session's batch.
    if (batches && !options.dryRun && client.prefetchSignatures(changedSmallFiles(tree, remote, options), seed) > 0) await nextTurn();
    const sameContent = options.checksum ? await contentComparer(tree, remote.entries, client) : undefined;
    const plan = planChanges(tree, remote.entries, filter, planOptions(client, options, remote, sameContent));
    await planLinkDest(client, plan, basisDirs(options));
    if (options.fuzzy) await planFuzzy(client, plan, options.dryRun ?? false);
    run = new DestinationRun(target.name, client, plan, options, target.remote);
    run.announce();
    run.reportScan(tree);
    if (!options.dryRun) {
      await run.prepare();
      const queue = run.files();
      const workers = Math.max(1, Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, queue.length));
      const bytes = new InFlightBytes(IN_FLIGHT_BYTES);
      const alone = async (change: Change) => {
        const size = change.source?.size ?? 0;
        await bytes.acquire(size);
        await sendFile(change, client, seed, options)
          .then((stats) => run!.fileDone(change, stats))
          .catch((e) => run!.fail(change.path, e))
          .finally(() => bytes.release(size));
      };
      let next = 0;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (next < queue.length) {
            if (!batches || !batchable(queue[next])) {
              await alone(queue[next++]);
              continue;
            }
            // Consecutive small files go as one batch (src/batch-send.ts).
            const start = next;
            next = batchEnd(queue, start, smallChange);
            const group = queue.slice(start, next);
            const size = group.reduce((n, c) => n + c.source!.size, 0);
            await bytes.acquire(size);
            let outcomes;
            try {
              outcomes = await sendBatch(group, client, seed, options, (c) => readSmallFile(c.source!.local, c.source!.size));
            } catch (error) {
              for (const c of group) run!.fail(c.path, error);
              continue;
            } finally {
              bytes.release(size);
            }
            for (let i = 0; i < group.length; i++) {
              const outcome = outcomes[i];
              if ('stats' in outcome) run!.fileDone(group[i], outcome.stats);
              else if ('error' in outcome) run!.fail(group[i].path, outcome.error);
              else await alone(group[i]);
            }
          }
        }),
      );
      await run.finish();
      if (options.removeSourceFiles) removeSourceFiles(tree, run, options.onEvent);
    } else {
      // -H: which links would be made is the agent's to say.
      await run.hardLinks();
    }
    summary = run.summary;
    summary.stats = run.transferStats(tree);
    await client.close();
  } catch (error) {
    client.abort(error instanceof TransportError ? error : undefined);
    if (!isSessionFailure(error)) throw error;
    summary = run?.summary ?? emptySummary(options.dryRun ?? false);
    if (run && tree) summary.stats = run.transferStats(tree);
    recordFailure(summary, target.name, '', error, options.onEvent);
  }
  summary.durationMs = performance.now() - started;
  options.onEvent?.({ type: 'summary', destination: target.name, result: summary });
  return summary;
}

/** How to scan the source for a transfer (sync and fan-out alike); a malformed --chmod throws here. */
export function scanOptions(options: TransferOptions): ScanOptions {
  return {
    paths: options.paths,
    chmod: options.chmod === undefined ? undefined : parseChmod(options.chmod),
    links: options.links,
    oneFileSystem: options.oneFileSystem,
  };
}

/** How to plan for one destination (sync and fan-out alike): its agent, the run's options, its listing. */
export function planOptions(client: AgentClient, options: TransferOptions, listing: RemoteListing, sameContent: PlanOptions['sameContent']): PlanOptions {
  return {
    ...transferRules(options),
    delete: options.delete ?? false,
    deleteExcluded: options.deleteExcluded,
    owner: keepsOwners(client, options),
    protect: protectedPaths(options),
    sameContent,
    unchanged: listing.unchanged,
    root: client.takeRootAttrs(),
    hardLinks: options.hardLinks,
  };
}

/** The transfer rules of `options` (--size-only gives way to --checksum, which compares content). */
export function transferRules(options: TransferOptions): TransferRules {
  return {
    update: options.update,
    ignoreExisting: options.ignoreExisting,
    existing: options.existing,
    sizeOnly: options.sizeOnly && !options.checksum,
    ignoreTimes: options.ignoreTimes && !options.checksum,
    maxSize: options.maxSize,
    minSize: options.minSize,
  };
}

/** Resolves after the event loop's next turn, once what this one queued (batched frames, corked writes) has gone out. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Opens a session for a transfer: the hello carries the transfer's options and takes the destination's
 * lock (a dry run changes nothing, not even a lock file). If it fails, `close` ends the transport.
 */
export async function connectForTransfer(
  streams: ByteStreams,
  root: string,
  options: TransferOptions,
  close: () => void = () => streams.close?.(),
  walk = false,
): Promise<AgentClient> {
  try {
    return await AgentClient.connect(streams, helloOptions(root, options, walk));
  } catch (error) {
    close();
    throw error;
  }
}

/** `walk`: the first request will be a compare of the whole tree (not with --checksum, a scope or a release). */
function helloOptions(root: string, options: TransferOptions, walk = false) {
  const backup = options.backup ? checkBackup(options.backup) : undefined;
  return { root, owner: options.owner, partial: options.partial, lock: !options.dryRun, dryRun: options.dryRun, idleTimeoutMs: options.idleTimeoutMs, walk, backup, chown: options.chown };
}

/**
 * Fails (UNSUPPORTED) when the run asks for what the agent cannot do: --chown, or backups (it would
 * replace and delete files with nothing kept).
 */
export function checkAgentCapabilities(client: AgentClient, options: TransferOptions, name: string): void {
  const caps = client.info?.capabilities ?? [];
  if (options.chown && !caps.includes('chown')) {
    throw new TransportError('UNSUPPORTED', `${name}: its agent (${client.info?.version ?? 'unknown'}) cannot --chown; update deltacast there`, {});
  }
  if (options.hardLinks && !caps.includes(HARDLINKS_CAPABILITY)) {
    throw new TransportError('UNSUPPORTED', `${name}: its agent (${client.info?.version ?? 'unknown'}) cannot make hard links (-H); update deltacast there`, {});
  }
  if (!options.backup || options.dryRun || caps.includes(BACKUP_CAPABILITY)) return;
  throw new TransportError('UNSUPPORTED', `${name}: its agent (${client.info?.version ?? 'unknown'}) keeps no backups; update deltacast there, or sync without --backup`, {});
}

/** What --delete must leave: backups, when they are kept. */
export function protectedPaths(options: TransferOptions): ((path: string) => boolean) | undefined {
  if (!options.backup) return undefined;
  const backup = checkBackup(options.backup);
  return (path) => isBackup(backup, path);
}

/** Whether a transfer with these options lists the destination by comparing the whole tree first. */
export function comparesWholeTree(options: TransferOptions): boolean {
  return !needsFullListing(options) && options.paths === undefined;
}

/**
 * The owners a destination should have, for the plan to compare (undefined: owners are not kept
 * there: not asked for, or its agent is not root): the source's with `owner`, --chown's ids (as the
 * agent resolved them) over those.
 */
export function keepsOwners(client: AgentClient, options: TransferOptions): ((source: { uid: number; gid: number }) => { uid?: number; gid?: number }) | undefined {
  if (!(options.owner || options.chown) || client.info?.uid !== 0) return undefined;
  const chown = client.info.chown ?? {};
  const owner = options.owner === true;
  const map = client.ownerMap;
  return (source) => ({
    uid: chown.uid ?? (owner ? (map?.uids.get(source.uid) ?? source.uid) : undefined),
    gid: chown.gid ?? (owner ? (map?.gids.get(source.gid) ?? source.gid) : undefined),
  });
}

const sourceOwnerNames = new WeakMap<SourceTree, { users: [number, string][]; groups: [number, string][] }>();

/**
 * --owner by name: the ids the source tree uses (but 0, never mapped) with their names on this host,
 * found once per scan however many destinations need them.
 */
function ownerNames(tree: SourceTree): { users: [number, string][]; groups: [number, string][] } {
  let names = sourceOwnerNames.get(tree);
  if (!names) {
    const uids = new Set<number>();
    const gids = new Set<number>();
    for (const e of tree.root ? [tree.root, ...tree.entries] : tree.entries) {
      if (e.uid !== 0) uids.add(e.uid);
      if (e.gid !== 0) gids.add(e.gid);
    }
    names = { users: [...ownerNamesOf(uids, 'passwd')], groups: [...ownerNamesOf(gids, 'group')] };
    sourceOwnerNames.set(tree, names);
  }
  return names;
}

/**
 * With --owner (not --numeric-ids), at an agent that keeps owners and maps names: sends it the
 * source's ids and names (`owners`), so that it gives files its own ids for those names; the
 * client's plan compares owners through the map it returns. Undefined where nothing is mapped.
 */
export function mapOwnersByName(client: AgentClient, tree: SourceTree, options: TransferOptions): Promise<unknown> | undefined {
  if (!options.owner || options.numericIds || client.info?.uid !== 0 || !client.info.capabilities.includes(OWNER_NAMES_CAPABILITY)) return undefined;
  const { users, groups } = ownerNames(tree);
  return users.length > 0 || groups.length > 0 ? client.mapOwners(users, groups) : undefined;
}

/** One file as a native delta against the destination's basis (or nothing); its figures. */
export async function sendFile(change: Change, client: AgentClient, seed: bigint, options: TransferOptions) {
  const source = change.source!;
  const attributes = { size: source.size, mode: source.mode, mtimeMs: source.mtimeMs, uid: options.owner ? source.uid : undefined, gid: options.owner ? source.gid : undefined };
  await loadDeltaHashes();
  if (!hasBasis(change)) {
    // A new file: its delta is its bytes, nothing to match. A small one is read whole, its delta made
    // in one buffer of its size; a large one goes a LITERAL per chunk read.
    const whole = source.size >= READ_CHUNK ? undefined : readSmallFile(source.local, source.size);
    if (whole) {
      const literalBytes = whole.length;
      const result = await client.put(change.path, attributes, [literalDelta(whole, deltaFileHash(client))], { basis: false, compress: options.compress });
      return { size: result.size, literalBytes, matchedBytes: 0, sentBytes: result.sentBytes };
    }
    const literal = new LiteralDeltaStream(deltaFileHash(client));
    function* literalChunks(): Generator<Uint8Array> {
      for (const chunk of readChunks(source.local, source.size)) yield literal.update(chunk);
      yield literal.final();
    }
    const result = await client.put(change.path, attributes, literalChunks(), { basis: false, compress: options.compress });
    return { size: result.size, literalBytes: literal.stats.literalBytes, matchedBytes: 0, sentBytes: result.sentBytes };
  }
  const sig = decodeSignature(await client.signature(change.path, seed));
  if (sig.format !== 'native' || sig.seed !== seed) {
    throw new ProtocolError('BAD_MESSAGE', `signature for ${change.path} is not native with our seed`, { path: change.path });
  }
  const builder = createDelta(indexSignature(sig), { expectedLength: source.size, fileHash: deltaFileHash(client) });
  async function* deltaChunks(): AsyncGenerator<Uint8Array> {
    for (const chunk of readChunks(source.local, source.size)) {
      const out = builder.update(chunk);
      if (out.length > 0) yield out;
    }
    yield builder.final();
  }
  const result = await client.put(change.path, attributes, deltaChunks(), { basis: true, compress: options.compress });
  return { size: result.size, literalBytes: builder.stats.literalBytes, matchedBytes: builder.stats.copiedBytes, sentBytes: result.sentBytes };
}

/**
 * For --checksum: hash same-size candidates on both sides, compare. `sourceHashes` caches the source
 * side across destinations (a fan-out hashes each source file once).
 */
export async function contentComparer(tree: SourceTree, remote: RemoteEntry[], client: AgentClient, sourceHashes = new Map<string, string>()) {
  const remoteByPath = new Map(remote.map((r) => [r.path, r]));
  const candidates = tree.entries.filter((e) => {
    const r = remoteByPath.get(e.path);
    return e.type === 'f' && r?.type === 'f' && r.size === e.size;
  });
  const same = new Set<string>();
  for (let i = 0; i < candidates.length; i += 256) {
    const batch = candidates.slice(i, i + 256);
    const theirs = await client.hashes(batch.map((e) => e.path));
    for (let j = 0; j < batch.length; j++) {
      let ours = sourceHashes.get(batch[j].path);
      if (ours === undefined) {
        const hasher = createHash('sha256');
        for (const chunk of readChunks(batch[j].local, batch[j].size)) hasher.update(chunk);
        ours = hasher.digest('hex');
        sourceHashes.set(batch[j].path, ours);
      }
      if (ours === theirs[j]) same.add(batch[j].path);
    }
  }
  return (source: SourceEntry) => same.has(source.path);
}

export { scanSource };

export interface SyncOptions extends TransferOptions, DestinationOptions {
  /** Source path, rsync style: "dir/" sends the contents of dir, "dir" sends dir itself. */
  source: string;
  /** Destination: a local path or host:path, user@host:path, ssh://user@host:port/path. */
  destination: string;
}

/**
 * Syncs one source to one destination and returns its summary; events go to `onEvent`. Per-file
 * failures are in `summary.errors` (summary.ok false); failing to connect throws a ConnectError.
 */
export async function sync(options: SyncOptions): Promise<SyncSummary> {
  basisDirs(options); // a bad combination is refused before connecting
  const filter = await buildFilter(options);
  await lstat(options.source); // a missing source is reported before connecting anywhere
  // Scanned while the session is set up: the scan gives the event loop a turn every millisecond, so
  // the handshake goes on, and the listing is encoded before the agent has even started.
  const stop = new AbortController();
  const scanned = scanSource(options.source, filter, { ...scanOptions(options), signal: stop.signal }).then(async (tree) => {
    await nextTurn();
    encodeAhead(tree, options);
    return tree;
  });
  scanned.catch(() => {}); // awaited by syncTree; not if the connection fails first
  let destination: Awaited<ReturnType<typeof openDestination>>;
  try {
    destination = await openDestination(options.destination, options);
  } catch (error) {
    stop.abort(error);
    throw error;
  }
  try {
    return await syncTree(scanned, { name: destination.name, streams: destination.streams, root: destination.root, remote: destination.remote }, filter, options);
  } finally {
    await destination.close(); // a local agent has let go of the lock when sync() settles, also after an error
  }
}

/** The one buffer readChunks reads into: allocated once, not per file (see readChunks). */
let readBuffer: Uint8Array | undefined;

/**
 * A file read whole into readChunks' shared buffer (valid as its chunks are), or undefined when it
 * holds READ_CHUNK bytes or more now: then it is read in chunks after all. `expected`: its size at
 * the scan.
 */
function readSmallFile(path: string, expected: number): Uint8Array | undefined {
  const fd = openSync(path, 'r');
  try {
    readBuffer ??= new Uint8Array(READ_CHUNK);
    let length = 0;
    for (;;) {
      const want = READ_CHUNK - length;
      const n = readSync(fd, readBuffer, length, want, null);
      length += n;
      // A short read that brings the file to its scanned size is its end (on a local file system a
      // regular file reads short only there): no second read to be told so. Any other is checked.
      if (n === 0 || (n < want && length === expected)) return readBuffer.subarray(0, length);
      if (length === READ_CHUNK) return undefined;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A file's bytes in chunks, read synchronously into one buffer shared by every call: a chunk is valid
 * only until the next chunk is asked for, from this file or any other, so a consumer uses it at once
 * (the delta builders and hashes copy what they keep). A buffer per file, sized to it, added to the
 * full collections that syncing many small files provokes (an initial copy of 20,000 files: 59 of
 * them, 361 ms, against 49 and 267 ms with one buffer), and per-file thread-pool round trips cost
 * more than a blocking read of a page-cached chunk.
 */
export function* readChunks(path: string, sizeHint: number): Generator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    readBuffer ??= new Uint8Array(READ_CHUNK);
    // Up to a little past the expected size (so a file that grew is seen at once), in READ_CHUNK pieces.
    const want = Math.min(READ_CHUNK, Math.max(4096, sizeHint + 1));
    let total = 0;
    for (;;) {
      const n = readSync(fd, readBuffer, 0, want, null);
      if (n === 0) return;
      total += n;
      yield readBuffer.subarray(0, n);
      // A short read that brings the file to its expected size is its end (on a local file system a
      // regular file reads short only there): no read more to be told so. Any other is checked.
      if (n < want && total === sizeHint) return;
    }
  } finally {
    closeSync(fd);
  }
}
