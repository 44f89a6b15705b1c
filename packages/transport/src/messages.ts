/**
 * Message types and field readers. Every field read off the wire goes through one of these readers,
 * which check its type and bounds and fail with ProtocolError BAD_MESSAGE naming the field.
 * docs/protocol.md lists the messages and their fields.
 */
import type { Header } from './frame.js';
import { ProtocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

/** Capabilities this build offers in its hello. */
export const CAPABILITIES = ['native-delta', 'zlib', 'checksum', 'owner', 'partial', 'list-paths', 'list-compare', 'list-compare-zlib', 'batch', 'setattrs', 'mkdirs', 'delta-xxh128', 'backup', 'chown', 'owner-names', 'hardlinks', 'link-dest', 'fuzzy'] as const;

/** An agent offering this maps --owner's ids by name (`owners`), as rsync does without --numeric-ids. */
export const OWNER_NAMES_CAPABILITY = 'owner-names';

/** At most this many ids of each kind in one `owners` request (a client splits longer lists). */
export const MAX_OWNER_IDS = 4096;

/** An agent offering this lists only the `paths` a `list` request names (a scoped sync). */
export const LIST_PATHS_CAPABILITY = 'list-paths';

/** An agent offering this compares a client's listing with its tree (`compare`, src/listing.ts). */
export const LIST_COMPARE_CAPABILITY = 'list-compare';

/** An agent offering this also takes the listing of a `compare` deflated (`z`, `raw`). */
export const LIST_COMPARE_ZLIB_CAPABILITY = 'list-compare-zlib';

/** An agent offering this patches native deltas whose END carries XXH3-128 (flag 0x01, docs/format.md). */
export const DELTA_XXH128_CAPABILITY = 'delta-xxh128';

/** Paths in one `list` request; a client splits a longer scope over several requests. */
export const MAX_LIST_PATHS = 1024;

/** Largest payload we put in one data frame (the frame cap is 16 MiB). */
export const DATA_CHUNK = 256 * 1024;

/** Longest path accepted from the wire (PATH_MAX on Linux). */
export const MAX_PATH_BYTES = 4096;

/** Entry types in listings and requests. */
export type EntryType = 'f' | 'd' | 'l';

function bad(header: Header, field: string, want: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', `message "${header.t}": field "${field}" must be ${want}`, {
    type: header.t,
    field,
  });
}

export function str(header: Header, field: string, maxLength = MAX_PATH_BYTES): string {
  const v = header[field];
  if (typeof v !== 'string' || v.length > maxLength) throw bad(header, field, `a string of at most ${maxLength} characters`);
  return v;
}

export function optStr(header: Header, field: string, maxLength = MAX_PATH_BYTES): string | undefined {
  return header[field] === undefined || header[field] === null ? undefined : str(header, field, maxLength);
}

export function uint(header: Header, field: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = header[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw bad(header, field, `an integer 0 .. ${max}`);
  return v;
}

export function optUint(header: Header, field: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return header[field] === undefined || header[field] === null ? undefined : uint(header, field, max);
}

/** A time in milliseconds since the epoch, possibly fractional (sub-millisecond mtimes). */
export function time(header: Header, field: string): number {
  const v = header[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(header, field, 'a finite number');
  return v;
}

export function optTime(header: Header, field: string): number | undefined {
  return header[field] === undefined || header[field] === null ? undefined : time(header, field);
}

export function bool(header: Header, field: string): boolean {
  const v = header[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(header, field, 'a boolean');
  return v;
}

export function entryType(header: Header, field: string): EntryType {
  const v = header[field];
  if (v !== 'f' && v !== 'd' && v !== 'l') throw bad(header, field, '"f", "d" or "l"');
  return v;
}

export function strList(header: Header, field: string, maxItems: number): string[] {
  const v = header[field];
  if (!Array.isArray(v) || v.length > maxItems || !v.every((x) => typeof x === 'string' && x.length <= MAX_PATH_BYTES)) {
    throw bad(header, field, `a list of at most ${maxItems} strings`);
  }
  return v as string[];
}
