/**
 * One source, many destinations. The source tree is scanned once and every source file is read once
 * per run; destinations are connected, listed and planned in parallel; for each changed file the
 * destinations whose basis is identical (same signature bytes under one seed) share one delta
 * computation and one encoded payload, a destination that drifted gets its own delta, and those
 * lacking the file share one literal stream. A destination that fails (cannot connect, loses its
 * connection, cannot write a path) is reported in its own result and never stops the others.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fstatSync, openSync, closeSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { createDelta, decodeSignature, indexSignature, LiteralDeltaStream, loadStrongSums, type DeltaStats, type FileHashKind, type SignatureIndex } from '@deltacast/core/deferred';
import {
  buildFilter,
  basisDirs,
  planFuzzy,
  planLinkDest,
  deltaFileHash,
  loadDeltaHashes,
  connectForTransfer,
  comparesWholeTree,
  contentComparer,
  DestinationRun,
  emptySummary,
  heldUnchanged,
  isSessionFailure,
  listRemote,
  encodeAhead,
  openDestination,
  planChanges,
  ProtocolError,
  readChunks,
  hasBasis,
  batchEnd,
  BATCH_CAPABILITY,
  changedSmallFiles,
  planOptions,
  mapOwnersByName,
  checkAgentCapabilities,
  checkBackup,
  scanOptions,
  nextTurn,
  SMALL_FILE,
  recordFailure,
  scanSource,
  TransportError,
  type Change,
  type DestinationOptions,
  type OpenedDestination,
  type SourceEntry,
  type SyncEvent,
  type SyncSummary,
  type TransferOptions,
} from '@deltacast/transport';
import { Spool } from './spool.js';
import { sendSmallFiles, takesBatches, type BatchContext, type Target } from './batches.js';
import type { SessionPool } from './session-pool.js';

export interface FanoutOptions extends TransferOptions, DestinationOptions {
  /** Source path, rsync style: "dir/" sends the contents of dir, "dir" sends dir itself. */
  source: string;
  /** Destinations: local paths or host:path, user@host:path, ssh://user@host:port/path. */
  destinations: string[];
  /** Destinations connected, and written for one file, at once; 1 is sequential. Default 8. */
  parallel?: number;
  /**
   * 'file' (default): each file is renamed into place as soon as it is verified. 'tree': every change
   * is staged on the destination and applied in one quick phase of renames at the end; a destination
   * that did not stage everything is left exactly as it was.
   */
  atomic?: 'file' | 'tree';
  /**
   * Across destinations (implies atomic 'tree'): 'best-effort' (default) commits each destination that
   * staged everything; 'all-or-none' commits only if every destination did, else none.
   */
  commit?: 'best-effort' | 'all-or-none';
  /**
   * Run on each destination's host, in its root, before its changes go live (with atomic 'tree':
   * after staging, before commit; else before the first change). A non-zero exit counts as that
   * destination failing to stage: it is not changed.
   */
  beforeCommit?: string;
  /** Run on each destination after its changes went live (e.g. reload a service). A failure is reported. */
  afterCommit?: string;
  /**
   * Release directories: each destination gets releases/ID (a hard-link clone of its current release,
   * then synced), and `current` is switched to it in phase two, with the same ID everywhere. `keep`
   * removes all but the newest releases after the switch.
   */
  release?: boolean | { id?: string; keep?: number };
  /** Extra connection attempts after a transient failure (refused, timed out, dropped), with backoff. Default 2. */
  connectRetries?: number;
  /**
   * Keep agent sessions open in this pool for later runs (and reuse those it holds) instead of
   * connecting and closing every time; the caller closes the pool.
   */
  sessions?: SessionPool;
  onEvent?: (event: FanoutEvent) => void;
}

/** The sync events (each names its destination), plus one per delta computed for a file. */
export type FanoutEvent =
  | SyncEvent
  | {
      type: 'delta';
      path: string;
      /** Destinations that received this one delta. */
      destinations: string[];
      /** 'new' for the literal stream to destinations lacking the file. */
      basis: 'new' | 'shared';
      deltaBytes: number;
      literalBytes: number;
      matchedBytes: number;
    };

export interface DestinationResult {
  destination: string;
  ok: boolean;
  /** With atomic 'tree': whether its staged changes were applied (false: left as it was). */
  committed?: boolean;
  summary: SyncSummary;
}

export interface FanoutResult {
  ok: boolean;
  destinations: DestinationResult[];
  /** Files that changed on at least one destination. */
  files: number;
  /** With `release`: the release id made on every destination. */
  release?: string;
  /** Delta computations for those files (one per distinct basis, plus one literal stream). */
  deltasComputed: number;
  /** File transfers to destinations those deltas served. */
  destinationFiles: number;
  /** Times a source file was read (once per changed file, plus re-reads of files that changed). */
  sourceReads: number;
  durationMs: number;
}

const DEFAULT_PARALLEL = 8;
/** Changed files (or batches of small ones) prepared (signatures gathered, deltas computed) at once. */
const FILES_IN_FLIGHT = 4;
/** Reads of a file that keeps changing before it is reported instead of sent. */
const MAX_READS = 3;

interface Group {
  targets: Target[];
  basis: 'new' | 'shared';
  /** The basis's index; none for destinations lacking the file (their delta is all literal). */
  index: SignatureIndex | undefined;
}

class SourceChangedError extends Error {
  readonly code = 'SOURCE_CHANGED';
}


/** Runs a fan-out; per-destination outcomes are in the result, never thrown. */
export async function fanout(options: FanoutOptions): Promise<FanoutResult> {
  const started = performance.now();
  // Deltas need xxh64: set up while the sessions start, not at the first changed file.
  loadStrongSums(['xxh64']).catch(() => {});
  const emit = (event: FanoutEvent) => options.onEvent?.(event);
  const parallel = Math.max(1, options.parallel ?? DEFAULT_PARALLEL);
  const filter = await buildFilter(options);
  if (options.backup) {
    checkBackup(options.backup);
    const stagedRun = options.release || options.commit === 'all-or-none' || options.atomic === 'tree';
    if (stagedRun) {
      throw new TransportError('INVALID_OPTION', 'backups are kept by --atomic file runs; staged commits and releases keep the old tree their own way (a release stays until pruned)', {});
    }
  }
  if (options.removeSourceFiles) {
    throw new TransportError('INVALID_OPTION', '--remove-source-files takes one destination: a fan-out would need every destination to have a file before it goes', {});
  }
  const basis = basisDirs(options);
  if (basis && basis.how !== 'compare' && (options.release || options.commit === 'all-or-none' || options.atomic === 'tree')) {
    throw new TransportError('INVALID_OPTION', `--${basis.how}-dest goes with --atomic file: a staged file is not at its path for a ${basis.how} to be made there`, {});
  }
  if (options.hardLinks && (options.release || options.commit === 'all-or-none' || options.atomic === 'tree')) {
    // A staged file is not at its path until the commit: a link to it would find the old one.
    throw new TransportError('INVALID_OPTION', 'hard links (-H) are made by --atomic file runs, not with staged commits or releases', {});
  }
  await lstat(options.source); // a missing source is reported before connecting anywhere
  // Scanned while the destinations connect (the scan gives the event loop a turn every millisecond),
  // so the remote shells and agents start during it; the listing is then encoded, once for all, while
  // the agents start. Each destination waits for it before its listing. A scan that fails ends the
  // run with its error once the sessions opened meanwhile are let go.
  const scanned = scanSource(options.source, filter, scanOptions(options)).then(async (tree) => {
    await nextTurn();
    encodeAhead(tree, options);
    // XXH3-128 for the deltas, set up while the agents walk and compare (this side waits then).
    if (!options.dryRun) loadDeltaHashes().catch(() => {});
    return tree;
  });
  scanned.catch(() => {});
  const results = new Map<string, SyncSummary>(options.destinations.map((d) => [d, emptySummary(options.dryRun ?? false)]));
  /** Each session's byte counts when this run took it (a kept session carries earlier runs). */
  const before = new Map<string, { sent: number; received: number }>();

  // Connect, list and plan every destination; a failure here only removes that destination.
  const runs: DestinationRun[] = [];
  const opened = new Map<DestinationRun, OpenedDestination>();
  const releaseOptions = options.release === true ? {} : options.release || undefined;
  const releaseId = releaseOptions ? (releaseOptions.id ?? newReleaseId()) : undefined;
  /** The seed of every signature of the run: one for all destinations, so equal bases sign alike. */
  const seed = randomBytes(8).readBigUInt64BE();
  const sourceHashes = new Map<string, string>(); // --checksum: each source file hashed once
  const remoteFiles = new Map<string, (path: string) => boolean>(); // whether each destination had a regular file there when listed
  await limit(options.destinations, parallel, async (name) => {
    try {
      const connect = async () => {
        const destination = await withRetries(() => openDestination(name, options), options.connectRetries ?? 2);
        // Agents walk their tree at once when the first listing is a compare of the whole tree there.
        const walk = releaseId === undefined && comparesWholeTree(options);
        const client = await connectForTransfer(destination.streams, destination.root, options, () => destination.close(), walk);
        try {
          checkAgentCapabilities(client, options, name);
        } catch (error) {
          await client.close().catch(() => {});
          await destination.close();
          throw error;
        }
        return { client, destination };
      };
      const { client, destination } = options.sessions ? await options.sessions.acquire(name, connect) : await connect();
      // A kept session has carried earlier runs: --stats counts this run's bytes.
      before.set(name, { sent: client.bytesSent, received: client.bytesReceived });
      const tree = await scanned.catch(() => undefined);
      if (!tree) {
        // A kept session stays in its pool, untouched; another is ended (its lock released).
        if (!options.sessions) {
          await client.close();
          await destination.close();
        }
        return;
      }
      if (releaseId !== undefined && !options.dryRun) {
        await client.releasePrepare(releaseId);
        await client.releaseEnter(releaseId);
      }
      // --owner by name: the names go first, as the plan compares owners through the agent's map.
      const owners = mapOwnersByName(client, tree, options);
      // An agent that compares our listing (encoded once for all) sends back only what differs.
      const listing = await listRemote(client, tree, { extraneous: options.delete ?? false, checksum: options.checksum, owner: options.owner, chown: options.chown, ignoreTimes: options.ignoreTimes });
      await owners;
      // The agent signs the small files it found changed while this destination and the others are
      // planned; the requests leave before the plan holds this thread.
      if (!options.dryRun && (client.info?.capabilities.includes(BATCH_CAPABILITY) ?? false) && client.prefetchSignatures(changedSmallFiles(tree, listing, options), seed) > 0) {
        await nextTurn();
      }
      const files = new Set(listing.entries.filter((r) => r.type === 'f').map((r) => r.path));
      remoteFiles.set(name, (path) => files.has(path) || heldUnchanged(listing, tree, path));
      const sameContent = options.checksum ? await contentComparer(tree, listing.entries, client, sourceHashes) : undefined;
      const plan = planChanges(tree, listing.entries, filter, planOptions(client, options, listing, sameContent));
      await planLinkDest(client, plan, basis);
      if (options.fuzzy) await planFuzzy(client, plan, options.dryRun ?? false);
      const run = new DestinationRun(name, client, plan, options, destination.remote);
      results.set(name, run.summary);
      runs.push(run);
      opened.set(run, destination);
    } catch (error) {
      recordFailure(results.get(name)!, name, '', error, emit);
    }
  });

  const tree = await scanned;
  let files = 0;
  let deltasComputed = 0;
  let destinationFiles = 0;
  let sourceReads = 0;
  const live = new Set(runs);
  // A session failure takes the destination out of the run; its other work is skipped.
  const drop = (run: DestinationRun, error: unknown) => {
    if (!live.has(run)) return;
    live.delete(run);
    recordFailure(run.summary, run.name, '', error, emit);
    run.client.abort(error instanceof TransportError ? error : undefined);
  };
  const guarded = async (run: DestinationRun, work: () => Promise<void>) => {
    if (!live.has(run)) return;
    try {
      await work();
    } catch (error) {
      if (isSessionFailure(error)) drop(run, error);
      else throw error;
    }
  };

  // Two phases: stage (or build the release) everywhere, then commit (or switch) where allowed.
  const staged = releaseId !== undefined || (options.atomic ?? (options.commit === 'all-or-none' ? 'tree' : 'file')) === 'tree';
  if (staged && options.commit === undefined) options = { ...options, commit: 'best-effort' };
  const stageId = randomBytes(6).toString('hex');
  const committed = new Map<string, boolean>();
  for (const run of runs) {
    run.announce();
    run.reportScan(tree);
    // Set either way: a pooled session may carry the stage of an earlier run.
    run.client.stage = staged && releaseId === undefined ? stageId : undefined;
  }
  const hook = async (run: DestinationRun, which: 'before-commit' | 'after-commit', command: string | undefined) => {
    if (command === undefined || !live.has(run)) return true;
    const result = await opened.get(run)!.exec(command);
    if (result.code === 0) return true;
    const message = `${which} hook exited ${result.code}${result.stderr ? `: ${result.stderr.trim().split('\n').pop()}` : ''}`;
    recordFailure(run.summary, run.name, '', Object.assign(new Error(message), { code: 'HOOK_FAILED' }), emit);
    return false;
  };
  if (!options.dryRun) {
    if (!staged && options.beforeCommit !== undefined) {
      // Changes go live file by file: the hook runs before the first one; a failure keeps the destination out.
      await limit(runs, parallel, async (run) => {
        if (!(await hook(run, 'before-commit', options.beforeCommit))) {
          live.delete(run);
          run.client.abort();
        }
      });
    }
    await limit([...live], parallel, (run) => guarded(run, () => run.prepare()));

    // Every changed file once, with the destinations that need it.
    const byPath = new Map<string, Target[]>();
    for (const run of live) {
      for (const change of run.files()) {
        const targets = byPath.get(change.path) ?? [];
        targets.push({ run, change });
        byPath.set(change.path, targets);
      }
    }
    const order = tree.entries.filter((e) => byPath.has(e.path));
    files = order.length;
    const targetsOf = (entry: SourceEntry) => byPath.get(entry.path)!.filter((t) => live.has(t.run));
    /** One file alone: signatures, groups, one read (again if it changed), a put per destination. */
    const sendEntry = async (entry: SourceEntry, given: Target[]) => {
      const targets = given.filter((t) => live.has(t.run));
      if (targets.length === 0) return;
      let widened = false;
      let prepared: { group: Group; spool: Spool; stats: DeltaStats }[] | undefined;
      for (let reads = 1; !prepared; reads++) {
        let now: { size: number; mtimeMs: number };
        try {
          now = statOf(entry.local);
        } catch (error) {
          for (const t of targets) t.run.fail(entry.path, error); // vanished since the scan
          return;
        }
        // Changed since the scan (or during a read): the destinations planned as up to date hold the
        // scanned version, which is no longer the source's. They get this file too, so every
        // destination ends with the same content.
        if (now.size !== entry.size || now.mtimeMs !== entry.mtimeMs) {
          entry.size = now.size;
          entry.mtimeMs = now.mtimeMs;
          if (!widened) {
            widened = true;
            for (const run of live) {
              if (targets.some((t) => t.run === run)) continue;
              const has = remoteFiles.get(run.name)?.(entry.path) ?? false;
              targets.push({ run, change: { kind: has ? 'update' : 'create', path: entry.path, source: entry } });
            }
          }
        }
        const active = targets.filter((t) => live.has(t.run));
        const groups = await groupByBasis(entry, active, seed, (t, e) => (isSessionFailure(e) ? drop(t.run, e) : t.run.fail(t.change.path, e)));
        if (groups.length === 0) return;
        sourceReads++;
        await loadDeltaHashes(); // the deltas hash blocks to match them
        try {
          prepared = readOnce(entry, groups, now);
        } catch (error) {
          for (const g of groups) for (const t of g.targets) t.run.fail(t.change.path, error);
          return;
        }
        if (!prepared && reads >= MAX_READS) {
          const error = new SourceChangedError(`${entry.path} kept changing while it was read (${reads} reads); not sent anywhere`);
          for (const g of groups) for (const t of g.targets) t.run.fail(t.change.path, error);
          return;
        }
      }
      try {
        for (const { group, spool, stats } of prepared) {
          deltasComputed++;
          const sent: string[] = [];
          await limit(group.targets, parallel, (t) =>
            guarded(t.run, async () => {
              try {
                const result = await t.run.client.put(
                  entry.path,
                  {
                    size: entry.size,
                    mode: entry.mode,
                    mtimeMs: entry.mtimeMs,
                    uid: options.owner ? entry.uid : undefined,
                    gid: options.owner ? entry.gid : undefined,
                  },
                  spool.chunks(),
                  { basis: group.basis === 'shared', compress: options.compress },
                );
                destinationFiles++;
                sent.push(t.run.name);
                t.run.fileDone(t.change, { size: result.size, literalBytes: stats.literalBytes, matchedBytes: stats.copiedBytes, sentBytes: result.sentBytes });
              } catch (error) {
                t.run.fail(t.change.path, error);
              }
            }),
          );
          emit({
            type: 'delta',
            path: entry.path,
            destinations: sent,
            basis: group.basis,
            deltaBytes: spool.size,
            literalBytes: stats.literalBytes,
            matchedBytes: stats.copiedBytes,
          });
        }
      } finally {
        for (const p of prepared) p.spool.dispose();
      }
    };
    // Consecutive small files go in batches (batches.ts), each larger one alone.
    const counts = { deltasComputed: 0, destinationFiles: 0, sourceReads: 0 };
    const batchContext: BatchContext = {
      seed,
      compress: options.compress,
      owner: options.owner,
      live: (run) => live.has(run),
      drop,
      stat: statOf,
      delta: (event) => emit({ type: 'delta', ...event }),
      counts,
    };
    const small = (entry: SourceEntry) =>
      entry.size < SMALL_FILE && byPath.get(entry.path)!.every((t) => takesBatches(t.run)) ? { path: entry.path, size: entry.size } : undefined;
    const units: SourceEntry[][] = [];
    for (let i = 0; i < order.length; ) {
      const end = Math.max(i + 1, batchEnd(order, i, small));
      units.push(order.slice(i, end));
      i = end;
    }
    await limit(units, FILES_IN_FLIGHT, async (unit) => {
      if (unit.length === 1 && !small(unit[0])) return sendEntry(unit[0], targetsOf(unit[0]));
      const rest = await sendSmallFiles(
        unit.map((entry) => ({ entry, targets: targetsOf(entry) })),
        batchContext,
      );
      for (const { entry, targets } of rest) await sendEntry(entry, targets);
    });
    deltasComputed += counts.deltasComputed;
    destinationFiles += counts.destinationFiles;
    sourceReads += counts.sourceReads;

    await limit([...live], parallel, (run) => guarded(run, () => run.finish()));

    if (staged) {
      // Phase two: every destination has staged (or failed to). A destination with any failure is
      // left as it was; with all-or-none, one failure anywhere means no destination commits.
      // The before-commit hook runs once a destination has staged everything.
      await limit(runs, parallel, async (run) => {
        if (live.has(run) && run.summary.ok) await hook(run, 'before-commit', options.beforeCommit);
      });
      const ready = runs.filter((run) => live.has(run) && run.summary.ok);
      const everyone = ready.length === options.destinations.length;
      const commitNow = options.commit === 'all-or-none' ? (everyone ? ready : []) : ready;
      await limit(runs, parallel, async (run) => {
        if (!live.has(run)) return;
        const apply = commitNow.includes(run);
        await guarded(run, async () => {
          try {
            if (releaseId !== undefined) {
              if (apply) await run.client.releaseSwitch(releaseId, releaseOptions?.keep);
              else await run.client.releaseDiscard(releaseId);
            } else if (apply) await run.client.commitStage();
            else await run.client.abortStage();
            committed.set(run.name, apply);
            if (apply) await hook(run, 'after-commit', options.afterCommit);
            if (!apply && run.summary.ok) {
              recordFailure(run.summary, run.name, '', Object.assign(new Error('not committed: another destination failed (all-or-none)'), { code: 'ABORTED' }), emit);
            }
          } catch (error) {
            committed.set(run.name, false);
            run.fail('', error);
          }
        });
      });
    }
  } else {
    // -H: which links would be made is each agent's to say.
    await limit([...live], parallel, (run) => guarded(run, () => run.hardLinks()));
  }
  if (!staged && !options.dryRun) await limit([...live], parallel, async (run) => void (await hook(run, 'after-commit', options.afterCommit)));
  if (options.sessions) {
    // Healthy sessions stay open for the next run; a failed one is replaced then.
    for (const run of runs) if (!live.has(run) || run.client.closed) options.sessions.drop(run.name);
  } else {
    await Promise.all([...live].map((run) => run.client.close()));
    await Promise.all([...opened.values()].map((destination) => destination.close()));
  }

  for (const run of runs) run.summary.stats = run.transferStats(tree, before.get(run.name));
  const elapsed = performance.now() - started;
  const destinations = options.destinations.map((name) => {
    const summary = results.get(name)!;
    summary.durationMs = elapsed;
    emit({ type: 'summary', destination: name, result: summary });
    return { destination: name, ok: summary.ok, ...(staged ? { committed: committed.get(name) ?? false } : {}), summary };
  });
  return {
    ok: destinations.every((d) => d.ok),
    destinations,
    ...(releaseId !== undefined ? { release: releaseId } : {}),
    files,
    deltasComputed,
    destinationFiles,
    sourceReads,
    durationMs: elapsed,
  };
}

/**
 * Signatures from every destination that has a basis, all with one seed; destinations whose
 * signature bytes are equal have the same basis (to the strength of the strong sums, and the
 * whole-file hash checks the result) and form one group. Destinations lacking the file form the
 * 'new' group.
 */
async function groupByBasis(
  entry: SourceEntry,
  targets: Target[],
  seed: bigint,
  onError: (target: Target, error: unknown) => void,
): Promise<Group[]> {
  const fresh: Target[] = [];
  const byDigest = new Map<string, { targets: Target[]; bytes: Uint8Array }>();
  await Promise.all(
    targets.map(async (t) => {
      if (!hasBasis(t.change)) {
        fresh.push(t);
        return;
      }
      try {
        const bytes = await t.run.client.signature(entry.path, seed);
        const digest = createHash('sha256').update(bytes).digest('hex');
        const group = byDigest.get(digest) ?? { targets: [], bytes };
        group.targets.push(t);
        byDigest.set(digest, group);
      } catch (error) {
        onError(t, error);
      }
    }),
  );
  const groups: Group[] = [];
  for (const { targets: members, bytes } of byDigest.values()) {
    const sig = decodeSignature(bytes);
    if (sig.format !== 'native' || sig.seed !== seed) {
      for (const t of members) onError(t, new ProtocolError('BAD_MESSAGE', `signature for ${entry.path} is not native with our seed`, {}));
      continue;
    }
    groups.push({ targets: members, basis: 'shared', index: indexSignature(sig) });
  }
  if (fresh.length > 0) groups.push({ targets: fresh, basis: 'new', index: undefined });
  return groups;
}

/**
 * Reads the file once, feeding every group's delta into its spool. The file's size and mtime, as the
 * caller took them (`before`), are compared with those after the read and with what the caller
 * expects; if it changed meanwhile (while signatures were gathered, or during the read),
 * the deltas are thrown away and undefined returned, so the caller reads again. So every destination
 * receives the same bytes, from one read of a file that held still.
 */
function readOnce(
  entry: SourceEntry,
  groups: Group[],
  before: { size: number; mtimeMs: number },
): { group: Group; spool: Spool; stats: DeltaStats }[] | undefined {
  const prepared = groups.map((group) => ({
    group,
    // A new file's delta is its bytes: a LITERAL per chunk read, nothing to match. One delta for the
    // group: its END carries XXH3-128 only if every destination of the group takes it.
    builder: group.index
      ? createDelta(group.index, { expectedLength: before.size, fileHash: groupFileHash(group) })
      : new LiteralDeltaStream(groupFileHash(group)),
    spool: new Spool(),
  }));
  try {
    for (const chunk of readChunks(entry.local, before.size)) {
      for (const p of prepared) p.spool.push(p.builder.update(chunk));
    }
    for (const p of prepared) p.spool.push(p.builder.final());
  } catch (error) {
    for (const p of prepared) p.spool.dispose();
    throw error;
  }
  const after = statOf(entry.local);
  const steady = before.size === after.size && before.mtimeMs === after.mtimeMs && after.size === entry.size && after.mtimeMs === entry.mtimeMs;
  if (steady && prepared.every((p) => p.builder.stats.targetLength === entry.size)) {
    return prepared.map((p) => ({ group: p.group, spool: p.spool, stats: p.builder.stats }));
  }
  for (const p of prepared) p.spool.dispose();
  return undefined;
}

/** The whole-file hash of a group's delta, which every destination of the group receives. */
function groupFileHash(group: Group): FileHashKind {
  return deltaFileHash(group.targets.map((t) => t.run.client));
}

function statOf(path: string): { size: number; mtimeMs: number } {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    return { size: st.size, mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** Release ids sort by time, to the millisecond: 20261123T130501123Z-3f2a. */
export function newReleaseId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`;
}

const TRANSIENT = new Set(['CONNECT', 'TIMEOUT', 'CLOSED', 'IO', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** Retries a connection after transient failures (not authentication or host keys), with backoff. */
async function withRetries<T>(attempt: () => Promise<T>, retries: number): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (n >= retries || typeof code !== 'string' || !TRANSIENT.has(code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** n));
    }
  }
}

/** Runs `work` over `items`, at most `n` at a time. */
async function limit<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}
