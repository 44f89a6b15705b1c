/**
 * `deltacast watch SRC DEST...`: keep every destination identical to a source tree that keeps
 * changing. Changes are gathered for a short window and each batch is one fan-out of the subtrees
 * that changed; a destination that is down is retried and caught up with one full sync.
 */
import type { FilterRule } from '@deltacast/transport';
import { watch, type Watch, type WatchEvent, type WatchStatus } from '@deltacast/watch';
import { Command, Option } from 'commander';
import type { Writable } from 'node:stream';
import { stoppable, type MainIO } from '../io.js';
import { formatBytes, seconds } from '../options.js';
import { itemize, printable, type ItemStyle } from '../sync-output.js';
import { addTransferOptions, checkLocalSource, checkTransferFlags, fanoutOptions, transferOptions, type TransferFlags } from './transfer-options.js';

interface WatchCommandOptions extends TransferFlags {
  delete: boolean;
  delay: number;
  settle?: number;
  settleTimeout: number;
  rescanInterval?: number;
  verbose: boolean;
  itemizeChanges: boolean;
  status?: boolean;
}

const WATCH_HELP = `
Runs until interrupted (SIGINT or SIGTERM), then finishes the batch in progress and exits 0.
Each batch is a fan-out (see sync): one delta per distinct basis, the same commit modes.
A destination that fails is retried with backoff (1 s doubling to 60 s) and, when it is back,
caught up with one full sync of the current state.
With --max-delete NUM, each batch and each catch-up deletes at most NUM extraneous entries per
destination; one whose deletions the limit stopped (MAX_DELETE) but that took the rest stays up and
is reported, not caught up again: the skipped entries wait for a later run that covers them.

Source: a directory; "dir/" replicates its contents, "dir" the directory itself (as rsync).`;

export function watchCommand(io: MainIO): Command {
  const rules: FilterRule[] = [];
  const command = new Command('watch')
    .summary('replicate a source tree to destinations continuously, as it changes')
    .description('Watch SRC and keep every DEST identical to it: changes are batched, settled and sent as one fan-out per batch.')
    .argument('<src>', 'source directory')
    .argument('<dest...>', 'destinations: path, host:path, user@host:path or ssh://user@host:port/path')
    .addOption(new Option('--delay <seconds>', 'gather changes this long before sending a batch').argParser(seconds(0, 3600)).default(1000, '1'))
    .addOption(new Option('--settle <seconds>', 'send a file once it has not changed for this long (default 0.5, or --delay if shorter)').argParser(seconds(0, 3600)))
    .addOption(
      new Option('--settle-timeout <seconds>', 'send a file that keeps changing after this long anyway (read consistently, or reported)')
        .argParser(seconds(0, 86_400))
        .default(30_000, '30'),
    )
    .addOption(new Option('--rescan-interval <seconds>', 'also compare the whole tree this often (default: only when events may have been lost)').argParser(seconds(1, 86_400 * 7)))
    .option('--no-delete', 'keep destination files deleted at the source (default: deletions replicate)')
    .option('-v, --verbose', 'itemize every change', false)
    .option('--itemize-changes', 'itemize every change as rsync -i does (-i is the ssh identity here)', false)
    .option('--no-status', 'no live status line even on a terminal');
  addTransferOptions(command, rules);
  command.addHelpText('after', WATCH_HELP);
  return command.action(async (source: string, destinations: string[], opts: WatchCommandOptions) => {
    checkTransferFlags(opts);
    checkLocalSource(source, { pulls: false });
    stoppable.active = true;
    const live = opts.status !== false && !opts.json && Boolean((io.stderr as { isTTY?: boolean }).isTTY) ? new StatusLine(io.stderr) : undefined;
    const log = (line: string) => {
      live?.clear();
      io.stdout.write(`${line}\n`);
      live?.draw();
    };
    let current: Watch | undefined;
    const handle = await watch({
      source,
      destinations,
      ...transferOptions(rules, opts),
      ...fanoutOptions(opts),
      delete: opts.delete || opts.deleteExcluded || opts.deleteAfter,
      delay: opts.delay,
      settle: opts.settle,
      settleTimeout: opts.settleTimeout,
      rescanInterval: opts.rescanInterval,
      onEvent: (event) => {
        if (opts.json) io.stdout.write(`${JSON.stringify(event)}\n`);
        else describe(event, opts.itemizeChanges ? 'rsync' : opts.verbose ? 'short' : undefined, log);
        if (live && current) live.update(current.status());
      },
    });
    current = handle;
    live?.update(handle.status());
    const ticker = live ? setInterval(() => live.update(handle.status()), 1000) : undefined;
    await new Promise<void>((resolve) => {
      if (io.signal?.aborted) resolve();
      io.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    if (ticker) clearInterval(ticker);
    await handle.close();
    stoppable.active = false;
    live?.stop();
    if (!opts.json) io.stdout.write(`${stamp()} stopped\n`);
  });
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function stamp(): string {
  return `[${new Date().toTimeString().slice(0, 8)}]`;
}

/** One line per batch, destination change and rescan (itemized changes too with -v or -i: `items`). */
function describe(event: WatchEvent, items: ItemStyle | undefined, log: (line: string) => void): void {
  switch (event.type) {
    case 'watching':
      log(`${stamp()} watching ${printable(event.source)} (${plural(event.directories, 'directory', 'directories')}) for ${plural(event.destinations.length, 'destination', 'destinations')}`);
      break;
    case 'batch-done': {
      const ok = event.results.filter((r) => r.ok).length;
      const sent = event.results.reduce((n, r) => n + r.sentBytes, 0);
      // Each destination made the same changes when all went well; the largest counts say what the batch carried.
      const most = (key: 'created' | 'updated' | 'deleted') => Math.max(0, ...event.results.map((r) => r[key]));
      const what = event.reason === 'changes' ? `batch ${event.batch}` : `batch ${event.batch} (${event.reason})`;
      const held = event.deferred > 0 ? `; ${event.deferred} still being written, held back` : '';
      log(
        `${stamp()} ${what}: ${most('created')} new, ${most('updated')} updated, ${most('deleted')} deleted; ${ok}/${event.results.length} destinations; ` +
          `${event.deltasComputed} deltas for ${event.destinationFiles} destination-files, sent ${formatBytes(sent)} in ${(event.durationMs / 1000).toFixed(2)} s${held}`,
      );
      break;
    }
    case 'destination-down':
      log(`${stamp()} ${printable(event.destination)}: DOWN (${event.code}: ${event.message}); retry in ${Math.ceil(event.retryInMs / 1000)} s`);
      break;
    case 'destination-up':
      log(`${stamp()} ${printable(event.destination)}: up to date`);
      break;
    case 'deletions-held':
      log(`${stamp()} ${printable(event.destination)}: ${event.message}`);
      break;
    case 'rescan':
      log(`${stamp()} rescan: ${event.reason}${event.degraded ? ' (some directories are not watched: rescanning periodically)' : ''}`);
      break;
    case 'watch-error':
      log(`${stamp()} ${event.code}: ${event.message}; trying again in ${Math.ceil(event.retryInMs / 1000)} s`);
      break;
    case 'error':
      if (event.path !== '') log(`${stamp()} ${printable(event.destination)}: ${printable(event.path)}: ${event.code}: ${event.message}`);
      break;
    case 'item': {
      const line = items ? itemize(event, items) : undefined;
      if (line !== undefined) log(`${stamp()} ${printable(event.destination)}: ${line}`);
      break;
    }
    default:
      break;
  }
}

/** The one-line live status on a terminal: who is up, what is pending, the last batch. */
class StatusLine {
  private text = '';
  private lastDraw = 0;
  private pendingDraw: NodeJS.Timeout | undefined;

  constructor(private readonly stream: Writable) {}

  update(status: WatchStatus): void {
    const up = status.destinations.filter((d) => d.state === 'up').length;
    const parts = [`${up}/${status.destinations.length} up`];
    for (const d of status.destinations) {
      if (d.state === 'down') parts.push(`${printable(d.destination)} down, retry in ${Math.max(0, Math.ceil(((d.retryAt ?? 0) - Date.now()) / 1000))} s`);
      else if (d.state === 'catching-up') parts.push(`${printable(d.destination)} catching up`);
    }
    parts.push(status.running ? 'syncing' : status.pending > 0 || status.rescanDue ? `${status.pending} pending` : 'idle');
    if (status.lastBatch) {
      const at = new Date(status.lastBatch.finishedAt).toTimeString().slice(0, 8);
      parts.push(`last batch ${at}: ${plural(status.lastBatch.files, 'file', 'files')} in ${(status.lastBatch.durationMs / 1000).toFixed(2)} s${status.lastBatch.ok ? '' : ' (with failures)'}`);
    }
    if (status.degraded) parts.push('degraded: periodic rescans');
    const text = `watching · ${parts.join(' · ')}`;
    if (text === this.text) return;
    this.text = text;
    // Events come in bursts (one per file and destination): the line is redrawn ten times a second at most.
    if (this.pendingDraw) return;
    const wait = Math.max(0, this.lastDraw + 100 - Date.now());
    this.pendingDraw = setTimeout(() => {
      this.pendingDraw = undefined;
      this.draw();
    }, wait);
    this.pendingDraw.unref();
  }

  stop(): void {
    if (this.pendingDraw) clearTimeout(this.pendingDraw);
    this.pendingDraw = undefined;
    this.clear();
  }

  draw(): void {
    this.lastDraw = Date.now();
    // A terminal that does not say its width (0) gets a line of 120 columns at most.
    const width = (this.stream as { columns?: number }).columns || 120;
    if (this.text) this.stream.write(`\r\x1b[2K${this.text.slice(0, Math.max(10, width - 1))}`);
  }

  clear(): void {
    this.stream.write('\r\x1b[2K');
  }
}
