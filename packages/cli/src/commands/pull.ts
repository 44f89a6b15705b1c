/**
 * `deltacast sync host:SRC DEST`: a pull, the remote source synced into a local directory
 * (@deltacast/transport pull.ts): the source host runs `deltacast sender`, this process serves DEST.
 * The output is a push's: progress, itemized changes (`>f...`, received), --json events, the summary,
 * and sync's exit codes.
 */
import { parseDestination, pull, type FilterRule } from '@deltacast/transport';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILED, UsageError } from '../errors.js';
import { readFilesFrom } from '../files-from.js';
import type { MainIO } from '../io.js';
import { createSyncOutput } from '../sync-output.js';
import { runFailure } from './sync.js';

/** What the sync command hands a pull: its options, as parsed. */
export interface PullCommand {
  io: MainIO;
  source: string;
  destinations: string[];
  options: Record<string, unknown>;
  /** --files-from FILE, --from0. */
  filesFrom?: string;
  from0: boolean;
  /** Options a pull cannot take (the fan-out's commit modes and hooks), by their flag. */
  refused: string[];
  output: Parameters<typeof createSyncOutput>[2];
}

/** Whether `source` names a path on another host (and no local path of that name exists). */
export function isRemoteSource(source: string): boolean {
  if (existsSync(source)) return false;
  try {
    return parseDestination(source).kind === 'ssh';
  } catch {
    return false;
  }
}

/**
 * The CLI's single-file bundle, which runs `deltacast sender` on a host without deltacast: beside
 * this code inside the bundle, or in dist/ when running from dist/commands/ or src/commands/.
 */
export function senderBundlePath(): string {
  const candidates = [new URL('./deltacast.cjs', import.meta.url), new URL('../deltacast.cjs', import.meta.url), new URL('../../dist/deltacast.cjs', import.meta.url)].map((u) =>
    fileURLToPath(u),
  );
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

/** Runs a pull; its exit code (sync's) goes to `setExitCode`. */
export async function runPull(command: PullCommand, setExitCode: (code: number) => void): Promise<void> {
  const { io, source, destinations } = command;
  if (destinations.length !== 1) throw new UsageError(`a pull from ${source} goes to one local destination, not ${destinations.length}`);
  const destination = destinations[0];
  if (parseDestination(destination).kind !== 'local') {
    throw new UsageError(`${source} and ${destination} are both remote: one side must be local (run deltacast on one of the hosts)`);
  }
  if (command.refused.length > 0) throw new UsageError(`${command.refused.join(', ')}: not with a pull (a remote source); these are for pushing to destinations`);
  const filesFrom = command.filesFrom !== undefined ? await readFilesFrom(command.filesFrom, command.from0, io.stdin) : undefined;
  const output = createSyncOutput(io.stdout, io.stderr, command.output);
  try {
    const result = await pull({
      ...(command.options as { filters: FilterRule[] }),
      source,
      destination,
      filesFrom,
      senderBundlePath: senderBundlePath(),
      onEvent: output.onEvent,
      onMessage: (text) => io.stderr.write(text),
    });
    output.finish(result.summary);
    // The sender's code is sync's; one that ended without a summary failed (its message is out).
    setExitCode(result.summary === undefined ? result.exitCode || EXIT_FAILED : (result.exitCode ?? EXIT_FAILED));
  } catch (error) {
    output.finish(undefined);
    setExitCode(runFailure(io, source, error));
  }
}
