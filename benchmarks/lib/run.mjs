/**
 * Running tools as separate processes and measuring them: wall time (Node's monotonic clock around
 * the spawn) and peak RSS (GNU time's %M when installed; otherwise the child reports its own
 * maxRSS if it is Node, or /proc/PID/status VmHWM is sampled until it exits).
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');
// The file the `deltacast` bin runs: the single-file bundle.
export const defaultCliPath = join(repoRoot, 'packages', 'cli', 'dist', 'deltacast.mjs');
const coreFallbackPath = join(here, 'core-cli.mjs');
const reportRssUrl = pathToFileURL(join(here, 'report-rss.mjs')).href;

/** Parses 1048576, 512K, 32M, 1G, 1.5G (binary units). */
export function parseSize(text) {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(String(text).trim());
  if (!match) throw new Error(`invalid size ${JSON.stringify(text)} (e.g. 1048576, 512K, 32M, 1G)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase()];
  return Math.round(Number(match[1]) * unit);
}

export function formatSize(bytes) {
  for (const [unit, scale] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]]) {
    if (bytes >= scale) return bytes % (scale / 16) === 0 ? `${bytes / scale} ${unit}` : `${(bytes / scale).toFixed(1)} ${unit}`;
  }
  return `${bytes} B`;
}

export function findExecutable(name) {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** GNU time if present and working (`time -f %M` prints the peak RSS in KiB), else undefined. */
export function findGnuTime() {
  const path = findExecutable('time');
  if (!path) return undefined;
  const probe = spawnSync(path, ['-f', '%e %M', 'true'], { encoding: 'utf8' });
  return probe.status === 0 && /^\d+(\.\d+)? \d+\s*$/m.test(probe.stderr) ? path : undefined;
}

/**
 * The deltacast command: the built CLI if it exists and answers, else the core-library fallback
 * with the same arguments (so the benchmark still runs while the CLI is being built).
 */
export function findDeltacast(cliPath = defaultCliPath) {
  if (existsSync(cliPath)) {
    const probe = spawnSync(process.execPath, [cliPath, '--help'], { encoding: 'utf8' });
    if (probe.status === 0 && /signature/.test(probe.stdout + probe.stderr)) {
      return { kind: 'cli', path: cliPath, argv: [process.execPath, cliPath] };
    }
  }
  return { kind: 'core-fallback', path: coreFallbackPath, argv: [process.execPath, coreFallbackPath] };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs a command to completion, failing with its stderr unless it exits 0. Untimed. */
export function runChecked(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${argv.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr || result.error}`);
  }
  return result;
}

/**
 * Runs `argv` once and measures it. Returns { wallMs, maxRssKiB, rssMethod }, plus `stdout` (the
 * first 16 MiB) with `{ captureStdout: true }`. `gnuTime` is the path of GNU time or undefined.
 * Throws, with the tool's stderr, if it does not exit 0.
 */
export function measure(argv, gnuTime, { captureStdout = false } = {}) {
  return new Promise((resolve, reject) => {
    const isNode = argv[0] === process.execPath;
    let spawnArgv;
    let rssFile;
    let env = process.env;
    if (gnuTime) {
      rssFile = join(process.env.TMPDIR ?? '/tmp', `deltacast-bench-time-${process.pid}.txt`);
      spawnArgv = [gnuTime, '-f', '%e %M', '-o', rssFile, ...argv];
    } else if (isNode) {
      rssFile = join(process.env.TMPDIR ?? '/tmp', `deltacast-bench-rss-${process.pid}.txt`);
      spawnArgv = [argv[0], '--import', reportRssUrl, ...argv.slice(1)];
      env = { ...process.env, DELTACAST_BENCH_RSS_FILE: rssFile };
    } else {
      spawnArgv = argv;
    }
    if (rssFile) rmSync(rssFile, { force: true });
    const start = process.hrtime.bigint();
    const child = spawn(spawnArgv[0], spawnArgv.slice(1), { stdio: ['ignore', captureStdout ? 'pipe' : 'ignore', 'pipe'], env });
    let stdout = '';
    if (captureStdout) {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text) => {
        if (stdout.length < 16 * 1024 * 1024) stdout += text;
      });
    }
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => {
      if (stderr.length < 64 * 1024) stderr += text;
    });
    let polledKiB = 0;
    let poller;
    if (!gnuTime && !isNode) {
      // VmHWM only grows, so the last sample before exit is the peak to within the sampling interval.
      const status = `/proc/${child.pid}/status`;
      const sample = () => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(status, 'utf8'));
          if (m) polledKiB = Math.max(polledKiB, Number(m[1]));
        } catch {
          // the process has gone
        }
      };
      sample();
      poller = setInterval(sample, 2);
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (poller) clearInterval(poller);
      if (code !== 0) {
        reject(new Error(`${argv.join(' ')} failed (${code ?? signal}):\n${stderr.trim()}`));
        return;
      }
      let maxRssKiB;
      let rssMethod;
      if (gnuTime) {
        // With -o, GNU time writes "Command exited ..." lines first when relevant; the format line is last.
        const last = readFileSync(rssFile, 'utf8').trim().split('\n').pop();
        maxRssKiB = Number(last.split(' ')[1]);
        rssMethod = 'gnu-time';
      } else if (isNode) {
        maxRssKiB = Number(readFileSync(rssFile, 'utf8'));
        rssMethod = 'resourceUsage';
      } else {
        maxRssKiB = polledKiB;
        rssMethod = 'proc-vmhwm';
      }
      if (rssFile) rmSync(rssFile, { force: true });
      resolve(captureStdout ? { wallMs, maxRssKiB, rssMethod, stdout } : { wallMs, maxRssKiB, rssMethod });
    });
  });
}

/** Plain-text table with right-aligned columns after the first. */
export function formatTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Same table as Markdown, for RESULTS.md. */
export function formatMarkdownTable(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}
