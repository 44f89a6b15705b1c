/**
 * The work on one destination, phase by phase, shared by `sync` (one destination) and the fan-out
 * (many): structure first (deletes, then directories parents-first), files by whatever strategy the
 * caller has, then symlinks, attribute-only changes and directory attributes deepest-first. Per-path
 * failures are recorded in the summary and the run goes on; a failure of the session itself
 * (protocol error, closed connection) is thrown. --max-delete is applied here, so that sync and
 * fan-out alike skip the same deletions and report them once per destination (MAX_DELETE).
 */
import type { AgentClient, RootEntry } from './agent-client.js';
import { MAX_LINKS, MAX_MKDIRS, MAX_SETATTRS, MKDIRS_CAPABILITY, SETATTRS_CAPABILITY } from './batch.js';
import { ProtocolError, RemoteError, TransportError, type TransportErrorCode } from './errors.js';
import type { SyncEvent, SyncSummary, TransferStats } from './events.js';
import { byDepth, depth, limitDeletes, type Change, type Plan } from './plan.js';
import { basisDirs, linkPlanned } from './link-dest.js';
import { DELETING, hardLinkCode, itemCode, itemizesChange } from './itemize.js';
import type { EntryType } from './messages.js';
import type { SourceEntry, SourceTree } from './tree.js';

export interface RunOptions {
  owner?: boolean;
  dryRun?: boolean;
  /** At most this many extraneous entries deleted (see TransferOptions.maxDelete). */
  maxDelete?: number;
  /** Extraneous entries are deleted once everything else arrived (see TransferOptions.deleteAfter). */
  deleteAfter?: boolean;
  /** --link-dest, --copy-dest directories (see TransferOptions; the plan's `linkDest` files are linked or copied from them). */
  linkDest?: string[];
  copyDest?: string[];
  compareDest?: string[];
  onEvent?: (event: SyncEvent) => void;
}

export function emptySummary(dryRun: boolean): SyncSummary {
  return {
    ok: true,
    dryRun,
    created: 0,
    updated: 0,
    unchanged: 0,
    skipped: 0,
    deleted: 0,
    hardlinks: 0,
    linked: 0,
    copied: 0,
    removed: 0,
    directories: 0,
    symlinks: 0,
    attributes: 0,
    literalBytes: 0,
    matchedBytes: 0,
    sentBytes: 0,
    totalBytes: 0,
    errors: [],
    durationMs: 0,
  };
}

/** A failure that ends the whole session rather than one path. */
export function isSessionFailure(error: unknown): boolean {
  return error instanceof ProtocolError || (error instanceof TransportError && (error.code === 'CLOSED' || error.code === 'IO'));
}

/** Puts a failure in a summary (path '' for the destination as a whole) and reports it. */
export function recordFailure(
  summary: SyncSummary,
  destination: string,
  path: string,
  error: unknown,
  onEvent?: (event: SyncEvent) => void,
): void {
  const e = error as { code?: unknown; message?: string };
  const code = typeof e.code === 'string' ? e.code : 'ERROR';
  const message = e.message ?? String(error);
  summary.ok = false;
  summary.errors.push({ path, code, message });
  onEvent?.({ type: 'error', destination, path, code, message });
}

/** Header bytes the paths of one `mkdirs` may take (the frame header cap is 64 KiB). */
const MKDIRS_HEADER_BYTES = 40 * 1024;

/** Header bytes the paths of one `setattrs` may take (the frame header cap is 64 KiB). */
const SETATTRS_HEADER_BYTES = 40 * 1024;

/** Header bytes the paths of one `links` may take. */
const LINKS_HEADER_BYTES = 40 * 1024;

/**
 * `items` in order, cut into requests of at most `max` entries whose headers stay under `budget`
 * bytes by `bytesOf`'s bound per entry (one entry alone may go over: the caps leave room for it).
 */
function* headerBatches<T>(items: readonly T[], max: number, budget: number, bytesOf: (item: T) => number): Generator<T[]> {
  for (let i = 0; i < items.length; ) {
    let end = i;
    let header = 0;
    while (end < items.length && end - i < max) {
      const entry = bytesOf(items[end]);
      if (end > i && header + entry > budget) break;
      header += entry;
      end++;
    }
    yield items.slice(i, end);
    i = end;
  }
}

export class DestinationRun {
  readonly summary: SyncSummary;
  /** The plan's deletes that this run makes: all of them, or those --max-delete leaves. */
  readonly deletes: Change[];
  /** Extraneous entries --max-delete leaves in place. */
  readonly skippedDeletes: number;
  private readonly failedDirs = new Set<string>();

  constructor(
    readonly name: string,
    readonly client: AgentClient,
    readonly plan: Plan,
    private readonly options: RunOptions,
    /** The destination is on another host (itemized as files sent, `<`, not received, `>`). */
    private readonly remote = false,
  ) {
    const max = options.maxDelete;
    if (max !== undefined && !(Number.isSafeInteger(max) && max >= 0)) {
      throw new TransportError('INVALID_OPTION', `maxDelete must be a whole number from 0 up, not ${max}`, { maxDelete: max });
    }
    this.summary = emptySummary(options.dryRun ?? false);
    this.summary.unchanged = plan.unchanged;
    this.summary.skipped = plan.skipped;
    ({ deletes: this.deletes, skipped: this.skippedDeletes } = limitDeletes(plan.deletes, max));
  }

  emit(event: SyncEvent): void {
    this.options.onEvent?.(event);
  }

  /**
   * An item event per change, in the order of the run's phases: the root's own (`./`), deletions (a
   * directory's contents first), new directories, files, symlinks, attribute changes, then directories
   * whose own attributes differ (rsync's `.d..t......`; those only reset after their contents changed
   * are not items).
   */
  private announceItems(): void {
    const plan = this.plan;
    const context = { ...plan.compared, remote: this.remote };
    const item = (change: Change, itemized: string | undefined, path = change.path, entryType = (change.source ?? change.remote!).type as EntryType) =>
      this.emit({ type: 'item', destination: this.name, kind: change.kind, path, entryType, itemized, linkTarget: change.kind === 'delete' ? undefined : change.source?.linkTarget });
    const dirItem = (change: Change) => {
      if (!change.remote) return;
      const code = itemCode(change, context);
      if (code !== undefined && itemizesChange(code)) item(change, code);
    };
    // The root first, as rsync lists `./` (deepest first puts it last among the directories).
    const root = plan.dirAttrs.at(-1)?.path === '' ? plan.dirAttrs.at(-1) : undefined;
    if (root) dirItem(root);
    for (const change of this.deletes) {
      for (const r of change.contents ?? []) if (r.type !== 'p') item(change, DELETING, r.path, r.type);
      item(change, itemCode(change, context), change.path, change.remote!.type as EntryType);
    }
    for (const change of [...plan.mkdirs, ...plan.files, ...plan.symlinks, ...plan.attrs]) item(change, itemCode(change, context));
    for (const change of plan.dirAttrs) if (change !== root) dirItem(change);
  }

  /** Records a failed path; rethrows failures of the session itself. */
  fail(path: string, error: unknown): void {
    if (isSessionFailure(error)) throw error;
    recordFailure(this.summary, this.name, path, error, this.options.onEvent);
  }

  /** Whether a path lies under a directory that could not be created. */
  underFailed(path: string): boolean {
    if (this.failedDirs.size === 0) return false;
    for (let p = path; p.includes('/'); ) {
      p = p.slice(0, p.lastIndexOf('/'));
      if (this.failedDirs.has(p)) return true;
    }
    return false;
  }

  /**
   * Reports what the scan left out: a skip event for each entry that is no error, and a failed path
   * for each that is (a symlink -L cannot follow), which makes the run not ok, as rsync's exit 23.
   */
  reportScan(tree: SourceTree): void {
    for (const s of tree.skipped) this.emit({ type: 'skip', destination: this.name, path: s.path, reason: s.reason });
    for (const e of tree.errors) recordFailure(this.summary, this.name, e.path, new TransportError(e.code as TransportErrorCode, e.message, { path: e.path }), this.options.onEvent);
  }

  /**
   * The run's --stats figures (events.ts TransferStats) for `tree`; the session's bytes as they
   * stand, less `before` (what a kept session had carried before this run began).
   */
  transferStats(tree: SourceTree, before = { sent: 0, received: 0 }): TransferStats {
    const source = { files: 0, dirs: tree.root ? 1 : 0, links: 0, bytes: 0 };
    for (const e of tree.entries) {
      if (e.type === 'f') {
        source.files++;
        source.bytes += e.size;
      } else if (e.type === 'd') {
        source.dirs++;
      } else if (e.type === 'l') {
        source.links++;
        source.bytes += Buffer.byteLength(e.linkTarget ?? '');
      }
    }
    const deleted = { files: 0, dirs: 0, links: 0 };
    const count = (type: string | undefined) => {
      if (type === 'f') deleted.files++;
      else if (type === 'd') deleted.dirs++;
      else if (type === 'l') deleted.links++;
    };
    for (const c of this.deletes) {
      count(c.remote?.type);
      for (const r of c.contents ?? []) count(r.type);
    }
    return {
      source,
      deleted,
      createdLinks: this.plan.symlinks.filter((c) => c.remote === undefined).length,
      createdDirs: this.plan.mkdirs.length + (this.plan.dirAttrs.some((c) => c.path === '' && (c.remote as RootEntry | undefined)?.made === true) ? 1 : 0),
      sessionSent: this.client.bytesSent - before.sent,
      sessionReceived: this.client.bytesReceived - before.received,
    };
  }

  /** Announces the plan (start and item events); in a dry run, counts it as the result. */
  announce(): void {
    const plan = this.plan;
    this.emit({
      type: 'start',
      destination: this.name,
      files: plan.files.length,
      bytes: plan.files.reduce((n, c) => n + (c.source?.size ?? 0), 0),
      dryRun: this.summary.dryRun,
    });
    if (this.options.onEvent) this.announceItems();
    if (!this.summary.dryRun) return;
    const s = this.summary;
    s.deleted = this.deletes.length;
    this.reportSkippedDeletes();
    s.directories = plan.mkdirs.length;
    s.created = plan.files.filter((c) => c.kind === 'create').length;
    s.updated = plan.files.filter((c) => c.kind === 'update').length;
    if (basisDirs(this.options)?.how === 'copy') s.copied = plan.linkDest?.length ?? 0;
    else s.linked = plan.linkDest?.length ?? 0;
    s.symlinks = plan.symlinks.length;
    s.attributes = plan.attrs.length;
    s.totalBytes = plan.files.reduce((n, c) => n + (c.source?.size ?? 0), 0);
  }

  /**
   * One MAX_DELETE error for the destination (path '') when --max-delete left extraneous entries:
   * the run is not ok, though everything else was done.
   */
  private reportSkippedDeletes(): void {
    if (this.skippedDeletes === 0) return;
    const max = this.options.maxDelete!;
    const extraneous = this.plan.deletes.filter((c) => c.extraneous).length;
    const message = `the --max-delete limit stopped deletions: ${this.skippedDeletes} of ${extraneous} extraneous entries skipped (at most ${max} per run)`;
    recordFailure(this.summary, this.name, '', new TransportError('MAX_DELETE', message, { skipped: this.skippedDeletes, max }), this.options.onEvent);
  }

  /**
   * Deletes (those --max-delete allows), then directories parents first: in `mkdirs` batches to an
   * agent that takes them, else one depth at a time (each depth in parallel).
   */
  async prepare(): Promise<void> {
    const { client } = this;
    // Entries replaced by one of another type go first, to make room; extraneous ones too, unless
    // they wait for the end (deleteAfter).
    await this.remove(this.options.deleteAfter ? this.deletes.filter((c) => !c.extraneous) : this.deletes);
    this.reportSkippedDeletes();
    if (client.info?.capabilities.includes(MKDIRS_CAPABILITY)) await this.mkdirsInOrder();
    else await this.mkdirsByDepth();
    await this.linkFromDest();
  }

  /**
   * --link-dest: the plan's files a link-dest directory holds, linked from there now that their
   * directories exist; one that could not be linked after all (the directory changed since the
   * plan) joins the files to send.
   */
  private async linkFromDest(): Promise<void> {
    const planned = this.plan.linkDest ?? [];
    const others = (this.plan.basisDest ?? []).filter((c) => !this.underFailed(c.path));
    if (planned.length === 0 && others.length === 0) return;
    const ready = planned.filter((c) => !this.underFailed(c.path));
    const basis = basisDirs(this.options)!;
    const unlinked = await linkPlanned(this.client, ready, others, basis);
    if (basis.how === 'copy') this.summary.copied += ready.length - unlinked.length;
    else this.summary.linked += ready.length - unlinked.length;
    this.plan.files.push(...unlinked);
  }

  /** New directories one depth at a time (an agent without `mkdirs`). */
  private async mkdirsByDepth(): Promise<void> {
    const { client, plan, summary } = this;
    const levels = new Map<number, Change[]>();
    for (const c of plan.mkdirs) {
      const d = depth(c.path);
      levels.set(d, [...(levels.get(d) ?? []), c]);
    }
    for (const d of [...levels.keys()].sort((a, b) => a - b)) {
      await Promise.all(
        levels.get(d)!.map((c) => {
          if (this.underFailed(c.path)) {
            this.failedDirs.add(c.path);
            return undefined;
          }
          return client.mkdir(c.path, c.source!.mode).then(
            () => void summary.directories++,
            (error) => {
              this.failedDirs.add(c.path);
              this.fail(c.path, error);
            },
          );
        }),
      );
    }
  }

  /**
   * The plan's directories, parents first, in as few `mkdirs` as the header allows, one after
   * another. A directory under one that failed is not sent: it fails with its parent, unreported,
   * as when made one depth at a time.
   */
  private async mkdirsInOrder(): Promise<void> {
    const dirs = byDepth(this.plan.mkdirs, 1);
    for (let i = 0; i < dirs.length; ) {
      const batch: Change[] = [];
      let header = 0;
      for (; i < dirs.length && batch.length < MAX_MKDIRS; i++) {
        const c = dirs[i];
        if (this.underFailed(c.path)) {
          this.failedDirs.add(c.path);
          continue;
        }
        // The path's UTF-8 bytes; the rest of an entry is under 16 bytes.
        const entry = Buffer.byteLength(c.path) + 16;
        if (batch.length > 0 && header + entry > MKDIRS_HEADER_BYTES) break;
        header += entry;
        batch.push(c);
      }
      if (batch.length === 0) continue;
      let results;
      try {
        results = await this.client.mkdirBatch(batch.map((c) => ({ path: c.path, mode: c.source!.mode })));
      } catch (error) {
        for (const c of batch) {
          this.failedDirs.add(c.path);
          this.fail(c.path, error); // rethrows when the session failed
        }
        continue;
      }
      results.forEach((r, k) => {
        const c = batch[k];
        if (r.ok) {
          this.summary.directories++;
          return;
        }
        // Under a directory of this batch that failed: failed with it, as above.
        const quiet = this.underFailed(c.path);
        this.failedDirs.add(c.path);
        if (!quiet) this.fail(c.path, new RemoteError(r.code, `mkdir ${c.path}: ${r.message}`, { code: r.code, path: c.path }));
      });
    }
  }

  /** The files this destination should receive (those under a failed directory are skipped). */
  files(): Change[] {
    return this.plan.files.filter((c) => !this.underFailed(c.path));
  }

  /** Counts a file that arrived, and reports it. */
  fileDone(change: Change, stats: { size: number; literalBytes: number; matchedBytes: number; sentBytes: number }): void {
    const s = this.summary;
    if (change.kind === 'create') s.created++;
    else s.updated++;
    s.literalBytes += stats.literalBytes;
    s.matchedBytes += stats.matchedBytes;
    s.sentBytes += stats.sentBytes;
    s.totalBytes += stats.size;
    this.emit({ type: 'file', destination: this.name, kind: change.kind === 'create' ? 'create' : 'update', path: change.path, ...stats });
  }

  /**
   * -H: each other name of a file linked to the name the file went under, in `links` requests (with
   * a dry run, only asked whether it would be), itemized as the replies say: rsync's
   * `hf+++++++++ path => first` for a link made anew; one that already was is counted unchanged.
   * Names whose first name failed, or under a directory that failed, are left out.
   */
  async hardLinks(): Promise<void> {
    const { client, plan, summary } = this;
    if (plan.hardlinks.length === 0) return;
    const failed = new Set(summary.errors.map((e) => e.path));
    const changes = plan.hardlinks.filter((c) => !this.underFailed(c.path) && !failed.has(c.linkTo!));
    const context = { ...plan.compared, remote: this.remote };
    // At most three UTF-8 bytes per UTF-16 unit, two paths an entry.
    for (const batch of headerBatches(changes, MAX_LINKS, LINKS_HEADER_BYTES, (c) => (c.path.length + c.linkTo!.length) * 3 + 16)) {
      let results;
      try {
        results = await client.linkBatch(
          batch.map((c) => ({ path: c.path, target: c.linkTo! })),
          summary.dryRun,
        );
      } catch (error) {
        for (const c of batch) this.fail(c.path, error); // rethrows when the session failed
        continue;
      }
      results.forEach((r, k) => {
        const c = batch[k];
        if (!r.ok) {
          this.fail(c.path, new RemoteError(r.code, `link ${c.path} => ${c.linkTo}: ${r.message}`, { code: r.code, path: c.path }));
        } else if (r.size === 0) {
          summary.unchanged++;
        } else {
          summary.hardlinks++;
          // 1: the link replaced a file there; 2: the path was free.
          const itemized = hardLinkCode(c, r.size === 1, context);
          this.emit({ type: 'item', destination: this.name, kind: 'hardlink', path: c.path, entryType: 'f', itemized, linkTarget: c.linkTo });
        }
      });
    }
  }

  private async remove(deletes: readonly Change[]): Promise<void> {
    const { client, summary } = this;
    await Promise.all(deletes.map((c) => client.remove(c.path).then(() => void summary.deleted++, (e) => this.fail(c.path, e))));
  }

  /**
   * Hard links, symlinks, extraneous entries with deleteAfter, attribute-only changes, then
   * directory attributes deepest first.
   */
  async finish(): Promise<void> {
    const { client, plan, summary, options } = this;
    await this.hardLinks();
    await Promise.all(
      plan.symlinks
        .filter((c) => !this.underFailed(c.path))
        .map((c) => {
          const s = c.source!;
          return client
            .symlink(c.path, s.linkTarget!, s.mtimeMs, options.owner ? s.uid : undefined, options.owner ? s.gid : undefined)
            .then(() => void summary.symlinks++, (e) => this.fail(c.path, e));
        }),
    );
    if (options.deleteAfter) await this.remove(this.deletes.filter((c) => c.extraneous));
    // After every change inside: creating entries moves a directory's mtime. Deepest first (a
    // parent's new mode may shut its children's path).
    const dirAttrs = plan.dirAttrs.filter((c) => !this.failedDirs.has(c.path) && !this.underFailed(c.path));
    if (client.info?.capabilities.includes(SETATTRS_CAPABILITY)) {
      // In as few requests as the header allows, applied by the agent in this order.
      await this.setattrsInOrder(plan.attrs, () => void summary.attributes++);
      await this.setattrsInOrder(dirAttrs, () => {});
      return;
    }
    await Promise.all(
      plan.attrs.map((c) => client.setattr(c.path, attributesOf(c.source!, options)).then(() => void summary.attributes++, (e) => this.fail(c.path, e))),
    );
    // An older agent: one depth at a time, each depth in parallel, one round trip per level rather
    // than per directory.
    for (let i = 0; i < dirAttrs.length; ) {
      const d = depth(dirAttrs[i].path);
      let end = i;
      while (end < dirAttrs.length && depth(dirAttrs[end].path) === d) end++;
      await Promise.all(dirAttrs.slice(i, end).map((c) => client.setattr(c.path, attributesOf(c.source!, options)).catch((e) => this.fail(c.path, e))));
      i = end;
    }
  }

  /** The attributes of `changes`, in this order, with `setattrs` requests one after another; `done` per success. */
  private async setattrsInOrder(changes: readonly Change[], done: () => void): Promise<void> {
    // At most three UTF-8 bytes per UTF-16 unit; the rest of an entry is under 48 bytes.
    for (const batch of headerBatches(changes, MAX_SETATTRS, SETATTRS_HEADER_BYTES, (c) => c.path.length * 3 + 48)) {
      let results;
      try {
        results = await this.client.setattrBatch(
          batch.map((c) => {
            const a = attributesOf(c.source!, this.options);
            return { path: c.path, mode: a.mode, mtime: a.mtimeMs, uid: a.uid, gid: a.gid };
          }),
        );
      } catch (error) {
        for (const c of batch) this.fail(c.path, error); // rethrows when the session failed
        continue;
      }
      results.forEach((r, k) => {
        if (r.ok) done();
        else this.fail(batch[k].path, new RemoteError(r.code, `setattr ${batch[k].path}: ${r.message}`, { code: r.code, path: batch[k].path }));
      });
    }
  }
}

export function attributesOf(s: SourceEntry, options: { owner?: boolean }) {
  return { mode: s.mode, mtimeMs: s.mtimeMs, uid: options.owner ? s.uid : undefined, gid: options.owner ? s.gid : undefined };
}
