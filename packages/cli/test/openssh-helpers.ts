/** Shared by the CLI's tests against the real OpenSSH server: the ssh config, the second run's edits, the tree check. */
import { mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Sshd } from '../../transport/test/helpers/sshd.js';
import { BASE_MTIME_MS, diffTrees, hasRsync, leftovers, pinNaturalTimes, rsyncDifferences } from '../../transport/test/helpers/tree.js';
import { pseudoRandom } from './helpers.js';

/** Writes an ssh config at `path` with `Host bench` pointing at the harness, with overrides. */
export function writeBenchConfig(path: string, sshd: Sshd, overrides: { port?: number; identityFile?: string; knownHostsFile?: string } = {}): string {
  writeFileSync(
    path,
    [
      'Host bench',
      '  HostName 127.0.0.1',
      `  Port ${overrides.port ?? sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${overrides.identityFile ?? sshd.identityFile}`,
      `  UserKnownHostsFile ${overrides.knownHostsFile ?? sshd.knownHostsFile}`,
      // The test must not depend on whatever ssh-agent the environment has.
      '  IdentityAgent none',
      '',
    ].join('\n'),
  );
  return path;
}

/**
 * The second run's changes to a source that holds big.bin, to-rename.txt and to-delete.txt: 100
 * bytes of big.bin rewritten (a delta's work), a rename, a deletion, a new file in a new directory.
 */
export async function editForSecondRun(src: string): Promise<void> {
  const big = readFileSync(join(src, 'big.bin'));
  big.set(pseudoRandom(100, 99), 1_500_000);
  writeFileSync(join(src, 'big.bin'), big);
  utimesSync(join(src, 'big.bin'), (BASE_MTIME_MS + 30_000) / 1000, (BASE_MTIME_MS + 30_000) / 1000);
  renameSync(join(src, 'to-rename.txt'), join(src, 'renamed.txt'));
  rmSync(join(src, 'to-delete.txt'));
  mkdirSync(join(src, 'added'));
  writeFileSync(join(src, 'added/new file.txt'), 'added\n');
  await pinNaturalTimes(src);
}

/** `to` holds what `from` does, entry by entry (and by `rsync -ani` where rsync is installed), with no leftovers. */
export async function expectIdentical(from: string, to: string): Promise<void> {
  expect(await diffTrees(from, to)).toEqual([]);
  expect(await leftovers(to)).toEqual([]);
  if (hasRsync) expect(rsyncDifferences(from, to)).toBe('');
}
