/**
 * Fan-out test helpers: run a fan-out collecting its events, and compare every destination with the
 * source. Trees are built and diffed with the transport's helpers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { fanout, type FanoutEvent, type FanoutOptions, type FanoutResult } from '../src/index.js';
import { diffTrees, leftovers, pinNaturalTimes, requireBuiltAgent, sha256, snapshotTree, type EntrySnapshot } from '../../transport/test/helpers/tree.js';

export {
  BASE_MTIME_MS,
  diffTrees,
  file,
  pinNaturalTimes,
  leftovers,
  pseudoRandom,
  sha256,
  snapshotTree,
  useTempDirs,
  writeTree,
} from '../../transport/test/helpers/tree.js';

export type DeltaEvent = Extract<FanoutEvent, { type: 'delta' }>;
export type ErrorEvent = Extract<FanoutEvent, { type: 'error' }>;

export interface Run {
  result: FanoutResult;
  events: FanoutEvent[];
  deltas: DeltaEvent[];
  errors: ErrorEvent[];
}

/**
 * A fan-out with its events. Natural mtimes in the source are pinned to whole seconds first (see
 * pinNaturalTimes in the transport helpers), so that tree diffs compare what a sync promises.
 */
export async function runFanout(options: Omit<FanoutOptions, 'onEvent'>, onEvent?: (event: FanoutEvent) => void): Promise<Run> {
  if (options.localAgent !== 'in-process') requireBuiltAgent();
  await pinNaturalTimes(options.source.replace(/\/+$/, '') || '/');
  const events: FanoutEvent[] = [];
  const result = await fanout({
    ...options,
    onEvent: (event) => {
      events.push(event);
      onEvent?.(event);
    },
  });
  return {
    result,
    events,
    deltas: events.filter((e): e is DeltaEvent => e.type === 'delta'),
    errors: events.filter((e): e is ErrorEvent => e.type === 'error'),
  };
}

/** Every entry of a destination, its root included. */
export function snapshotOf(root: string): Promise<Map<string, EntrySnapshot>> {
  return snapshotTree(root, { includeRoot: true });
}

/** Asserts that every destination root is identical to the source (contents, modes, mtimes) with no temp files. */
export async function expectAllIdentical(source: string, roots: string[]): Promise<void> {
  for (const root of roots) {
    expect(await diffTrees(source, root), root).toEqual([]);
    expect(await leftovers(root), root).toEqual([]);
  }
}

/** SHA-256 of a file under a root, or undefined when it does not exist. */
export async function hashOf(root: string, path: string): Promise<string | undefined> {
  try {
    return sha256(await readFile(join(root, path)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The per-destination result for `name`. */
export function resultFor(result: FanoutResult, name: string) {
  const found = result.destinations.find((d) => d.destination === name);
  if (!found) throw new Error(`no result for ${name}`);
  return found;
}
