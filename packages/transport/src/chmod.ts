/**
 * rsync's --chmod: permission changes applied to the source's modes as they are read, so that the
 * destination gets (and is compared against) the changed modes. Symlinks are never changed.
 *
 * The value is rsync's: comma-separated clauses, each applied in turn, each optionally starting with
 * D (directories only) or F (regular files only), then either an octal mode (`D2775`, `F664`) or
 * chmod(1)'s who-op-what (`u+rwX`, `go-w`, `o=`, `g=u`, `+t`), one op a clause. As in rsync:
 * without a who, the bits are all classes' less the umask; X is x for a directory, and for a file
 * only if the file had an execute bit before any clause; s is set-user-ID for u (or no who),
 * set-group-ID for g; t is the sticky bit; `=` clears the classes' rwx, and their set-id bits when
 * it sets s, and every special bit of theirs when it copies another class (`g=u`).
 */
import { TransportError } from './errors.js';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
const PERMISSION_BITS = 0o7777;

export interface ChmodClause {
  /** 'D': directories only; 'F': regular files only; undefined: both. */
  only?: 'D' | 'F';
  /** Kept: mode & and; then | or (less its execute bits when `keepX` and the file had none); then the copy. */
  and: number;
  or: number;
  /** X: the execute bits of `or` only for directories and files that had an execute bit. */
  keepX: boolean;
  /** `g=u` and the like: the source class (0o100 u, 0o010 g, 0o001 o), 0 for none. */
  copyFrom: number;
  /** The classes a copy goes to (each bit as copyFrom's), and the mask it is limited by. */
  copyTo: number;
  copyMask: number;
  /** A copy taken away ('-') rather than added. */
  copyRemoves: boolean;
}

/** The umask rsync would apply to a clause without a who (read once: process.umask() has no pure getter). */
let umask: number | undefined;
function processUmask(): number {
  umask ??= process.umask();
  return umask;
}

/** Parses a --chmod value; a malformed one is a TransportError INVALID_OPTION naming the clause. */
export function parseChmod(spec: string): ChmodClause[] {
  return spec.split(',').map((text) => parseClause(text, spec));
}

function parseClause(text: string, spec: string): ChmodClause {
  const bad = () =>
    new TransportError('INVALID_OPTION', `--chmod clause "${text}" is not a mode: use e.g. D2775,F664 or Du=rwx,go=rx,Fu=rw,go=r`, { chmod: spec, clause: text });
  const match = /^([DF]*)(?:([0-7]+)|([ugoa]*)([-+=])([rwxXst]*|[ugo]))$/.exec(text);
  if (!match) throw bad();
  const [, prefix, octal, who, op, what] = match;
  if (prefix.includes('D') && prefix.includes('F')) throw bad();
  const only = prefix === '' ? undefined : (prefix[0] as 'D' | 'F');
  if (octal !== undefined) {
    const value = parseInt(octal, 8);
    if (value > PERMISSION_BITS) throw bad();
    return { only, and: 0, or: value, keepX: false, copyFrom: 0, copyTo: 0, copyMask: PERMISSION_BITS, copyRemoves: false };
  }
  let classes = 0; // one bit per class: 0o100 u, 0o010 g, 0o001 o
  let setIds = 0; // the set-id bits of the classes named
  for (const c of who) {
    if (c === 'u') (classes |= 0o100), (setIds |= S_ISUID);
    else if (c === 'g') (classes |= 0o010), (setIds |= S_ISGID);
    else if (c === 'o') classes |= 0o001;
    else classes |= 0o111;
  }
  const copyFrom = /^[ugo]$/.test(what) ? { u: 0o100, g: 0o010, o: 0o001 }[what as 'u' | 'g' | 'o'] : 0;
  let rwx = 0;
  let special = 0;
  if (!copyFrom) {
    for (const c of what) {
      if (c === 'r') rwx |= 4;
      else if (c === 'w') rwx |= 2;
      else if (c === 'x' || c === 'X') rwx |= 1;
      else if (c === 's') special |= setIds || S_ISUID;
      else special |= S_ISVTX;
    }
  }
  const named = classes !== 0;
  if (!named) classes = 0o111;
  const bits = named ? classes * rwx : (classes * rwx) & ~processUmask();
  const copy = { copyFrom, copyTo: classes, copyMask: named ? PERMISSION_BITS : ~processUmask() & PERMISSION_BITS, copyRemoves: op === '-' };
  const keepX = what.includes('X');
  if (op === '+') return { only, and: PERMISSION_BITS, or: bits | special, keepX, ...copy };
  if (op === '-') return { only, and: PERMISSION_BITS & ~(bits | special), or: 0, keepX, ...copy };
  // '=': the classes' rwx go; their set-id bits too when s is set, and every special bit of theirs for a copy.
  let cleared = classes * 7;
  if (special) cleared |= setIds;
  if (copyFrom) cleared |= (classes & 0o100 ? S_ISUID : 0) | (classes & 0o010 ? S_ISGID : 0) | (classes & 0o001 ? S_ISVTX : 0);
  return { only, and: PERMISSION_BITS & ~cleared, or: bits | special, keepX, ...copy };
}

/** `mode`'s permission bits (0o7777) after `clauses`, for a directory or a regular file. */
export function applyChmod(clauses: readonly ChmodClause[], mode: number, isDirectory: boolean): number {
  let m = mode & PERMISSION_BITS;
  const hadX = (m & 0o111) !== 0;
  for (const c of clauses) {
    if ((c.only === 'D' && !isDirectory) || (c.only === 'F' && isDirectory)) continue;
    let copied = 0;
    if (c.copyFrom) {
      const from = c.copyFrom === 0o100 ? (m >> 6) & 7 : c.copyFrom === 0o010 ? (m >> 3) & 7 : m & 7;
      copied = (c.copyTo * from) & c.copyMask;
    }
    m &= c.and;
    m |= c.keepX && !hadX && !isDirectory ? c.or & ~0o111 : c.or;
    m = c.copyRemoves ? m & ~copied : m | copied;
  }
  return m & PERMISSION_BITS;
}
