/**
 * How a sync shows itself: NDJSON events for programs (--json), itemized changes (-v), a progress
 * bar for people on a TTY, and a closing summary line.
 */
import { LineWriter } from './line-writer.js';
import { statsLines } from './stats.js';
import type { SyncEvent, SyncSummary } from '@deltacast/transport';
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';
import { formatBytes } from './options.js';

export interface OutputOptions {
  json: boolean;
  /** --stats: rsync's figures after the summary line (stats.ts). */
  stats?: boolean;
  /** The run was a pull: its figures are the remote sender's (stats.ts swaps sent and received). */
  pulled?: boolean;
  /** Print each change: `items` decides how. */
  verbose: boolean;
  /** How changes are printed: 'short' (-v) or 'rsync' (-i, rsync's --itemize-changes codes). */
  items?: ItemStyle;
  /** Show a progress bar (stderr is a TTY and not --json). */
  progress: boolean;
}

/** Control characters as rsync prints them (`\#012` for a newline), so one change is one line. */
export function printable(path: string): string {
  return path.replace(/[\x00-\x1f\x7f]/g, (c) => `\\#${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

type ItemEvent = Extract<SyncEvent, { type: 'item' }>;

/** 'short': -v's three-character codes; 'rsync': -i's, rsync's --itemize-changes exactly. */
export type ItemStyle = 'short' | 'rsync';

/**
 * The line for a change, or undefined where the style has none: with 'rsync', rsync -i's line
 * (`<f.st...... path`, `*deleting   path`, a directory's path ending in `/`, ` -> target` after a
 * symlink); with 'short', `>f+` new, `>f.` changed, `.f` attributes only, ...
 */
export function itemize(event: ItemEvent, style: ItemStyle = 'short'): string | undefined {
  // The destination root is `./`, as rsync names it.
  const path = `${event.path === '' ? '.' : printable(event.path)}${event.entryType === 'd' ? '/' : ''}`;
  const arrow =
    event.linkTarget === undefined ? '' : event.kind === 'hardlink' ? ` => ${printable(event.linkTarget)}` : event.entryType === 'l' ? ` -> ${printable(event.linkTarget)}` : '';
  if (style === 'rsync') return event.itemized === undefined ? undefined : `${event.itemized.padEnd(11)} ${path}${arrow}`;
  switch (event.kind) {
    case 'create':
      return `>f+ ${path}`;
    case 'update':
      return `>f. ${path}`;
    case 'attrs':
      // The destination root, made by this run, has no mkdir of its own.
      if (event.itemized?.startsWith('cd')) return `cd+ ${path}`;
      return `.${event.entryType === 'd' ? 'd' : 'f'}  ${path}`;
    case 'mkdir':
      return `cd+ ${path}`;
    case 'symlink':
      return `cL+ ${path}${arrow}`;
    case 'delete':
      return `*deleting ${path}`;
    case 'hardlink':
      return `hf+ ${path}${arrow}`;
  }
}

export function summaryLine(s: SyncSummary): string {
  const parts = [
    `${s.created} created`,
    `${s.updated} updated`,
    `${s.deleted} deleted`,
    `${s.unchanged} unchanged`,
  ];
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  if (s.directories) parts.push(`${s.directories} directories`);
  if (s.symlinks) parts.push(`${s.symlinks} symlinks`);
  if (s.hardlinks) parts.push(`${s.hardlinks} hard links`);
  if (s.linked) parts.push(`${s.linked} linked from --link-dest`);
  if (s.copied) parts.push(`${s.copied} copied from --copy-dest`);
  if (s.removed) parts.push(`${s.removed} removed from the source`);
  const head = s.dryRun ? '(dry run) would change: ' : '';
  const data = s.dryRun
    ? `${formatBytes(s.totalBytes)} to check`
    : `sent ${formatBytes(s.sentBytes)} for ${formatBytes(s.totalBytes)} (${formatBytes(s.matchedBytes)} reused from the destination)`;
  const errors = s.errors.length ? `; ${s.errors.length} failed` : '';
  return `${head}${parts.join(', ')}; ${data} in ${(s.durationMs / 1000).toFixed(2)} s${errors}`;
}

/**
 * Returns the event listener, a `finish` that closes the bar and prints the summary, and `jsonLine`
 * for other NDJSON lines (they keep their place among the events').
 */
export function createSyncOutput(stdout: Writable, stderr: Writable, options: OutputOptions) {
  const json = new LineWriter(stdout);
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  let bytes = 0;
  let totalBytes = 0;
  const started = Date.now();
  /** Paths reported skipped: once, not once per destination. */
  const skipped = new Set<string>();
  const onEvent = (event: SyncEvent) => {
    if (options.json) {
      json.write(JSON.stringify(event));
      return;
    }
    if (event.type === 'skip') {
      if (skipped.has(event.path)) return;
      skipped.add(event.path);
      bar?.stop();
      stdout.write(`skipping ${printable(event.path)}: ${event.reason}\n`);
    } else if (event.type === 'item' && options.verbose) {
      const line = itemize(event, options.items);
      if (line === undefined) return;
      if (bar) bar.stop();
      stdout.write(`${line}\n`);
    } else if (event.type === 'error') {
      bar?.stop();
      stderr.write(`deltacast: sync: ${printable(event.path || event.destination)}: ${event.code}: ${printable(event.message)}\n`);
    } else if (event.type === 'start' && options.progress && !event.dryRun && event.files > 0) {
      totalBytes = event.bytes;
      bar = new cliProgress.SingleBar(
        {
          stream: stderr as NodeJS.WritableStream,
          format: ' {bar} {percentage}% | {files} files | {done}/{size} | {rate}/s | ETA {eta_formatted}',
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(1, totalBytes), 0, { files: `0/${event.files}`, done: '0 B', size: formatBytes(totalBytes), rate: '0 B' });
      (bar as unknown as { filesTotal: number }).filesTotal = event.files;
    } else if (event.type === 'file' && bar) {
      done++;
      bytes += event.size;
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      const filesTotal = (bar as unknown as { filesTotal: number }).filesTotal;
      bar.update(bytes, { files: `${done}/${filesTotal}`, done: formatBytes(bytes), rate: formatBytes(bytes / seconds) });
    }
  };
  const finish = (summary: SyncSummary | undefined) => {
    json.flush();
    bar?.stop();
    if (options.json || !summary) return;
    stdout.write(`${summaryLine(summary)}\n`);
    const stats = options.stats ? statsLines(summary, { pulled: options.pulled }) : undefined;
    if (stats) stdout.write(`\n${stats.join('\n')}\n`);
  };
  return { onEvent, finish, jsonLine: (value: unknown) => json.write(JSON.stringify(value)) };
}
