/**
 * `--stats`: a run's figures in rsync's words and layout, so that what reads rsync's output (a log
 * scraper, a backup report) reads ours. The lines are rsync 3.x's, numbers with thousands commas as
 * its default --human-readable level prints them; those deltacast has no figure for (the file
 * list's size and times) are left out rather than made up.
 */
import type { SyncSummary } from '@deltacast/transport';

const n = (value: number): string => Math.round(value).toLocaleString('en-US');

/** rsync's "6 (reg: 3, dir: 2, link: 1)", the parenthesis only for kinds that are there. */
function byKind(total: number, kinds: [string, number][]): string {
  const present = kinds.filter(([, count]) => count > 0);
  return present.length === 0 ? n(total) : `${n(total)} (${present.map(([kind, count]) => `${kind}: ${n(count)}`).join(', ')})`;
}

/**
 * The --stats block for `summary`. `pulled`: the run was a pull, whose figures the sender reported
 * from its side; rsync prints the side that ran the command, so sent and received change places.
 * Undefined when the run stopped before it had figures (no plan).
 */
export function statsLines(summary: SyncSummary, options: { pulled?: boolean } = {}): string[] | undefined {
  const stats = summary.stats;
  if (!stats) return undefined;
  const { source } = stats;
  const sent = options.pulled ? stats.sessionReceived : stats.sessionSent;
  const received = options.pulled ? stats.sessionSent : stats.sessionReceived;
  const seconds = Math.max(summary.durationMs / 1000, 0.001);
  const wire = sent + received;
  return [
    `Number of files: ${byKind(source.files + source.dirs + source.links, [
      ['reg', source.files],
      ['dir', source.dirs],
      ['link', source.links],
    ])}`,
    `Number of created files: ${byKind(summary.created + stats.createdDirs + stats.createdLinks, [
      ['reg', summary.created],
      ['dir', stats.createdDirs],
      ['link', stats.createdLinks],
    ])}`,
    `Number of deleted files: ${byKind(stats.deleted.files + stats.deleted.dirs + stats.deleted.links, [
      ['reg', stats.deleted.files],
      ['dir', stats.deleted.dirs],
      ['link', stats.deleted.links],
    ])}`,
    `Number of regular files transferred: ${n(summary.created + summary.updated)}`,
    `Total file size: ${n(source.bytes)} bytes`,
    `Total transferred file size: ${n(summary.totalBytes)} bytes`,
    `Literal data: ${n(summary.literalBytes)} bytes`,
    `Matched data: ${n(summary.matchedBytes)} bytes`,
    `Total bytes sent: ${n(sent)}`,
    `Total bytes received: ${n(received)}`,
    '',
    `sent ${n(sent)} bytes  received ${n(received)} bytes  ${(wire / seconds).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} bytes/sec`,
    `total size is ${n(source.bytes)}  speedup is ${(wire > 0 ? source.bytes / wire : 0).toFixed(2)}${summary.dryRun ? ' (DRY RUN)' : ''}`,
  ];
}
