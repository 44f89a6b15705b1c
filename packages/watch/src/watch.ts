/**
 * Continuous replication: watch the source tree, gather changes for a debounce window, and run the
 * fan-out on the subtrees that changed, to every destination that is up. The first sync, a rescan
 * (events may have been lost, or the periodic one) and a destination's catch-up are full syncs of
 * the current state; there is no queue of old events to replay.
 */
import { lstatSync } from 'node:fs';
import { fanout, SessionPool, type DestinationResult, type FanoutEvent, type FanoutOptions, type FanoutResult } from '@deltacast/fanout';
import { buildFilter, type FilterRule } from '@deltacast/transport';
import { DestinationTracker, type DestinationStatus } from './destinations.js';
import { coveringScopes, SourceLayout } from './scopes.js';
import { exactPattern, findUnsettled, liftMissing } from './settle.js';
import { TreeWatcher, type WatchSignal } from './tree-watcher.js';

export interface WatchOptions extends Omit<FanoutOptions, 'onEvent' | 'paths' | 'dryRun' | 'delete'> {
  /** Debounce window: a batch runs this long after the first change it holds. Default 1000 ms. */
  delay?: number;
  /** A file is sent once quiet this long (no event, mtime at least this old). Default 500 ms, or `delay` if shorter. */
  settle?: number;
  /** A file still changing after this long is sent as it is (read consistently, or reported). Default 30 s. */
  settleTimeout?: number;
  /** A full rescan this often, besides those after lost events (0: none). Default 0. */
  rescanInterval?: number;
  /** Delete at the destinations what was deleted at the source. Default true (a mirror). */
  delete?: boolean;
  /** First retry of a failed destination after this long, doubling up to `retryMax`. Defaults 1 s and 60 s. */
  retryMin?: number;
  retryMax?: number;
  /** Events in one event-loop turn taken as a possible inotify overflow (default: from the kernel's limit). */
  overflowThreshold?: number;
  onEvent?: (event: WatchEvent) => void;
}

export type BatchReason = 'initial' | 'changes' | 'rescan' | 'catch-up' | 'retry';

export type WatchEvent =
  | (FanoutEvent & { batch: number })
  | { type: 'watching'; source: string; destinations: string[]; directories: number }
  | { type: 'batch'; batch: number; reason: BatchReason; full: boolean; paths: number; deferred: number; destinations: string[] }
  | {
      type: 'batch-done';
      batch: number;
      reason: BatchReason;
      ok: boolean;
      files: number;
      deltasComputed: number;
      destinationFiles: number;
      /** Files held back because they were still being written; they follow in a later batch. */
      deferred: number;
      durationMs: number;
      results: { destination: string; ok: boolean; committed?: boolean; created: number; updated: number; deleted: number; sentBytes: number; errors: number }[];
    }
  /** Files held back from a batch (at most MAX_LISTED of them named). */
  | { type: 'deferred'; count: number; paths: string[]; reason: 'still being written' }
  | { type: 'rescan'; reason: string; degraded: boolean }
  | { type: 'destination-down'; destination: string; code: string; message: string; retryInMs: number }
  | { type: 'destination-up'; destination: string }
  /**
   * The --max-delete limit stopped deletions at a destination that took the rest of the run: it stays
   * up and is not caught up (a catch-up would delete up to the limit again); later runs that cover
   * the skipped entries meet the limit again.
   */
  | { type: 'deletions-held'; destination: string; message: string }
  | { type: 'watch-error'; code: string; message: string; retryInMs: number };

export interface WatchStatus {
  source: string;
  destinations: DestinationStatus[];
  /** Changed paths waiting for the next batch (including files not settled yet). */
  pending: number;
  /** A full rescan is due (events were lost, or the periodic rescan). */
  rescanDue: boolean;
  running: boolean;
  batches: number;
  lastBatch?: { batch: number; reason: BatchReason; ok: boolean; files: number; durationMs: number; finishedAt: number };
  /** Some directories could not be watched: changes there are found by rescans only. */
  degraded: boolean;
}

export interface Watch {
  status(): WatchStatus;
  /** Resolves once nothing is pending or running (destinations waiting for a retry aside). */
  idle(): Promise<void>;
  /** Stops watching; resolves when the batch in progress has finished. */
  close(): Promise<void>;
}

const DEFAULT_DELAY = 1000;
const DEFAULT_SETTLE = 500;
const DEFAULT_SETTLE_TIMEOUT = 30_000;
/** SSH keepalive interval of the kept sessions (as ServerAliveInterval 15). */
const KEEPALIVE_MS = 15_000;
/** Subtrees in one batch beyond which the batch syncs the whole tree instead. */
const MAX_SCOPES = 20_000;
/** Paths named in one 'deferred' event. */
const MAX_LISTED = 1000;
/** While some directories are unwatched, rescans run at least this often. */
const DEGRADED_RESCAN = 60_000;

/**
 * Starts watching `source` and replicating it to `destinations`. Resolves once the watcher is in place
 * and the first full sync has run (whatever its outcome: destinations that failed are retried).
 */
export async function watch(options: WatchOptions): Promise<Watch> {
  const replicator = new Replicator(options);
  await replicator.start();
  return {
    status: () => replicator.status(),
    idle: () => replicator.idle(),
    close: () => replicator.close(),
  };
}

class Replicator {
  private readonly layout: SourceLayout;
  private readonly delay: number;
  private readonly settleMs: number;
  private readonly settleTimeout: number;
  private readonly tracker: DestinationTracker;
  /** Agent sessions kept open between batches (each holds its destination's lock while watching). */
  private readonly sessions = new SessionPool();
  private watcher: TreeWatcher | undefined;
  private excludes: (wire: string, isDirectory: boolean) => boolean = () => false;

  /** Wire path -> time of its last event. */
  private pending = new Map<string, number>();
  /** Wire path -> when it was first held back as unsettled. */
  private readonly heldSince = new Map<string, number>();
  private firstPendingAt: number | undefined;
  private wakeAt: number | undefined;
  private rescanDue = false;
  private degraded = false;
  private batchRunning: Promise<void> | undefined;
  private catchUpRunning: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  /** Periodic rescans while some directories are not watched. */
  private degradedTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private batches = 0;
  private lastBatch: WatchStatus['lastBatch'];
  private failedRuns = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WatchOptions) {
    if (options.destinations.length === 0) throw new Error('watch needs at least one destination');
    this.layout = new SourceLayout(options.source);
    this.delay = Math.max(0, options.delay ?? DEFAULT_DELAY);
    // A shorter window than the default settle time asks for lower latency: settling follows it.
    this.settleMs = Math.max(0, options.settle ?? Math.min(DEFAULT_SETTLE, this.delay));
    this.settleTimeout = Math.max(this.settleMs, options.settleTimeout ?? DEFAULT_SETTLE_TIMEOUT);
    this.tracker = new DestinationTracker(options.destinations, options.retryMin ?? 1000, options.retryMax ?? 60_000);
  }

  private emit(event: WatchEvent): void {
    this.options.onEvent?.(event);
  }

  async start(): Promise<void> {
    const st = lstatSync(this.layout.directory);
    if (!st.isDirectory()) throw Object.assign(new Error(`${this.options.source} is not a directory: watch replicates a directory tree`), { code: 'NOT_A_DIRECTORY' });
    const filter = await buildFilter({ filters: this.options.filters, excludeFrom: this.options.excludeFrom });
    this.excludes = (wire, isDirectory) => filter.excludes(wire, isDirectory);
    // The watcher is in place before the first scan, so nothing that changes during it is missed.
    this.watcher = new TreeWatcher(
      { root: this.layout.directory, excludes: (relative, isDirectory) => filter.excludes(this.layout.wireOf(relative), isDirectory), overflowThreshold: this.options.overflowThreshold },
      (signal) => this.onSignal(signal),
    );
    await this.watcher.start();
    this.emit({ type: 'watching', source: this.options.source, destinations: this.options.destinations, directories: this.watcher.watchedDirectories });
    if (this.options.rescanInterval) {
      this.rescanTimer = setInterval(() => this.requestRescan(), this.options.rescanInterval);
      this.rescanTimer.unref();
    }
    await this.startCatchUp(this.options.destinations, 'initial');
  }

  private onSignal(signal: WatchSignal): void {
    if (this.closed) return;
    if (signal.type === 'rescan') {
      this.emit({ type: 'rescan', reason: signal.reason, degraded: signal.degraded });
      if (signal.degraded && !this.degraded) {
        this.degraded = true;
        if (!this.rescanTimer) {
          this.degradedTimer = setInterval(() => this.requestRescan(), DEGRADED_RESCAN);
          this.degradedTimer.unref();
        }
      } else if (!signal.degraded && this.degraded) {
        // Every directory is watched again: events suffice.
        this.degraded = false;
        if (this.degradedTimer) clearInterval(this.degradedTimer);
        this.degradedTimer = undefined;
      }
      this.requestRescan();
      return;
    }
    const now = Date.now();
    this.pending.set(this.layout.wireOf(signal.path), now);
    this.firstPendingAt ??= now;
    this.schedule();
  }

  private requestRescan(): void {
    this.rescanDue = true;
    this.firstPendingAt ??= Date.now();
    this.schedule();
  }

  /** Arms the timer for the next thing due: a batch, a held-back file's re-check, or a retry. */
  private schedule(): void {
    if (this.closed) return;
    let at: number | undefined;
    if (!this.batchRunning) {
      if (this.firstPendingAt !== undefined) at = this.firstPendingAt + this.delay;
      if (this.wakeAt !== undefined) at = at === undefined ? this.wakeAt : Math.min(at, this.wakeAt);
    }
    const retry = this.catchUpRunning ? undefined : this.tracker.nextRetry();
    if (retry !== undefined) at = at === undefined ? retry : Math.min(at, retry);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (at !== undefined) this.timer = setTimeout(() => this.tick(), Math.max(0, at - Date.now()));
    this.notifyIdle();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = Date.now();
    if (!this.catchUpRunning) {
      const due = this.tracker.due(now);
      if (due.length > 0) this.startCatchUp(due, 'catch-up');
    }
    const batchDue =
      !this.batchRunning &&
      ((this.firstPendingAt !== undefined && now >= this.firstPendingAt + this.delay) || (this.wakeAt !== undefined && now >= this.wakeAt));
    if (batchDue) {
      // Cleared in a later microtask, so even a batch that finds nothing to do is recorded first.
      const run = this.runBatch();
      this.batchRunning = run;
      void run.finally(() => {
        this.batchRunning = undefined;
        this.schedule();
      });
    }
    this.schedule();
  }

  private startCatchUp(destinations: string[], reason: 'initial' | 'catch-up'): Promise<void> {
    const run = this.catchUp(destinations, reason).catch((error: unknown) => {
      const e = error as { code?: string; message?: string };
      const retryInMs = Math.max(...destinations.map((name) => this.tracker.down(name, Date.now(), { code: e.code ?? 'FAILED', message: e.message ?? String(error) })));
      this.emit({ type: 'watch-error', code: e.code ?? 'FAILED', message: e.message ?? String(error), retryInMs });
    });
    this.catchUpRunning = run;
    void run.finally(() => {
      this.catchUpRunning = undefined;
      this.schedule();
    });
    return run;
  }

  /** One batch: the changed subtrees, minus files still being written, to every destination that is up. */
  private async runBatch(): Promise<void> {
    try {
      const now = Date.now();
      const taken = this.pending;
      const full = this.rescanDue;
      this.pending = new Map();
      this.firstPendingAt = undefined;
      this.wakeAt = undefined;
      this.rescanDue = false;

      let scopes = full ? [this.layout.top] : coveringScopes(liftMissing([...taken.keys()], this.layout));
      // So many separate subtrees cost more to list one by one than the whole tree at once.
      if (scopes.length > MAX_SCOPES) scopes = [this.layout.top];
      if (scopes.length === 0) return;
      const { unsettled, wakeAt } = findUnsettled(scopes, {
        layout: this.layout,
        now,
        settleMs: this.settleMs,
        lastEvent: (wire) => taken.get(wire),
        excludes: this.excludes,
      });
      const held: string[] = [];
      for (const wire of unsettled) {
        const since = this.heldSince.get(wire) ?? now;
        if (now - since >= this.settleTimeout || exactPattern(wire) === undefined) continue; // sent as it is
        this.heldSince.set(wire, since);
        held.push(wire);
        this.pending.set(wire, taken.get(wire) ?? now);
      }
      if (held.length > 0) this.emit({ type: 'deferred', count: held.length, paths: held.slice(0, MAX_LISTED), reason: 'still being written' });
      if (wakeAt !== undefined && held.length > 0) this.wakeAt = Math.min(wakeAt, now + this.settleTimeout);
      const heldSet = new Set(held);
      const active = scopes.filter((s) => !heldSet.has(s));
      for (const [wire] of taken) if (!heldSet.has(wire)) this.heldSince.delete(wire);
      if (active.length === 0) return;

      const up = this.tracker.inState('up');
      const away = this.tracker.names.filter((n) => !up.includes(n));
      this.tracker.noteMissed(away, full ? undefined : active);
      if (up.length === 0) return;
      const result = await this.run(full ? 'rescan' : 'changes', up, full ? undefined : active, held);
      if (result === undefined) {
        // The run itself failed (the source is unreadable): everything comes back for a later try,
        // when run() set wakeAt (with backoff) unless new changes come first.
        for (const wire of active) this.pending.set(wire, now);
        if (full) this.rescanDue = true;
        return;
      }
      const aborted = this.settle(result);
      if (aborted.length > 0) {
        // Not committed only because another destination failed (all-or-none): the batch is redone
        // without the one that went down.
        for (const wire of active) this.pending.set(wire, now);
        if (full) this.rescanDue = true;
        this.firstPendingAt ??= Date.now();
      }
    } catch (error) {
      this.emit({ type: 'watch-error', code: (error as { code?: string }).code ?? 'FAILED', message: (error as Error).message ?? String(error), retryInMs: this.delay });
      this.requestRescan();
    }
  }

  /** A full sync to destinations that start out, or come back: the current state, not old events. */
  private async catchUp(destinations: string[], reason: 'initial' | 'catch-up'): Promise<void> {
    this.tracker.startCatchUp(destinations);
    const result = await this.run(reason, destinations, undefined, []);
    if (result === undefined) {
      for (const name of destinations) this.tracker.down(name, Date.now(), { code: 'SOURCE', message: 'the source could not be read' });
      return;
    }
    this.settle(result);
  }

  /**
   * Applies a run's per-destination outcomes: failures go down (retried later); successes of a
   * catch-up come back up, with the paths that changed meanwhile queued. Returns the destinations
   * that were fine but not committed because another failed (all-or-none).
   */
  private settle(result: FanoutResult): string[] {
    const now = Date.now();
    const aborted: string[] = [];
    for (const d of result.destinations) {
      if (d.ok) {
        this.arrived(d.destination, now);
        continue;
      }
      const catchingUp = this.tracker.status().find((x) => x.destination === d.destination)?.state === 'catching-up';
      if (d.committed === undefined && onlyMaxDelete(d)) {
        // Everything else arrived (file by file): the limit is the one failure, and retrying would
        // only delete up to the limit again, run after run. Reported, and left to the next runs.
        this.arrived(d.destination, now);
        this.emit({ type: 'deletions-held', destination: d.destination, message: d.summary.errors[0].message });
        continue;
      }
      if (onlyAborted(d)) {
        // Fine, but not committed because another destination failed (all-or-none): redone at once
        // without the one that went down.
        if (catchingUp) this.tracker.retrySoon(d.destination, now);
        else aborted.push(d.destination);
        continue;
      }
      const error = d.summary.errors[0] ?? { code: 'FAILED', message: 'failed' };
      const retryInMs = this.tracker.down(d.destination, now, { code: error.code, message: error.message });
      this.emit({ type: 'destination-down', destination: d.destination, code: error.code, message: error.message, retryInMs });
    }
    return aborted;
  }

  /** A run reached `name`: a catch-up brings it back up (with the paths that changed meanwhile queued). */
  private arrived(name: string, now: number): void {
    if (this.tracker.status().find((s) => s.destination === name)?.state !== 'catching-up') {
      this.tracker.synced(name, now);
      return;
    }
    const missed = this.tracker.up(name, now);
    this.emit({ type: 'destination-up', destination: name });
    if (missed === 'all') this.requestRescan();
    else if (missed.size > 0) {
      for (const wire of missed) this.pending.set(wire, now);
      this.firstPendingAt ??= now;
    }
  }

  /** One fan-out; undefined when it could not run at all (then retried after a backoff). */
  private async run(reason: BatchReason, destinations: string[], paths: string[] | undefined, held: string[]): Promise<FanoutResult | undefined> {
    const batch = ++this.batches;
    const started = performance.now();
    this.emit({ type: 'batch', batch, reason, full: paths === undefined, paths: paths?.length ?? 0, deferred: held.length, destinations });
    // Files still being written are excluded from this batch: never sent, never deleted; they come later.
    const holdRules: FilterRule[] = held.map((wire) => ({ action: 'exclude', pattern: exactPattern(wire)! }));
    let result: FanoutResult;
    try {
      result = await fanout({
        ...this.options,
        destinations,
        delete: this.options.delete ?? true,
        filters: [...holdRules, ...(this.options.filters ?? [])],
        paths,
        sessions: this.sessions,
        // Sessions stay open between batches: keepalives find a peer that vanished while idle.
        ssh: { keepaliveIntervalMs: KEEPALIVE_MS, ...this.options.ssh },
        onEvent: (event) => this.emit({ ...event, batch }),
      });
    } catch (error) {
      const retryInMs = Math.min(60_000, 1000 * 2 ** Math.min(6, this.failedRuns++));
      const e = error as { code?: string; message?: string };
      this.emit({ type: 'watch-error', code: e.code ?? 'FAILED', message: e.message ?? String(error), retryInMs });
      this.lastBatch = { batch, reason, ok: false, files: 0, durationMs: performance.now() - started, finishedAt: Date.now() };
      this.wakeAt = Date.now() + retryInMs;
      return undefined;
    }
    this.failedRuns = 0;
    const durationMs = performance.now() - started;
    this.lastBatch = { batch, reason, ok: result.ok, files: result.files, durationMs, finishedAt: Date.now() };
    this.emit({
      type: 'batch-done',
      batch,
      reason,
      ok: result.ok,
      files: result.files,
      deltasComputed: result.deltasComputed,
      destinationFiles: result.destinationFiles,
      deferred: held.length,
      durationMs,
      results: result.destinations.map((d) => ({
        destination: d.destination,
        ok: d.ok,
        ...(d.committed !== undefined ? { committed: d.committed } : {}),
        created: d.summary.created,
        updated: d.summary.updated,
        deleted: d.summary.deleted,
        sentBytes: d.summary.sentBytes,
        errors: d.summary.errors.length,
      })),
    });
    return result;
  }

  status(): WatchStatus {
    return {
      source: this.options.source,
      destinations: this.tracker.status(),
      pending: this.pending.size,
      rescanDue: this.rescanDue,
      running: this.batchRunning !== undefined || this.catchUpRunning !== undefined,
      batches: this.batches,
      ...(this.lastBatch ? { lastBatch: this.lastBatch } : {}),
      degraded: this.degraded,
    };
  }

  private isIdle(): boolean {
    return this.pending.size === 0 && !this.rescanDue && !this.batchRunning && !this.catchUpRunning;
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  idle(): Promise<void> {
    if (this.isIdle() || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.degradedTimer) clearInterval(this.degradedTimer);
    await Promise.all([this.batchRunning, this.catchUpRunning]);
    await this.sessions.close();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** True when a destination's only failure is that the --max-delete limit stopped deletions. */
function onlyMaxDelete(d: DestinationResult): boolean {
  return d.summary.errors.length > 0 && d.summary.errors.every((e) => e.code === 'MAX_DELETE');
}

/** True when a destination's only failure is that another destination failed (all-or-none). */
function onlyAborted(d: DestinationResult): boolean {
  return d.summary.errors.length > 0 && d.summary.errors.every((e) => e.code === 'ABORTED');
}
