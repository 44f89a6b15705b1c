/**
 * Batches (docs/protocol.md, Batches): many small files in one request. A `puts` carries the native
 * deltas of up to MAX_BATCH_FILES files in one payload and a `sigs` asks for the signatures of up to
 * as many small basis files, so a tree of small files costs a request per batch instead of one (or
 * two) per file: per-request work on both sides (frames, promises, replies, events) was most of an
 * initial copy's cost. Each file in a batch succeeds or fails alone, as a request of its own would.
 * This module holds the limits and the checked forms of the batch fields, for both sides.
 */
import type { Header } from './frame.js';
import { ProtocolError } from './errors.js';
import { MAX_PATH_BYTES } from './messages.js';

/** An agent offering this takes `puts` and `sigs`. */
export const BATCH_CAPABILITY = 'batch';
/** Files in one batch. */
export const MAX_BATCH_FILES = 128;
/** Delta bytes in one `puts` (before compression): what an agent holds in memory for one batch. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** A basis larger than this is refused in a batch (TOO_LARGE); the client sends that file alone. */
export const MAX_BATCH_BASIS = 1024 * 1024;
/** An agent offering this takes `setattrs`. */
export const SETATTRS_CAPABILITY = 'setattrs';
/** Entries in one `setattrs`. */
export const MAX_SETATTRS = 1024;
/** An agent offering this takes `mkdirs`. */
export const MKDIRS_CAPABILITY = 'mkdirs';
/** Directories in one `mkdirs`. */
export const MAX_MKDIRS = 1024;
/** Characters of a failure's message in a batch reply (the reply's header stays under its cap). */
export const MAX_BATCH_MESSAGE = 256;
/** The code of a file a batch refused for its size: the client sends it alone. */
export const TOO_LARGE = 'TOO_LARGE';

/** One file of a `puts`: a put's fields, and the length of its delta in the payload. */
export interface BatchFile {
  path: string;
  size: number;
  mode: number;
  mtime: number;
  uid: number | undefined;
  gid: number | undefined;
  basis: boolean;
  length: number;
}

/** What became of one file of a batch: its size (written, or the signature's bytes), or a failure. */
export type BatchResult = { ok: true; size: number } | { ok: false; code: string; message: string };

/** A malformed batch-like request (`mkdirs`, `setattrs`, `links`, `link-dest`, ...): BAD_MESSAGE, which ends the session. */
export function bad(type: string, message: string, details: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', `message "${type}": ${message}`, { type, ...details });
}

/** A whole number from 0 to `max`, as the batch-like requests check their fields. */
export const isUint = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
/** A path field: a string of at most MAX_PATH_BYTES characters (resolving it checks the rest). */
export const isPath = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_PATH_BYTES;

/** Replies whose every entry succeeds with a number (`link-dest`, `fuzzy`), in a batch's result form. */
export function numberResults(values: readonly number[]): unknown {
  return encodeBatchResults(values.map((size): BatchResult => ({ ok: true, size })));
}

/** The wire form of a `puts` file list: `[path, size, mode, mtime, uid, gid, basis, length]` each. */
export function encodeBatchFiles(files: readonly BatchFile[]): unknown[][] {
  return files.map((f) => [f.path, f.size, f.mode, f.mtime, f.uid ?? null, f.gid ?? null, f.basis, f.length]);
}

/**
 * The file list of a `puts`, every field checked: at most MAX_BATCH_FILES files whose deltas come to
 * at most MAX_BATCH_BYTES. Anything else is a BAD_MESSAGE (the session ends, as for a malformed put).
 */
export function decodeBatchFiles(h: Header): BatchFile[] {
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_BATCH_FILES) {
    throw bad('puts', `field "f" must be a list of 1 .. ${MAX_BATCH_FILES} files`, { field: 'f' });
  }
  let total = 0;
  return raw.map((item: unknown, i) => {
    const where = { field: 'f', file: i };
    if (!Array.isArray(item) || item.length !== 8) throw bad('puts', `file ${i} must be [path, size, mode, mtime, uid, gid, basis, length]`, where);
    const [path, size, mode, mtime, uid, gid, basis, length] = item as unknown[];
    if (!isPath(path)) throw bad('puts', `file ${i}: path must be a string of at most ${MAX_PATH_BYTES} characters`, where);
    if (!isUint(size, Number.MAX_SAFE_INTEGER)) throw bad('puts', `file ${i}: size must be an integer 0 .. 2^53 - 1`, where);
    if (!isUint(mode, 0o7777)) throw bad('puts', `file ${i}: mode must be an integer 0 .. 0o7777`, where);
    if (typeof mtime !== 'number' || !Number.isFinite(mtime)) throw bad('puts', `file ${i}: mtime must be a finite number`, where);
    if (uid !== null && !isUint(uid, 0xffffffff)) throw bad('puts', `file ${i}: uid must be null or an integer 0 .. 2^32 - 1`, where);
    if (gid !== null && !isUint(gid, 0xffffffff)) throw bad('puts', `file ${i}: gid must be null or an integer 0 .. 2^32 - 1`, where);
    if (typeof basis !== 'boolean') throw bad('puts', `file ${i}: basis must be a boolean`, where);
    if (!isUint(length, MAX_BATCH_BYTES)) throw bad('puts', `file ${i}: length must be an integer 0 .. ${MAX_BATCH_BYTES}`, where);
    total += length;
    if (total > MAX_BATCH_BYTES) throw bad('puts', `deltas of more than ${MAX_BATCH_BYTES} bytes`, { field: 'f' });
    return { path, size, mode, mtime, uid: uid ?? undefined, gid: gid ?? undefined, basis, length };
  });
}

/** A batch reply's results: a size for a file done, `[code, message]` for one that failed. */
export function encodeBatchResults(results: readonly BatchResult[]): unknown[] {
  return results.map((r) => (r.ok ? r.size : [r.code.slice(0, 64), r.message.slice(0, MAX_BATCH_MESSAGE)]));
}

/** The results of a batch reply to a request of `n` files, checked (BAD_MESSAGE otherwise). */
export function decodeBatchResults(h: Header, n: number): BatchResult[] {
  const raw = h.r;
  if (!Array.isArray(raw) || raw.length !== n) throw bad(String(h.t), `field "r" must hold ${n} results`, { field: 'r' });
  return raw.map((item: unknown, i): BatchResult => {
    if (isUint(item, Number.MAX_SAFE_INTEGER)) return { ok: true, size: item };
    if (Array.isArray(item) && item.length === 2 && typeof item[0] === 'string' && typeof item[1] === 'string') {
      return { ok: false, code: item[0], message: item[1] };
    }
    throw bad(String(h.t), `result ${i} must be a size or [code, message]`, { field: 'r', file: i });
  });
}

/** One entry of a `setattrs`: a setattr's fields (undefined: left as it is). */
export interface SetattrEntry {
  path: string;
  mode: number | undefined;
  mtime: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
}

/** The wire form of a `setattrs` list: `[path, mode, mtime, uid, gid]` each, null for a field left alone. */
export function encodeSetattrs(entries: readonly SetattrEntry[]): unknown[][] {
  return entries.map((e) => [e.path, e.mode ?? null, e.mtime ?? null, e.uid ?? null, e.gid ?? null]);
}

/**
 * The list of a `setattrs`, every field checked: 1 to MAX_SETATTRS entries. Anything else is a
 * BAD_MESSAGE (the session ends, as for a malformed setattr).
 */
export function decodeSetattrs(h: Header): SetattrEntry[] {
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_SETATTRS) {
    throw bad('setattrs', `field "f" must be a list of 1 .. ${MAX_SETATTRS} entries`, { field: 'f' });
  }
  return raw.map((item: unknown, i) => {
    const where = { field: 'f', entry: i };
    if (!Array.isArray(item) || item.length !== 5) throw bad('setattrs', `entry ${i} must be [path, mode, mtime, uid, gid]`, where);
    const [path, mode, mtime, uid, gid] = item as unknown[];
    if (!isPath(path)) throw bad('setattrs', `entry ${i}: path must be a string of at most ${MAX_PATH_BYTES} characters`, where);
    if (mode !== null && !isUint(mode, 0o7777)) throw bad('setattrs', `entry ${i}: mode must be null or an integer 0 .. 0o7777`, where);
    if (mtime !== null && (typeof mtime !== 'number' || !Number.isFinite(mtime))) throw bad('setattrs', `entry ${i}: mtime must be null or a finite number`, where);
    if (uid !== null && !isUint(uid, 0xffffffff)) throw bad('setattrs', `entry ${i}: uid must be null or an integer 0 .. 2^32 - 1`, where);
    if (gid !== null && !isUint(gid, 0xffffffff)) throw bad('setattrs', `entry ${i}: gid must be null or an integer 0 .. 2^32 - 1`, where);
    return { path, mode: mode ?? undefined, mtime: mtime ?? undefined, uid: uid ?? undefined, gid: gid ?? undefined } as SetattrEntry;
  });
}

/** One directory of a `mkdirs`: a mkdir's fields. */
export interface MkdirEntry {
  path: string;
  mode: number;
}

/** The wire form of a `mkdirs` list: `[path, mode]` each. */
export function encodeMkdirs(entries: readonly MkdirEntry[]): unknown[][] {
  return entries.map((e) => [e.path, e.mode]);
}

/**
 * The list of a `mkdirs`, every field checked: 1 to MAX_MKDIRS entries. Anything else is a
 * BAD_MESSAGE (the session ends, as for a malformed mkdir).
 */
export function decodeMkdirs(h: Header): MkdirEntry[] {
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MKDIRS) {
    throw bad('mkdirs', `field "f" must be a list of 1 .. ${MAX_MKDIRS} entries`, { field: 'f' });
  }
  return raw.map((item: unknown, i) => {
    const where = { field: 'f', entry: i };
    if (!Array.isArray(item) || item.length !== 2) throw bad('mkdirs', `entry ${i} must be [path, mode]`, where);
    const [path, mode] = item as unknown[];
    if (!isPath(path)) throw bad('mkdirs', `entry ${i}: path must be a string of at most ${MAX_PATH_BYTES} characters`, where);
    if (!isUint(mode, 0o7777)) throw bad('mkdirs', `entry ${i}: mode must be an integer 0 .. 0o7777`, where);
    return { path, mode };
  });
}

/** An agent offering this makes hard links (`links`, -H). */
export const HARDLINKS_CAPABILITY = 'hardlinks';
/** Entries in one `links` request. */
export const MAX_LINKS = 1024;

/** One hard link of a `links`: `path` made another name of the file at `target`. */
export interface LinkEntry {
  path: string;
  target: string;
}

/** The wire form of a `links` list: `[path, target]` each. */
export function encodeLinks(entries: readonly LinkEntry[]): unknown[][] {
  return entries.map((e) => [e.path, e.target]);
}

/**
 * The list of a `links`, every field checked: 1 to MAX_LINKS entries. Anything else is a
 * BAD_MESSAGE (the session ends).
 */
export function decodeLinks(h: Header): LinkEntry[] {
  const raw = h.f;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_LINKS) {
    throw bad('links', `field "f" must be a list of 1 .. ${MAX_LINKS} entries`, { field: 'f' });
  }
  return raw.map((item: unknown, i) => {
    const where = { field: 'f', entry: i };
    if (!Array.isArray(item) || item.length !== 2) throw bad('links', `entry ${i} must be [path, target]`, where);
    const [path, target] = item as unknown[];
    if (!isPath(path) || !isPath(target)) throw bad('links', `entry ${i}: path and target must be strings of at most ${MAX_PATH_BYTES} characters`, where);
    return { path, target };
  });
}
