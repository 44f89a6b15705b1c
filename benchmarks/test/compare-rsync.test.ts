import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../lib/run.mjs';
import { findSshd } from '../lib/sshd.mjs';

const run = promisify(execFile);
const benchmarks = fileURLToPath(new URL('..', import.meta.url));
const cli = join(benchmarks, '..', 'packages', 'cli', 'dist', 'bin.js');
const bundle = join(benchmarks, '..', 'packages', 'transport', 'dist', 'agent.bundle.mjs');

const CASES = ['big file (4 MiB, 256 edits)', 'tree initial copy (200 files)', 'tree no change', 'tree 2 files changed (1%)'];

describe('compare-rsync.mjs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('syncs every case with rsync and deltacast over a private sshd, verifies the destinations and writes the JSON report', async (ctx) => {
    if (!findExecutable('rsync')) ctx.skip('rsync is not installed');
    if (!findSshd()) ctx.skip('sshd (openssh-server) is not installed');
    if (!findExecutable('ssh') || !findExecutable('ssh-keygen')) ctx.skip('ssh or ssh-keygen (openssh-client) is not installed');
    if (process.getuid?.() !== 0) ctx.skip('the private sshd needs root to log a user in');
    if (!existsSync(cli) || !existsSync(bundle)) ctx.skip(`the CLI or the agent bundle is not built (${cli}, ${bundle}); run pnpm -r run build`);
    dir = mkdtempSync(join(tmpdir(), 'deltacast-bench-rsync-test-'));
    const json = join(dir, 'results.json');
    const { stdout } = await run(
      process.execPath,
      ['compare-rsync.mjs', '--big-size', '4M', '--files', '200', '--tree-size', '2M', '--repeat', '1', '--wire', '--dir', join(dir, 'work'), '--json', json],
      { cwd: benchmarks },
    );
    for (const label of CASES) expect(stdout).toContain(label);
    for (const label of CASES) expect(stdout).toContain(`${label}: both destinations equal the source after every run`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.cases.map((c: { case: string }) => c.case)).toEqual(CASES);
    const [big, initial, unchanged, changed] = report.cases;
    // The tools did the work the case stands for: a delta of the big file, whole files at first, nothing when nothing changed.
    for (const tool of ['rsync', 'deltacast']) {
      expect(big.samples[tool][0].matchedBytes).toBeGreaterThan(2 * 1024 * 1024);
      expect(initial.samples[tool][0].filesTransferred).toBe(200);
      expect(unchanged.samples[tool][0].filesTransferred).toBe(0);
      expect(changed.samples[tool][0].filesTransferred).toBe(2);
    }
    // Both initial copies carry the 2 MiB of file data across the relay.
    expect(initial.rsyncWireUp).toBeGreaterThan(2 * 1024 * 1024);
    expect(initial.deltacastWireUp).toBeGreaterThan(2 * 1024 * 1024);
    // Without --keep the generated files, keys and sshd files are removed.
    expect(readdirSync(join(dir, 'work'))).toEqual([]);
  });
});
