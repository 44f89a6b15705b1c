#!/usr/bin/env node
/**
 * Renders the --json reports of micro.mjs, compare-rdiff.mjs, compare-rsync.mjs, compare-fanout.mjs, compare-watch.mjs and
 * delta-memory.mjs as Markdown for
 * RESULTS.md, headed by the machine (lscpu model, cores, memory), Node, rdiff and the commit.
 *
 *   node render-results.mjs [--title TEXT] REPORT.json...
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { formatMarkdownTable, formatSize, repoRoot } from './lib/run.mjs';
import { watchTable } from './lib/watch-table.mjs';

const { values: opts, positionals } = parseArgs({
  options: { title: { type: 'string', default: 'Results' } },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error('usage: node render-results.mjs [--title TEXT] REPORT.json...');
  process.exit(2);
}

const output = (argv) => {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
};
const lscpu = output(['lscpu']) ?? '';
const field = (name) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(lscpu)?.[1].trim();
const reports = positionals.map((path) => JSON.parse(readFileSync(path, 'utf8')));
const commit = output(['git', '-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
const dirty = output(['git', '-C', repoRoot, 'status', '--porcelain', '--', 'packages/core/src', 'packages/cli/src']);

const lines = [`## ${opts.title}`, ''];
lines.push(
  `- Machine: ${field('Model name') ?? cpus()[0]?.model ?? 'unknown'}, ${field('CPU\\(s\\)') ?? cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory`,
  `- Node ${reports[0].node}; ${reports.find((r) => r.rdiff)?.rdiff ?? output(['rdiff', '--version'])?.split('\n')[0] ?? 'rdiff not found'}`,
  `- Date: ${reports.map((r) => r.date.slice(0, 16).replace('T', ' ')).sort()[0]} UTC; commit ${commit ?? 'unknown'}${dirty ? ' (core/cli sources modified in the working tree)' : ''}`,
  '',
);

for (const report of reports) {
  lines.push(`### ${report.benchmark}`, '', `\`\`\`sh\n${report.command}\n\`\`\``, '');
  if (report.loadAverage !== undefined) lines.push(`Load average (1 min) at the start: ${report.loadAverage.toFixed(2)}.`, '');
  if (report.benchmark === 'micro') {
    lines.push(`${formatSize(report.size)} inputs, median latency.`, '');
    lines.push(
      formatMarkdownTable(
        ['case', 'MB/s', 'ms/op', '±%', 'samples'],
        report.results.map((r) => [r.name, r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(1), r.medianMs.toFixed(2), r.rme.toFixed(1), r.samples]),
      ),
    );
  } else if (report.benchmark === 'compare-rdiff') {
    lines.push(
      `${formatSize(report.size)} basis, ${report.edits} scattered edits, median of ${report.repeat} runs; deltacast = ${report.deltacast === 'cli' ? 'the built CLI' : 'the core-library fallback'}; peak RSS via ${report.rssMethod}.`,
      '',
    );
    lines.push(
      formatMarkdownTable(
        ['case', 'rdiff MB/s', 'deltacast MB/s', 'ratio', 'rdiff RSS MB', 'deltacast RSS MB', 'target', 'met'],
        report.cases.map((t) => [
          t.case,
          t.rdiffMBps.toFixed(1),
          t.deltacastMBps.toFixed(1),
          `${t.ratio.toFixed(2)}x`,
          t.rdiffRssMB.toFixed(1),
          t.deltacastRssMB.toFixed(1),
          t.target === null ? 'info' : `>= ${t.target.toFixed(1)}x`,
          t.met === null ? '' : t.met ? 'yes' : 'no',
        ]),
      ),
    );
    if (report.startupMs) {
      lines.push(
        '',
        `Fixed cost per process (signature of an empty file): rdiff ${report.startupMs.rdiff.toFixed(1)} ms, deltacast ${report.startupMs.deltacast.toFixed(1)} ms.`,
      );
    }
    lines.push('', `Verified: ${report.verified.join('; ')}.`);
  } else if (report.benchmark === 'compare-rsync') {
    const scope = [
      report.bigSize !== null && `${formatSize(report.bigSize)} file with ${report.edits} edits`,
      report.files !== null && `tree of ${report.files} files, ${formatSize(report.treeSize)}`,
    ].filter(Boolean);
    lines.push(
      `${scope.join('; ')}; median of ${report.repeat} runs; ${report.rsync}; ${report.ssh}; remote agent: ${report.remoteCommand ?? 'auto'}; peak RSS of the client via ${report.rssMethod}.`,
      '',
    );
    const wire = report.wire;
    lines.push(
      formatMarkdownTable(
        ['case', 'rsync s', 'deltacast s', 'ratio', 'rsync sent', 'deltacast sent', ...(wire ? ['rsync wire up', 'deltacast wire up'] : []), 'rsync RSS MB', 'deltacast RSS MB', 'target', 'met'],
        report.cases.map((t) => [
          t.case,
          (t.rsyncMs / 1000).toFixed(2),
          (t.deltacastMs / 1000).toFixed(2),
          `${t.ratio.toFixed(2)}x`,
          formatSize(t.rsyncSent),
          formatSize(t.deltacastSent),
          ...(wire ? [formatSize(t.rsyncWireUp), formatSize(t.deltacastWireUp)] : []),
          t.rsyncRssMB.toFixed(1),
          t.deltacastRssMB.toFixed(1),
          t.target === null ? 'info' : `>= ${t.target.time.toFixed(1)}x${t.target.bytes === null ? '' : `, bytes <= ${t.target.bytes.toFixed(1)}x`}`,
          t.met === null ? '' : t.met ? 'yes' : 'no',
        ]),
      ),
    );
    lines.push(
      '',
      "Ratio = rsync time / deltacast time (> 1: deltacast faster). Sent: rsync's \"Total bytes sent\" against deltacast's file-data bytes" +
        (wire ? '; wire up: client-to-server bytes on the TCP connection (the bytes target uses these).' : ' (the bytes target uses these).'),
      '',
      `Verified: ${report.verified.join('; ')}.`,
    );
  } else if (report.benchmark === 'compare-fanout') {
    lines.push(
      `Tree of ${report.files} files, ${formatSize(report.treeSize)}, ${report.changedFiles} changed, to ${report.destinations} destinations on one sshd; median of ${report.repeat} runs; ${report.rsync}; ${report.ssh}; remote agent: ${report.remoteCommand}${report.parallel ? `; --parallel ${report.parallel}` : ''}.`,
      '',
    );
    lines.push(
      formatMarkdownTable(
        ['case', 'wall s', 'origin CPU s', 'wall ratio', 'CPU ratio', 'server CPU s', 'target', 'met'],
        report.cases.map((t) => [
          t.case,
          (t.wallMs / 1000).toFixed(2),
          (t.cpuMs / 1000).toFixed(2),
          `${t.wallRatio.toFixed(2)}x`,
          `${t.cpuRatio.toFixed(2)}x`,
          (t.serverCpuMs / 1000).toFixed(2),
          t.target === null ? 'info' : `CPU <= ${t.target.cpu.toFixed(1)}x, wall <= ${t.target.wall.toFixed(1)}x`,
          t.met === null ? '' : t.met ? 'yes' : 'no',
        ]),
      ),
    );
    const f = report.fanout;
    lines.push(
      '',
      'Ratios = case / deltacast to 1 destination. Origin CPU = user + system time of the client processes (rsync with the ssh it starts; deltacast does SSH in-process). ' +
        "Server CPU = the same for the server side (sshd sessions, agents or rsync --server), on this machine's cores too; not in the ratios.",
      `Fan-out: ${f.files} changed files, ${f.deltasComputed} deltas computed for ${f.destinationFiles} destination-files, ${f.sourceReads} source reads.`,
      '',
      `Verified: ${report.verified.join('; ')}.`,
    );
  } else if (report.benchmark === 'compare-watch') {
    lines.push(
      `Tree of ${report.files} files, ${formatSize(report.treeSize)}, to ${report.destinations} destinations on one sshd; delay ${report.delaySeconds} s; ${report.landings} files of ${formatSize(report.landSize.min)}-${formatSize(report.landSize.max)} landed ${report.intervalSeconds.min}-${report.intervalSeconds.max} s apart, then a burst of ${report.burst}; ${report.idleSeconds} s idle; destinations polled every ${report.pollMs} ms. ` +
        `lsyncd ${report.lsyncd ?? 'not run'}; ${report.rsync}; ${report.ssh}; remote agent: ${report.remoteCommand}.`,
      '',
    );
    const table = watchTable(report.tools, report.ratios, report.burst);
    lines.push(formatMarkdownTable(table.header, table.rows));
    lines.push(
      '',
      `Latency = from the rename into the source to the file whole on the last of the ${report.destinations} destinations. CPU = user + system time of the watcher process and its children (lsyncd: the rsync and ssh it starts); active = the landings and the burst. Idle CPU from the scheduler's per-thread nanoseconds (/proc/PID/task/TID/schedstat); idle ticks = utime + stime + cutime + cstime from /proc/PID/stat, in 10 ms steps (${(600 / report.idleSeconds).toFixed(0)} ms/min over ${report.idleSeconds} s). Server CPU = the sshd sessions (deltacast's kept agents), on this machine's cores too.`,
      `Work done: ${report.tools.map((t) => `${t.tool} ${t.active.runs} ${t.runsUnit}`).join('; ')}.`,
    );
    for (const s of report.skipped) lines.push(`Skipped ${s.tool}: ${s.reason}.`);
    lines.push('', `Verified: ${report.verified.join('; ')}.`);
  } else if (report.benchmark === 'delta-memory') {
    lines.push(`${formatSize(report.size)} files, ${report.edits} scattered edits, ${report.format} format; peak RSS via ${report.rssMethod}.`, '');
    lines.push(
      formatMarkdownTable(
        ['step', 'input', 'MB/s', 'wall s', 'peak RSS MB', 'output'],
        report.steps.map((s) => [s.step, formatSize(s.bytes), s.mbPerSec.toFixed(1), (s.wallMs / 1000).toFixed(2), s.maxRssMB.toFixed(1), formatSize(s.outputBytes)]),
      ),
    );
    const delta = report.steps.find((s) => s.step === 'delta');
    lines.push(
      '',
      `Delta peak RSS ${delta.maxRssMB.toFixed(1)} MB, target <= ${report.targetRssMB} MB: ${report.met ? 'met' : 'not met'}. ${report.verified ? 'Patched output verified equal to the new file.' : 'Not verified.'}`,
    );
  } else {
    throw new Error(`unknown report ${report.benchmark}`);
  }
  lines.push('');
}
process.stdout.write(`${lines.join('\n')}`);
