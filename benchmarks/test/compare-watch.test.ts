import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultCliPath, findExecutable } from '../lib/run.mjs';
import { findSshd } from '../lib/sshd.mjs';

const run = promisify(execFile);
const benchmarks = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(benchmarks, '..', 'packages', 'transport', 'dist', 'agent.bundle.mjs');

describe('compare-watch.mjs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lands files under a running deltacast watch over a private sshd, measures them, verifies the mirrors and writes the report', async (ctx) => {
    if (!findExecutable('rsync')) ctx.skip('rsync is not installed');
    if (!findSshd()) ctx.skip('sshd (openssh-server) is not installed');
    if (!findExecutable('ssh') || !findExecutable('ssh-keygen')) ctx.skip('ssh or ssh-keygen (openssh-client) is not installed');
    if (process.getuid?.() !== 0) ctx.skip('the private sshd needs root to log a user in');
    if (!existsSync(defaultCliPath) || !existsSync(bundle)) ctx.skip(`the CLI or the agent bundle is not built (${defaultCliPath}, ${bundle}); run pnpm -r run build`);
    dir = mkdtempSync(join(tmpdir(), 'deltacast-bench-watch-test-'));
    const json = join(dir, 'results.json');
    const args = ['compare-watch.mjs', '--files', '100', '--tree-size', '1M', '--destinations', '2', '--delay', '0.2', '--landings', '4'];
    args.push('--interval', '0.1-0.2', '--burst', '20', '--idle', '1', '--tools', 'deltacast', '--dir', join(dir, 'work'), '--json', json);
    const { stdout } = await run(process.execPath, args, { cwd: benchmarks });
    expect(stdout).toContain('deltacast: 4 landings delivered to all 2 destinations');
    expect(stdout).toMatch(/verified: deltacast: every landed file arrived whole at all 2 destinations; all 2 destinations equal the source after the stop/);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const [deltacast] = report.tools;
    expect(deltacast).toMatchObject({ tool: 'deltacast', problems: [], exit: { code: 0, signal: null } });
    expect(deltacast.samples).toHaveLength(4);
    for (const sample of deltacast.samples) expect(sample.arrivalMs).toHaveLength(2);
    // Latency cannot beat the batch window it waits out.
    expect(deltacast.latency.minMs).toBeGreaterThanOrEqual(200);
    expect(deltacast.burst.files).toBe(20);
    // Without --keep the generated trees, destinations, keys and sshd files are removed.
    expect(readdirSync(join(dir, 'work'))).toEqual([]);
  });
});
