/**
 * rsync's -y, --fuzzy: a new file gets a basis from its own directory at the destination, so that a
 * renamed (or copied and edited) file goes as a delta, not whole. The agent looks, in the target's
 * directory, for a regular file of the same size and mtime, else one whose name is close (the same
 * extension, the rest within a few edits); the one found is cloned (or copied) to the new file's
 * partial name, the basis a create resumes from (the placed basis of link-dest.ts), and the client
 * sends the file as a delta against it.
 *
 * One `fuzzy` request (docs/protocol.md, Fuzzy), made right after the plan, before anything is
 * deleted (a rename's old name is an extraneous entry that --delete would remove first).
 */
import { constants, copyFileSync, lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { AgentClient } from './agent-client.js';
import { bad, isPath, isUint, MAX_LINKS } from './batch.js';
import { TransportError } from './errors.js';
import type { Header } from './frame.js';
import { MAX_PATH_BYTES } from './messages.js';
import { sameTime, type Plan } from './plan.js';

export const FUZZY_CAPABILITY = 'fuzzy';

/** One new file to find a basis for: its wire path, size and mtime (ms). */
export interface FuzzyEntry {
  path: string;
  size: number;
  mtime: number;
}

export function encodeFuzzy(entries: readonly FuzzyEntry[]): unknown[][] {
  return entries.map((e) => [e.path, e.size, e.mtime]);
}

/** A `fuzzy` request's entries, every field checked; anything else is a BAD_MESSAGE. */
export function decodeFuzzy(h: Header): FuzzyEntry[] {
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_LINKS) throw bad('fuzzy', `field "f" must be a list of 1 .. ${MAX_LINKS} entries`, { field: 'f' });
  return raw.map((item: unknown, i): FuzzyEntry => {
    const where = { field: 'f', entry: i };
    if (!Array.isArray(item) || item.length !== 3) throw bad('fuzzy', `entry ${i} must be [path, size, mtime]`, where);
    const [path, size, mtime] = item as unknown[];
    if (!isPath(path) || path === '') throw bad('fuzzy', `entry ${i}: the path must be a string of 1 to ${MAX_PATH_BYTES} characters`, where);
    if (!isUint(size, Number.MAX_SAFE_INTEGER) || typeof mtime !== 'number' || !Number.isFinite(mtime)) throw bad('fuzzy', `entry ${i}: size must be a whole number, mtime a number`, where);
    return { path, size: size as number, mtime };
  });
}

/** Edits (insertions, deletions, substitutions) between two strings; gives up above `limit` (returns limit + 1). */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (row[j] < best) best = row[j];
    }
    if (best > limit) return limit + 1;
    previous = row;
  }
  return previous[b.length];
}

/**
 * The basis for a new file named `name` of `size` bytes and `mtime` among `names` (its directory's
 * regular files, with their lstat): one of the same size and mtime first; else the closest name with
 * the same extension, within a third of the name's length in edits (at least 1); undefined when none.
 */
export function fuzzyMatch(name: string, size: number, mtime: number, names: readonly { name: string; size: number; mtimeMs: number }[]): string | undefined {
  const others = names.filter((n) => n.name !== name);
  const same = others.find((n) => n.size === size && sameTime(n.mtimeMs, mtime));
  if (same) return same.name;
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  const limit = Math.max(1, Math.floor(stem.length / 3));
  let best: { name: string; distance: number } | undefined;
  for (const n of others) {
    if (extname(n.name) !== ext) continue;
    const distance = editDistance(stem, n.name.slice(0, n.name.length - ext.length), limit);
    if (distance <= limit && (!best || distance < best.distance || (distance === best.distance && n.name < best.name))) best = { name: n.name, distance };
  }
  return best?.name;
}

/**
 * The agent's side for one entry: the target's directory (read once per request, `listed`) searched
 * for a basis, which is copied to `basis` (the target's partial name) unless `dry`. True when one was
 * found; false where the target exists by now, its directory does not, or nothing is close enough.
 */
export function placeFuzzyBasis(target: string, entry: FuzzyEntry, basis: string | undefined, dry: boolean, listed: Map<string, { name: string; size: number; mtimeMs: number }[]>): boolean {
  if (basis === undefined || lstatSync(target, { throwIfNoEntry: false })) return false;
  const dir = dirname(target);
  let names = listed.get(dir);
  if (!names) {
    names = [];
    let read: string[] = [];
    try {
      read = readdirSync(dir);
    } catch {
      read = [];
    }
    for (const name of read) {
      // The agent's own files (temp files, partials, the lock) start with a dot and are no basis.
      if (name.startsWith('.')) continue;
      const st = lstatSync(join(dir, name), { throwIfNoEntry: false });
      if (st?.isFile()) names.push({ name, size: st.size, mtimeMs: st.mtimeMs });
    }
    listed.set(dir, names);
  }
  const found = fuzzyMatch(basename(target), entry.size, entry.mtime, names);
  if (found === undefined) return false;
  if (!dry) copyFileSync(join(dir, found), basis, constants.COPYFILE_FICLONE);
  return true;
}

/**
 * The client's side, right after the plan: for the plan's new files that have no basis yet, asks the
 * agent for one from their directories; those that got one are marked to resume from it (a delta).
 * Nothing is placed in a dry run (the files are still sent whole there). An agent without the
 * capability fails the destination (UNSUPPORTED).
 */
export async function planFuzzy(client: AgentClient, plan: Plan, dry: boolean): Promise<number> {
  if (!client.info?.capabilities.includes(FUZZY_CAPABILITY)) throw new TransportError('UNSUPPORTED', 'the agent does not take --fuzzy (an older deltacast)', { capability: FUZZY_CAPABILITY });
  const creates = plan.files.filter((c) => c.kind === 'create' && c.source?.type === 'f' && !c.resume && !plan.basisDest?.includes(c));
  let found = 0;
  for (let i = 0; i < creates.length; i += MAX_LINKS) {
    const chunk = creates.slice(i, i + MAX_LINKS);
    const results = await client.fuzzy(encodeFuzzy(chunk.map((c) => ({ path: c.path, size: c.source!.size, mtime: c.source!.mtimeMs }))), chunk.length, dry);
    chunk.forEach((change, k) => {
      if (results[k].ok && results[k].size > 0) {
        found++;
        if (!dry) change.resume = true;
      }
    });
  }
  return found;
}
