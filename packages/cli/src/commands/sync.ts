/**
 * `deltacast sync SRC DEST...`: a source tree to one destination, or to many at once (fan-out: the
 * source read once, one delta per distinct basis), locally or over SSH, the way rsync -a does.
 */
import { ConnectError, sync, TransportError, type FilterRule, type SyncSummary } from '@deltacast/transport';
import { EXIT_FAILED, UsageError } from '../errors.js';
import { missingFromSource, readFilesFrom } from '../files-from.js';
import { statSync } from 'node:fs';
import { Command } from 'commander';
import type { MainIO } from '../io.js';
import { createSyncOutput, itemize, printable, summaryLine, type ItemStyle } from '../sync-output.js';
import { statsLines } from '../stats.js';
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';
import { fanout, type FanoutEvent } from '@deltacast/fanout';
import { formatBytes } from '../options.js';
import { isRemoteSource, runPull } from './pull.js';
import { addTransferOptions, checkLocalSource, checkTransferFlags, fanoutOptions, transferOptions, type TransferFlags } from './transfer-options.js';

/**
 * rsync's codes for a partial transfer (some files failed) and for deletions --max-delete stopped;
 * 255 as ssh uses for connection failures.
 */
export const EXIT_PARTIAL = 23;
export const EXIT_MAX_DELETE = 25;
export const EXIT_CONNECT = 255;

export const SYNC_EXIT_CODES_HELP = `
Exit codes of sync:
  0    every change was made (on every destination)
  23   partial transfer: some paths, or some destinations, failed (each is reported); the rest arrived
  25   the --max-delete limit stopped deletions (MAX_DELETE, on each destination concerned) and
       nothing else failed; everything else was done (with --atomic tree, --all-or-none or --release,
       a destination over the limit is left as it was)
  255  could not connect, authenticate, verify the host key or start the agent (with several
       destinations: none could be reached)
  1    other failure; 2 usage error
Precedence: 2, 1, 255, 23, then 25 (as in rsync, any other failure outranks the --max-delete limit).

Source: "dir/" sends the contents of dir, "dir" sends dir itself (as rsync).
Destination: a local path, host:path, user@host:path or ssh://user@host:port/path.`;

interface SyncCommandOptions extends TransferFlags {
  dryRun: boolean;
  delete: boolean;
  verbose: boolean;
  itemizeChanges: boolean;
  filesFrom?: string;
  from0: boolean;
  stats: boolean;
  /** The run's scope, from --files-from (set by the action). */
  paths?: string[];
  progress?: boolean;
}

function syncOptions(rules: FilterRule[], opts: SyncCommandOptions) {
  return { ...transferOptions(rules, opts), delete: opts.delete || opts.deleteExcluded || opts.deleteAfter, dryRun: opts.dryRun, paths: opts.paths };
}

/** Changes are printed with -v, -i and in a dry run; -i prints them as rsync -i does. */
function itemOptions(opts: { verbose: boolean; itemizeChanges: boolean; dryRun?: boolean }): { verbose: boolean; items: ItemStyle } {
  return { verbose: opts.verbose || opts.itemizeChanges || opts.dryRun === true, items: opts.itemizeChanges ? 'rsync' : 'short' };
}

/** Several destinations: the fan-out, a line per destination, and one exit code for all. */
async function runFanout(io: MainIO, source: string, destinations: string[], rules: FilterRule[], opts: SyncCommandOptions): Promise<number> {
  const output = createSyncOutput(io.stdout, io.stderr, { json: opts.json, ...itemOptions(opts), progress: false });
  const lines = opts.progress !== false && !opts.json && Boolean((io.stderr as { isTTY?: boolean }).isTTY) ? new DestinationLines(io.stderr) : undefined;
  const result = await fanout({
    source,
    destinations,
    ...syncOptions(rules, opts),
    ...fanoutOptions(opts),
    onEvent: (event) => {
      lines?.onEvent(event);
      if (event.type === 'delta') {
        if (opts.json) output.jsonLine(event);
      } else if (event.type === 'item' && !opts.json) {
        // Several destinations: each itemized line says which one it is about.
        const { verbose, items } = itemOptions(opts);
        const line = verbose ? itemize(event, items) : undefined;
        if (line !== undefined) io.stdout.write(`${printable(event.destination)}: ${line}\n`);
      } else if (event.type !== 'summary' || opts.json) {
        output.onEvent(event);
      }
    },
  });
  lines?.stop();
  if (opts.json) {
    output.jsonLine({ type: 'fanout', ok: result.ok, release: result.release, files: result.files, deltasComputed: result.deltasComputed, destinationFiles: result.destinationFiles, sourceReads: result.sourceReads, durationMs: result.durationMs });
    output.finish(undefined);
  } else {
    for (const d of result.destinations) {
      const state = d.committed === undefined ? (d.ok ? 'ok' : 'FAILED') : d.committed ? 'committed' : 'NOT COMMITTED (left as it was)';
      io.stdout.write(`${d.destination}: ${state}; ${summaryLine(d.summary)}\n`);
      const stats = opts.stats ? statsLines(d.summary) : undefined;
      if (stats) io.stdout.write(`\n${stats.join('\n')}\n\n`);
    }
    if (result.release !== undefined) io.stdout.write(`release ${result.release}\n`);
    io.stdout.write(
      `${result.files} changed files: ${result.deltasComputed} deltas computed for ${result.destinationFiles} destination-files; ` +
        `each source file read ${result.sourceReads === result.files ? 'once' : `${result.sourceReads} times in all`}\n`,
    );
  }
  if (result.ok) return 0;
  const unreachable = result.destinations.every((d) => d.summary.errors.some((e) => e.path === '' && CONNECT_CODES.has(e.code)));
  return unreachable ? EXIT_CONNECT : failureExit(result.destinations.map((d) => d.summary));
}

/**
 * 25 when the only failures are deletions the --max-delete limit stopped (and the all-or-none
 * commits they called off elsewhere, ABORTED), else 23.
 */
export function failureExit(summaries: SyncSummary[]): number {
  const errors = summaries.flatMap((s) => s.errors);
  const limited = errors.some((e) => e.code === 'MAX_DELETE');
  return limited && errors.every((e) => e.code === 'MAX_DELETE' || e.code === 'ABORTED') ? EXIT_MAX_DELETE : EXIT_PARTIAL;
}

/**
 * A run that failed as a whole, reported with the host side named (the destination, or a pull's
 * source), as the fan-out names it: its exit code, 255 where it could not be reached, 1 where it
 * refused the session (LOCKED...) or broke off. Anything but a TransportError is thrown on.
 */
export function runFailure(io: MainIO, name: string, error: unknown): number {
  if (!(error instanceof TransportError)) throw error;
  io.stderr.write(`deltacast: sync: ${name}: ${error.code}: ${error.message}\n`);
  return error instanceof ConnectError ? EXIT_CONNECT : EXIT_FAILED;
}

const CONNECT_CODES = new Set(['CONNECT', 'AUTH', 'HOST_KEY_UNKNOWN', 'HOST_KEY_MISMATCH', 'NO_REMOTE_NODE', 'CONFIG']);

export function syncCommand(io: MainIO, setExitCode: (code: number) => void): Command {
  const rules: FilterRule[] = [];
  const command = new Command('sync')
    .summary('sync a source tree to a destination (local or over ssh)')
    .description('Make DEST identical to SRC (files, directories, symlinks, modes, mtimes), sending only deltas of changed files.')
    .argument('<src>', 'source file or directory')
    .argument('<dest...>', 'destinations: path, host:path, user@host:path or ssh://user@host:port/path')
    .option('-n, --dry-run', 'show what would change, change nothing', false)
    .option('--delete', 'delete destination files that are not in the source', false)
    .option('-v, --verbose', 'itemize every change', false)
    .option('--itemize-changes', "itemize every change as rsync -i does (e.g. <f.st...... for a file sent whose size and mtime changed); -i is the ssh identity here", false)
    .option('--files-from <file>', "send only these paths (one a line, relative to the source directory; - for stdin), as rsync's --files-from with -r: a listed directory goes with its contents, --delete deletes only inside what is listed")
    .option('--from0', '--files-from separates paths with NUL, not newlines', false)
    .option('--no-progress', 'no progress bar even on a terminal')
    .option('--stats', "after the summary, the run's figures as rsync --stats prints them (files by type, sizes, literal and matched data, bytes sent and received)", false);
  addTransferOptions(command, rules);
  command.addHelpText('after', SYNC_EXIT_CODES_HELP);
  return command.action(async (source: string, destinations: string[], opts: SyncCommandOptions) => {
    checkTransferFlags(opts);
    if (isRemoteSource(source)) {
      const refused = [
        [opts.atomic === 'tree', '--atomic tree'],
        [opts.allOrNone, '--all-or-none'],
        [opts.bestEffort, '--best-effort'],
        [opts.release, '--release'],
        [opts.beforeCommit !== undefined, '--before-commit'],
        [opts.afterCommit !== undefined, '--after-commit'],
      ].flatMap(([set, flag]) => (set ? [flag as string] : []));
      const output = { json: opts.json, stats: opts.stats, pulled: true, ...itemOptions(opts), progress: opts.progress !== false && !opts.json && Boolean((io.stderr as { isTTY?: boolean }).isTTY) };
      await runPull({ io, source, destinations, options: syncOptions(rules, opts), filesFrom: opts.filesFrom, from0: opts.from0, refused, output }, setExitCode);
      return;
    }
    checkLocalSource(source, { pulls: true });
    // --files-from: paths relative to the source directory (with or without its slash, as rsync);
    // a listed path the source lacks is reported and the run goes on, exit 23.
    let missing: string[] = [];
    if (opts.filesFrom !== undefined) {
      if (!statSync(source, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--files-from needs a source directory, not ${source}`);
      const listed = await readFilesFrom(opts.filesFrom, opts.from0, io.stdin);
      if (!source.endsWith('/')) source = `${source}/`;
      missing = missingFromSource(source, listed);
      opts.paths = listed.filter((p) => !missing.includes(p));
      for (const path of missing) io.stderr.write(`deltacast: sync: ${printable(path)}: NO_SUCH_FILE: listed in --files-from, not in the source\n`);
    }
    const partial = (code: number) => (missing.length > 0 && code === 0 ? EXIT_PARTIAL : code);
    if (opts.removeSourceFiles && (destinations.length > 1 || opts.atomic === 'tree' || opts.allOrNone || opts.release)) {
      throw new UsageError('--remove-source-files takes one destination, with --atomic file');
    }
    if (destinations.length > 1 || opts.atomic === 'tree' || opts.allOrNone || opts.release || opts.beforeCommit !== undefined || opts.afterCommit !== undefined) {
      setExitCode(partial(await runFanout(io, source, destinations, rules, opts)));
      return;
    }
    const destination = destinations[0];
    const output = createSyncOutput(io.stdout, io.stderr, {
      json: opts.json,
      stats: opts.stats,
      ...itemOptions(opts),
      progress: opts.progress !== false && !opts.json && Boolean((io.stderr as { isTTY?: boolean }).isTTY),
    });
    let summary: SyncSummary | undefined;
    try {
      summary = await sync({ source, destination, ...syncOptions(rules, opts), onEvent: output.onEvent });
    } catch (error) {
      output.finish(undefined);
      setExitCode(runFailure(io, destination, error));
      return;
    }
    output.finish(summary);
    setExitCode(partial(summary.ok ? 0 : failureExit([summary])));
  });
}

/** One progress line per destination on a terminal: files and bytes done of its own plan. */
class DestinationLines {
  private readonly bars: cliProgress.MultiBar;
  private readonly perDestination = new Map<string, { bar: cliProgress.SingleBar; files: number; total: number; bytes: number }>();

  constructor(stream: Writable) {
    this.bars = new cliProgress.MultiBar(
      { stream: stream as NodeJS.WritableStream, format: ' {bar} {percentage}% | {files} files | {done} | {name}', hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
  }

  onEvent(event: FanoutEvent): void {
    if (event.type === 'start' && !event.dryRun) {
      const bar = this.bars.create(Math.max(1, event.bytes), 0, { files: `0/${event.files}`, done: '0 B', name: printable(event.destination) });
      this.perDestination.set(event.destination, { bar, files: 0, total: event.files, bytes: 0 });
    } else if (event.type === 'file') {
      const d = this.perDestination.get(event.destination);
      if (!d) return;
      d.files++;
      d.bytes += event.size;
      d.bar.update(d.bytes, { files: `${d.files}/${d.total}`, done: formatBytes(d.bytes), name: printable(event.destination) });
    }
  }

  stop(): void {
    this.bars.stop();
  }
}
