/**
 * rsync's --remove-source-files: once a run has put a file (or symlink) at its destination, or found
 * it there already, the source's copy goes, as a move does. Directories stay. Only what the run
 * vouches for: not a path that failed, one under a directory that could not be made, one a
 * transfer rule or --compare-dest left out, nor anything when the session itself failed; and only
 * while the source entry is still what the scan saw (the same type, size and mtime; a file written
 * since is kept for the next run, as rsync keeps it).
 */
import { lstatSync, unlinkSync } from 'node:fs';
import type { DestinationRun } from './destination-run.js';
import { recordFailure } from './destination-run.js';
import { sameTime } from './plan.js';
import type { SourceTree } from './tree.js';
import type { EventListener } from './events.js';
import { entryTypeOf } from './lstat-fields.js';

/**
 * Removes the source's files and symlinks that `run` got to its destination (see above); counts them
 * in its summary (`removed`), a failure to remove one as an error of that path.
 */
export function removeSourceFiles(tree: SourceTree, run: DestinationRun, onEvent?: EventListener): void {
  const summary = run.summary;
  if (summary.errors.some((e) => e.path === '')) return; // the destination as a whole failed
  const failed = new Set(summary.errors.map((e) => e.path));
  for (const entry of tree.entries) {
    if (entry.type !== 'f' && entry.type !== 'l') continue;
    if (failed.has(entry.path) || run.plan.leftAlone.has(entry.path) || run.underFailed(entry.path)) continue;
    try {
      const st = lstatSync(entry.local, { throwIfNoEntry: false });
      // Gone already, or changed since the scan: not what arrived.
      if (!st || entryTypeOf(st.mode) !== entry.type || (entry.type === 'f' && st.size !== entry.size) || !sameTime(st.mtimeMs, entry.mtimeMs)) continue;
      unlinkSync(entry.local);
      summary.removed++;
    } catch (error) {
      recordFailure(summary, run.name, entry.path, error, onEvent);
    }
  }
}
