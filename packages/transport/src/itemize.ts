/**
 * rsync's --itemize-changes codes for a plan's changes (rsync(1), "--itemize-changes"): eleven
 * characters `YXcstpoguax`, or `*deleting` for a deletion.
 *
 * - Y: `<` a file sent to a remote host, `>` one received by a local destination, `c` a local
 *   creation or change (a directory, a symlink), `.` only attributes change.
 * - X: the entry's type: `f` file, `d` directory, `L` symlink.
 * - then one letter per attribute, `.` where it is unchanged: `c` the content (a regular file with
 *   --checksum, whose changes it decides; a symlink's target), `s` size, `t` mtime, `p` permissions,
 *   `o` owner, `g` group (both only when owners are kept); `u`, `a`, `x` (access times, ACLs,
 *   extended attributes) are never kept, so always `.`. A new entry shows `+` in all nine.
 *
 * The letters come from the same comparisons the plan made (plan.ts): a time differs by more than
 * plan.ts's tolerance, a mode's permission bits, an owner the plan wants otherwise.
 */
import type { RemoteEntry, RootEntry } from './agent-client.js';
import { sameTime, type Change, type PlanOptions } from './plan.js';
import type { SourceEntry } from './tree.js';

/** What the plan compared beyond size, mtime and mode (Plan.compared). */
export interface ItemizeContext {
  /** --checksum: a regular file sent has different content. */
  checksum: boolean;
  /** The owner and group each entry should have, when owners are kept. */
  owner?: PlanOptions['owner'];
  /** The destination is on another host: files are sent (`<`), not received (`>`). */
  remote: boolean;
}

export const DELETING = '*deleting';
const NEW = '+++++++++';
const TYPE_LETTER = { f: 'f', d: 'd', l: 'L' } as const;

/**
 * The code of a change as rsync -i prints it before the path, or undefined for a change rsync does
 * not itemize (the deletion of an entry replaced by one of another type: the new entry's line says so).
 */
export function itemCode(change: Change, context: ItemizeContext): string | undefined {
  const { source, remote } = change;
  switch (change.kind) {
    case 'delete':
      return change.extraneous ? DELETING : undefined;
    case 'mkdir':
      return `cd${NEW}`;
    case 'create':
      return `${context.remote ? '<' : '>'}f${NEW}`;
    case 'symlink': {
      if (!remote || !source) return `cL${NEW}`;
      const retargeted = remote.linkTarget !== source.linkTarget;
      return `${retargeted ? 'c' : '.'}L${retargeted ? 'c' : '.'}.${timeLetter(source, remote)}.${ownerLetters(source, remote, context)}...`;
    }
    case 'hardlink':
      return hardLinkCode(change, change.remote !== undefined, context);
    case 'update':
    case 'attrs': {
      if (!source) return undefined;
      if (!remote) return change.kind === 'update' ? `${context.remote ? '<' : '>'}f${NEW}` : undefined;
      // The destination root, made by this session: as rsync shows it.
      if ((remote as RootEntry).made) return `cd${NEW}`;
      const head = change.kind === 'update' ? (context.remote ? '<' : '>') : '.';
      const type = TYPE_LETTER[source.type];
      const content = change.kind === 'update' && context.checksum && source.type === 'f' ? 'c' : '.';
      const size = source.type === 'f' && remote.size !== source.size ? 's' : '.';
      const perms = (remote.mode & 0o7777) !== (source.mode & 0o7777) ? 'p' : '.';
      return `${head}${type}${content}${size}${timeLetter(source, remote)}${perms}${ownerLetters(source, remote, context)}...`;
    }
  }
}

/**
 * A hard link made (-H): `hf+++++++++` where the path was free, else `hf` and what differed from the
 * file it held before (nine spaces where nothing did, or where the compare, which held that file
 * unchanged, did not report it), as rsync -iH prints them.
 */
export function hardLinkCode(change: Change, replaced: boolean, context: ItemizeContext): string {
  const { source, remote } = change;
  if (!replaced || !source) return `hf${NEW}`;
  if (!remote) return `hf${' '.repeat(9)}`;
  const letters = `.${remote.size !== source.size ? 's' : '.'}${timeLetter(source, remote)}${(remote.mode & 0o7777) !== (source.mode & 0o7777) ? 'p' : '.'}${ownerLetters(source, remote, context)}...`;
  return `hf${/[^.]/.test(letters) ? letters : ' '.repeat(9)}`;
}

function timeLetter(source: SourceEntry, remote: RemoteEntry): string {
  return sameTime(remote.mtimeMs, source.mtimeMs) ? '.' : 't';
}

function ownerLetters(source: SourceEntry, remote: RemoteEntry, context: ItemizeContext): string {
  if (!context.owner) return '..';
  const want = context.owner(source);
  return `${want.uid !== undefined && want.uid !== remote.uid ? 'o' : '.'}${want.gid !== undefined && want.gid !== remote.gid ? 'g' : '.'}`;
}

/** Whether a code says something changed: a directory's attributes that all match are not itemized. */
export function itemizesChange(code: string): boolean {
  return code === DELETING || /[^.]/.test(code.slice(2)) || code[0] !== '.';
}
