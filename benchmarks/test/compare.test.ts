import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { findExecutable } from '../lib/run.mjs';

const run = promisify(execFile);
const benchmarks = fileURLToPath(new URL('..', import.meta.url));
const cli = join(benchmarks, '..', 'packages', 'cli', 'dist', 'bin.js');

const CASES = [
  'signature (native)',
  'signature (rdiff format)',
  'delta scattered (native)',
  'delta scattered (rdiff format)',
  'delta no match (native)',
  'delta no match (rdiff format)',
  'patch (native)',
  "patch (rdiff's delta)",
];

describe('compare-rdiff.mjs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs every case on a 1 MiB file, verifies the outputs and writes the JSON report', async (ctx) => {
    if (!findExecutable('rdiff')) ctx.skip('rdiff (librsync) is not installed');
    if (!existsSync(cli)) ctx.skip(`the CLI is not built (${cli}); run pnpm -r run build`);
    dir = mkdtempSync(join(tmpdir(), 'deltacast-bench-test-'));
    const json = join(dir, 'results.json');
    const { stdout } = await run(
      process.execPath,
      ['compare-rdiff.mjs', '--size', '1M', '--repeat', '1', '--dir', join(dir, 'work'), '--cli', cli, '--json', json],
      { cwd: benchmarks },
    );
    expect(stdout).not.toContain('core-library fallback');
    for (const label of CASES) expect(stdout).toContain(label);
    expect(stdout).toContain('verified: rdiff-format signature byte-equal to rdiff');
    expect(stdout).toContain('all patch outputs equal the new file');
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.cases.map((c: { case: string }) => c.case)).toEqual(CASES);
    expect(report.deltacast).toBe('cli');
    // Without --keep the generated files are removed.
    expect(readdirSync(join(dir, 'work'))).toEqual([]);
  });
});
