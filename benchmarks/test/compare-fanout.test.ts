import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultCliPath, findExecutable, findGnuTime } from '../lib/run.mjs';
import { findSshd } from '../lib/sshd.mjs';

const run = promisify(execFile);
const benchmarks = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(benchmarks, '..', 'packages', 'transport', 'dist', 'agent.bundle.mjs');

const CASES = ['deltacast, 1 destination', 'deltacast fan-out, 3 destinations', 'rsync loop, 3 destinations one after another', 'rsync, 3 destinations at once'];

describe('compare-fanout.mjs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs every case to 3 destinations over a private sshd, verifies them and writes the JSON report', async (ctx) => {
    if (!findExecutable('rsync')) ctx.skip('rsync is not installed');
    if (!findSshd()) ctx.skip('sshd (openssh-server) is not installed');
    if (!findExecutable('ssh') || !findExecutable('ssh-keygen')) ctx.skip('ssh or ssh-keygen (openssh-client) is not installed');
    if (process.getuid?.() !== 0) ctx.skip('the private sshd needs root to log a user in');
    if (!findGnuTime()) ctx.skip('GNU time (Debian package time) is not installed; it measures the CPU time');
    if (!existsSync(defaultCliPath) || !existsSync(bundle)) ctx.skip(`the CLI or the agent bundle is not built (${defaultCliPath}, ${bundle}); run pnpm -r run build`);
    dir = mkdtempSync(join(tmpdir(), 'deltacast-bench-fanout-test-'));
    const json = join(dir, 'results.json');
    const { stdout } = await run(
      process.execPath,
      ['compare-fanout.mjs', '--files', '100', '--tree-size', '1M', '--destinations', '3', '--repeat', '1', '--dir', join(dir, 'work'), '--json', json],
      { cwd: benchmarks },
    );
    for (const label of CASES) expect(stdout).toContain(label);
    expect(stdout).toContain('deltacast, 1 destination: the destination equals the new tree after every run');
    for (const label of CASES.slice(1)) expect(stdout).toContain(`${label}: all 3 destinations equal the new tree after every run`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.cases.map((c: { case: string }) => c.case)).toEqual(CASES);
    expect(report.changedFiles).toBe(1);
    // One delta for the one edited file, sent to all three destinations from one read of the source.
    expect(report.fanout).toEqual({ ok: true, files: 1, deltasComputed: 1, destinationFiles: 3, sourceReads: 1, durationMs: expect.any(Number) });
    for (const c of report.cases) {
      expect(c.samples).toHaveLength(1);
      expect(c.cpuMs).toBeGreaterThan(0);
      expect(c.serverCpuMs).toBeGreaterThan(0);
    }
    expect(report.cases[0].wallRatio).toBe(1);
    // Without --keep the generated trees, destinations, keys and sshd files are removed.
    expect(readdirSync(join(dir, 'work'))).toEqual([]);
  });
});
