/**
 * The source listing as one compact byte string (docs/protocol.md, Compared listing), after rsync's
 * design: the sender sends its file list and the receiver works out what it needs. A fan-out encodes
 * its listing once and writes the same bytes to every agent; each agent compares it with its own
 * tree (by plan.ts's quick check) and answers with only the entries that are not unchanged, plus a
 * bitmap of the source entries it holds unchanged. Per destination the client then decodes a short
 * reply instead of the whole tree.
 *
 * Layout: columns, so each is a run of one kind of value. All integers are big-endian; a varint is
 * unsigned LEB128 (7 bits a byte, low group first) of at most 8 bytes, below 2^53.
 *
 *     u32  magic 0x64636c31 ("dcl1")
 *     u32  n, the entry count
 *     n    types: one byte each, 'f' | 'd' | 'l'
 *     2n   modes: u16 each (& 0o7777)
 *     8n   mtimes: f64 each, milliseconds since the epoch
 *     ...  sizes: a varint for each 'f' entry, in order
 *     ...  paths: for each entry a varint `shared` (bytes in common with the previous path), a varint
 *          `length` and `length` bytes of UTF-8 that follow the shared part
 *     ...  link targets: for each 'l' entry a varint length and that many bytes of UTF-8
 */
import { endianness } from 'node:os';
import { deflateRaw, inflateRawSync } from 'node:zlib';
import type { AgentClient, RemoteEntry } from './agent-client.js';
import { ProtocolError } from './errors.js';
import { LIST_COMPARE_CAPABILITY, MAX_LIST_PATHS, MAX_PATH_BYTES, type EntryType } from './messages.js';
import { wirePathComponents } from './paths.js';
import type { SourceEntry, SourceTree } from './tree.js';

export const LISTING_MAGIC = 0x64636c31;
/** Entries in one compared listing; a larger tree is listed the old way. */
export const MAX_LISTING_ENTRIES = 4_000_000;
/** Bytes of one encoded listing (what an agent buffers before comparing). */
export const MAX_LISTING_BYTES = 256 * 1024 * 1024;

/** A decoded listing: one array per column, indexed like the source entries. */
export interface Listing {
  paths: string[];
  types: EntryType[];
  sizes: number[];
  mtimes: Float64Array;
  modes: Uint16Array;
  targets: (string | undefined)[];
  /** Entry index by path. */
  index: Map<string, number>;
}

const TYPE_BYTE: Record<EntryType, number> = { f: 0x66, d: 0x64, l: 0x6c };

/** The fixed-width columns are big-endian, and typed arrays in this machine's order. */
const LITTLE_ENDIAN = endianness() === 'LE';

const encoded = new WeakMap<readonly SourceEntry[], Uint8Array>();

/** The listing of `entries` (a scan's entries), encoded once per array however many agents get it. */
export function encodeListing(entries: readonly SourceEntry[]): Uint8Array {
  const cached = encoded.get(entries);
  if (cached) return cached;
  const n = entries.length;
  // Every path in one conversion, NUL-separated (no wire path holds a NUL): a Buffer per path cost
  // more than the rest of the encoding.
  const joined = Buffer.from(joinPaths(entries), 'utf8');
  const targetBytes = linkTargets(entries);
  // Upper bound: fixed columns, 8-byte varints, every path and target whole.
  let bound = 8 + n * 11 + n * 8 + n * 16 + joined.length;
  for (const t of targetBytes) bound += 8 + t.length;
  const w = new Writer(Buffer.allocUnsafe(bound));
  w.at = w.out.writeUInt32BE(LISTING_MAGIC, 0);
  w.at = w.out.writeUInt32BE(n, w.at);
  // Each column by a function of its own, the fixed-width ones byte-swapped natively (see the
  // decoder's note on code V8 has not optimized yet: a listing is encoded once per run).
  writeTypes(w, entries);
  w.column(modesOf(entries), 'swap16');
  w.column(mtimesOf(entries), 'swap64');
  writeSizes(w, entries);
  writePaths(w, joined, n);
  for (const t of targetBytes) {
    w.varint(t.length);
    w.at += t.copy(w.out, w.at);
  }
  const bytes = new Uint8Array(w.out.buffer, w.out.byteOffset, w.at);
  encoded.set(entries, bytes);
  return bytes;
}

/** A write position in an encoding listing. */
class Writer {
  at = 0;

  constructor(readonly out: Buffer) {}

  varint(v: number): void {
    const out = this.out;
    while (v >= 0x80) {
      out[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[this.at++] = v;
  }

  /** A column of values in this machine's byte order, written big-endian. */
  column(values: Uint16Array | Float64Array, swap: 'swap16' | 'swap64'): void {
    const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    if (LITTLE_ENDIAN) bytes[swap]();
    this.at += bytes.copy(this.out, this.at);
  }
}

// Plain loops: a callback per entry (map, Array.from) runs uncompiled for most of them.

function joinPaths(entries: readonly SourceEntry[]): string {
  const paths: string[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) paths[i] = entries[i].path;
  return paths.join('\0');
}

function linkTargets(entries: readonly SourceEntry[]): Buffer[] {
  const targets: Buffer[] = [];
  for (let i = 0; i < entries.length; i++) if (entries[i].type === 'l') targets.push(Buffer.from(entries[i].linkTarget ?? '', 'utf8'));
  return targets;
}

function modesOf(entries: readonly SourceEntry[]): Uint16Array {
  const modes = new Uint16Array(entries.length);
  for (let i = 0; i < entries.length; i++) modes[i] = entries[i].mode & 0o7777;
  return modes;
}

function mtimesOf(entries: readonly SourceEntry[]): Float64Array {
  const mtimes = new Float64Array(entries.length);
  for (let i = 0; i < entries.length; i++) mtimes[i] = entries[i].mtimeMs;
  return mtimes;
}

function writeTypes(w: Writer, entries: readonly SourceEntry[]): void {
  const out = w.out;
  for (let i = 0, at = w.at; i < entries.length; i++) {
    const type = entries[i].type;
    out[at + i] = type === 'f' ? TYPE_BYTE.f : type === 'd' ? TYPE_BYTE.d : TYPE_BYTE.l;
  }
  w.at += entries.length;
}

function writeSizes(w: Writer, entries: readonly SourceEntry[]): void {
  for (let i = 0; i < entries.length; i++) if (entries[i].type === 'f') w.varint(entries[i].size);
}

/** The paths of `joined` (n of them, NUL-separated), each as the bytes it shares with the one before and the rest. */
function writePaths(w: Writer, joined: Buffer, n: number): void {
  const out = w.out;
  // The previous path is joined[prevStart, prevEnd), this one joined[start, end).
  let prevStart = 0;
  let prevEnd = 0;
  for (let i = 0, start = 0; i < n; i++) {
    const nul = i === n - 1 ? -1 : joined.indexOf(0, start);
    const end = nul === -1 ? joined.length : nul;
    const length = end - start;
    const limit = Math.min(prevEnd - prevStart, length);
    let shared = 0;
    while (shared < limit && joined[prevStart + shared] === joined[start + shared]) shared++;
    // Most of these are one byte.
    if (shared < 0x80) out[w.at++] = shared;
    else w.varint(shared);
    if (length - shared < 0x80) out[w.at++] = length - shared;
    else w.varint(length - shared);
    // Front-coded suffixes are short: a loop beats Buffer#copy's per-call set-up.
    let at = w.at;
    for (let j = start + shared; j < end; j++) out[at++] = joined[j];
    w.at = at;
    prevStart = start;
    prevEnd = end;
    start = end + 1;
  }
}

/** Bytes of checked paths turned into strings at once (at least one longest path and its NUL). */
const PATH_BATCH_BYTES = 256 * 1024;

/**
 * Whether `length` bytes of `bytes` are a wire path that wirePathComponents accepts: no NUL, no
 * empty, "." or ".." component (so no leading or trailing "/"). Checked on the bytes, since "/", "."
 * and NUL are ASCII and never part of a UTF-8 sequence; at most MAX_PATH_BYTES long by the caller.
 */
function plainWirePath(bytes: Uint8Array, length: number): boolean {
  let start = 0;
  for (let j = 0; j <= length; j++) {
    const b = j < length ? bytes[j] : 0x2f;
    if (b === 0) return false;
    if (b !== 0x2f) continue;
    const size = j - start;
    if (size === 0) return false;
    if (bytes[start] === 0x2e && (size === 1 || (size === 2 && bytes[start + 1] === 0x2e))) return false;
    start = j + 1;
  }
  return true;
}

function bad(message: string, details: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', `compared listing: ${message}`, details);
}

/** A read position in a listing's bytes, with its checks. */
class Reader {
  readonly buf: Buffer;
  at = 0;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Throws unless `count` more bytes are left. */
  need(count: number, what: string): void {
    const left = this.buf.length - this.at;
    if (count > left) throw bad(`truncated in ${what} (${count} bytes needed at offset ${this.at}, ${left} left)`, { offset: this.at });
  }

  varint(what: string): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at === buf.length) this.need(1, what); // throws
      const b = buf[this.at++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    throw bad(`${what}: varint too long or too large at offset ${this.at}`, { offset: this.at });
  }

  /**
   * The next `length` bytes (a column of big-endian values) copied into a buffer of their own, in
   * this machine's byte order, for a typed array over it.
   */
  column(length: number, swap: 'swap16' | 'swap64'): ArrayBuffer {
    const column = Buffer.from(new ArrayBuffer(length));
    this.buf.copy(column, 0, this.at, this.at + length);
    this.at += length;
    if (LITTLE_ENDIAN) column[swap]();
    return column.buffer as ArrayBuffer;
  }
}

/*
 * Each column is read by a function of its own. A listing is decoded once per run, by code V8 has
 * not optimized yet: a small function's loop is compiled on the spot (on-stack replacement), while
 * one function holding every loop was compiled whole again at each loop and thrown away at the next.
 * The fixed-width columns are copied out whole and byte-swapped natively.
 */

function readTypes(r: Reader, n: number): EntryType[] {
  const buf = r.buf;
  const types: EntryType[] = new Array(n);
  for (let i = 0, at = r.at; i < n; i++) {
    const b = buf[at + i];
    const type: EntryType | undefined = b === 0x66 ? 'f' : b === 0x64 ? 'd' : b === 0x6c ? 'l' : undefined;
    if (!type) throw bad(`entry ${i}: type byte 0x${b.toString(16)}`, { entry: i });
    types[i] = type;
  }
  r.at += n;
  return types;
}

function readModes(r: Reader, n: number): Uint16Array {
  const modes = new Uint16Array(r.column(2 * n, 'swap16'));
  for (let i = 0; i < n; i++) {
    if (modes[i] > 0o7777) throw bad(`entry ${i}: mode ${modes[i].toString(8)} beyond 7777`, { entry: i });
  }
  return modes;
}

function readMtimes(r: Reader, n: number): Float64Array {
  const mtimes = new Float64Array(r.column(8 * n, 'swap64'));
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(mtimes[i])) throw bad(`entry ${i}: mtime is not finite`, { entry: i });
  }
  return mtimes;
}

function readSizes(r: Reader, types: readonly EntryType[]): number[] {
  const sizes: number[] = new Array(types.length).fill(0);
  for (let i = 0; i < types.length; i++) if (types[i] === 'f') sizes[i] = r.varint('sizes');
  return sizes;
}

/**
 * In paths joined by NULs, a component that is empty, "." or "..": this also matches an empty path
 * and a leading or trailing "/". "/", "." and NUL are ASCII, never part of a UTF-8 sequence, so the
 * decoded text shows them where the bytes have them.
 */
const BAD_COMPONENT = /(?:^|[\0/])\.{0,2}(?=[\0/]|$)/;

/** The paths, checked, and the index of each (a path listed twice is refused). */
function readPaths(r: Reader, n: number): { paths: string[]; index: Map<string, number> } {
  const buf = r.buf;
  const paths: string[] = new Array(n);
  const index = new Map<string, number>();
  // The previous path's bytes, kept in one buffer that each entry extends from its shared prefix.
  const current = Buffer.allocUnsafe(MAX_PATH_BYTES);
  let currentLength = 0;
  // Paths wait in `batch`, each followed by a NUL, and are checked and become strings a batch at a
  // time: one toString, one split and one search for a bad component cost less than a toString and
  // a byte loop per path. `lengths` keeps each one's length, for the slow path.
  const batch = Buffer.allocUnsafe(PATH_BATCH_BYTES);
  const lengths = new Int32Array(PATH_BATCH_BYTES >> 1);
  let batchLength = 0;
  let batchCount = 0;
  let batchFirst = 0;
  const flush = () => {
    const count = batchCount;
    const first = batchFirst;
    if (count === 0) return;
    // Emptied first: a fault found here ends the loop, and the `finally` below must not check it again.
    batchFirst += count;
    batchCount = 0;
    const text = batch.toString('utf8', 0, batchLength - 1);
    batchLength = 0;
    const parts = text.split('\0');
    // A path holding a NUL splits in two; either failure is found and reported entry by entry.
    if (parts.length === count && !BAD_COMPONENT.test(text)) indexPaths(parts, first, paths, index);
    else checkEach(batch, lengths, count, first, paths, index);
  };
  try {
    for (let i = 0; i < n; i++) {
      // Most of these varints are one byte: read inline.
      let shared = buf[r.at];
      if (shared < 0x80) r.at++;
      else shared = r.varint('paths');
      let length = buf[r.at];
      if (length < 0x80) r.at++;
      else length = r.varint('paths');
      if (shared > currentLength) throw bad(`entry ${i}: shares ${shared} bytes with a path of ${currentLength}`, { entry: i });
      if (shared + length > MAX_PATH_BYTES) throw bad(`entry ${i}: path longer than ${MAX_PATH_BYTES} bytes`, { entry: i });
      r.need(length, 'paths');
      // Byte loops: paths are short, and Buffer#copy's per-call set-up cost more than the copying.
      for (let j = 0, at = r.at; j < length; j++) current[shared + j] = buf[at + j];
      r.at += length;
      currentLength = shared + length;
      if (currentLength === 0) throw bad(`entry ${i}: the root itself`, { entry: i });
      if (batchLength + currentLength + 1 > batch.length) flush();
      for (let j = 0; j < currentLength; j++) batch[batchLength + j] = current[j];
      batchLength += currentLength;
      batch[batchLength++] = 0;
      lengths[batchCount++] = currentLength;
    }
  } finally {
    // Entries before a failure are checked first (a duplicate among them is reported, as it comes first).
    flush();
  }
  return { paths, index };
}

/** Files the paths of entries `first`... into `paths` and `index`; a path listed twice is refused. */
function indexPaths(text: string[], first: number, paths: string[], index: Map<string, number>): void {
  for (let k = 0; k < text.length; k++) {
    const i = first + k;
    const path = text[k];
    index.set(path, i);
    if (index.size !== i + 1) throw bad(`entry ${i}: ${JSON.stringify(path)} listed twice`, { entry: i });
    paths[i] = path;
  }
}

/**
 * indexPaths for a batch that failed the quick check: each path on its own, in order, so that the
 * first bad entry is reported, and a duplicate before it first.
 */
function checkEach(batch: Buffer, lengths: Int32Array, count: number, first: number, paths: string[], index: Map<string, number>): void {
  for (let k = 0, at = 0; k < count; k++) {
    const bytes = batch.subarray(at, at + lengths[k]);
    at += lengths[k] + 1;
    const path = bytes.toString('utf8');
    if (!plainWirePath(bytes, bytes.length)) refusePath(path, first + k);
    indexPaths([path], first + k, paths, index);
  }
}

/** Throws for entry `i`'s path, which plainWirePath refused: wirePathComponents says why. */
function refusePath(path: string, i: number): never {
  try {
    wirePathComponents(path);
  } catch (error) {
    throw bad(`entry ${i}: ${(error as Error).message}`, { entry: i, code: (error as { code?: string }).code });
  }
  throw bad(`entry ${i}: malformed path ${JSON.stringify(path)}`, { entry: i });
}

function readTargets(r: Reader, types: readonly EntryType[]): (string | undefined)[] {
  const targets: (string | undefined)[] = new Array(types.length).fill(undefined);
  for (let i = 0; i < types.length; i++) {
    if (types[i] !== 'l') continue;
    const length = r.varint('link targets');
    if (length > MAX_PATH_BYTES) throw bad(`entry ${i}: link target longer than ${MAX_PATH_BYTES} bytes`, { entry: i });
    r.need(length, 'link targets');
    targets[i] = r.buf.toString('utf8', r.at, r.at + length);
    r.at += length;
  }
  return targets;
}

/**
 * Decodes and checks a listing from the wire: every count and length against what is left and its
 * cap, every path as a wire path (not the root), no path twice, nothing after the last column.
 * Throws ProtocolError BAD_MESSAGE.
 */
export function decodeListing(bytes: Uint8Array): Listing {
  const r = new Reader(bytes);
  r.need(8, 'header');
  const magic = r.buf.readUInt32BE(0);
  if (magic !== LISTING_MAGIC) throw bad(`bad magic 0x${magic.toString(16)}`);
  const n = r.buf.readUInt32BE(4);
  r.at = 8;
  if (n > MAX_LISTING_ENTRIES) throw bad(`${n} entries, more than ${MAX_LISTING_ENTRIES}`, { n });
  r.need(n * 11, 'fixed columns');
  const types = readTypes(r, n);
  const modes = readModes(r, n);
  const mtimes = readMtimes(r, n);
  const sizes = readSizes(r, types);
  const { paths, index } = readPaths(r, n);
  const targets = readTargets(r, types);
  const trailing = r.buf.length - r.at;
  if (trailing !== 0) throw bad(`${trailing} bytes after the last column`, { trailing });
  return { paths, types, sizes, mtimes, modes, targets, index };
}

const deflated = new WeakMap<readonly SourceEntry[], Promise<Uint8Array>>();

/**
 * The listing of `entries`, deflated (raw deflate, level 1), made once per array on the thread pool:
 * what a compare sends an agent that takes it so. Paths share prefixes and mtimes their high bytes,
 * so 20,000 entries come to about a third of their 470 KB, for ~7 ms of deflate, once however many
 * agents get it, against the encryption, the socket and the remote sshd's work for every byte.
 */
export function deflatedListing(entries: readonly SourceEntry[]): Promise<Uint8Array> {
  let packed = deflated.get(entries);
  if (!packed) {
    const bytes = encodeListing(entries);
    packed = new Promise<Uint8Array>((resolve, reject) =>
      deflateRaw(bytes, { level: 1 }, (error, out) => (error ? reject(error) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.length)))),
    );
    packed.catch(() => {}); // a failure is met by the compare that awaits it
    deflated.set(entries, packed);
  }
  return packed;
}

/**
 * A deflated listing's bytes, which must inflate to exactly `raw` bytes: anything else (not raw
 * deflate, cut short, inflating past `raw`) is a BAD_MESSAGE. `raw` is capped by the caller.
 */
export function inflateListing(packed: Uint8Array, raw: number): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = inflateRawSync(packed, { maxOutputLength: Math.max(1, raw) });
  } catch (error) {
    throw bad(`deflated listing is invalid or inflates past ${raw} bytes: ${(error as Error).message}`, { raw });
  }
  if (bytes.length !== raw) throw bad(`deflated listing inflates to ${bytes.length} bytes, ${raw} announced`, { raw, inflated: bytes.length });
  return bytes;
}

/** Bytes of the bitmap of `n` entries: bit i (byte i >> 3, bit i & 7, least significant first). */
export function bitmapBytes(n: number): number {
  return Math.ceil(n / 8);
}

export function bitIsSet(bitmap: Uint8Array, i: number): boolean {
  return (bitmap[i >> 3] & (1 << (i & 7))) !== 0;
}

const indexes = new WeakMap<readonly SourceEntry[], Map<string, number>>();

/** Source entry index by path, made once per entries array. */
export function sourceIndex(entries: readonly SourceEntry[]): Map<string, number> {
  let index = indexes.get(entries);
  if (!index) {
    // A loop, not new Map(entries.map(...)): no pair array per entry (20,000 of them took ~80 ms).
    index = new Map();
    for (let i = 0; i < entries.length; i++) index.set(entries[i].path, i);
    indexes.set(entries, index);
  }
  return index;
}

/** What planning needs of a destination: its entries, and with a compared listing the unchanged bitmap. */
export interface RemoteListing {
  entries: RemoteEntry[];
  /** Bit i set: the destination holds `tree.entries[i]` unchanged (it is then not in `entries`). */
  unchanged?: Uint8Array;
}

/** Path characters of a scope sent in one compare request (as for `list`). */
const COMPARE_PATHS_BYTES = 32 * 1024;

/**
 * The destination's side of a plan. An agent with `list-compare` compares the source listing itself
 * and sends back only what differs; otherwise (an older agent, --checksum, which needs every
 * same-size file, or a scope too long for one request) the whole listing, as `list` gives it.
 * `extraneous`: whether entries that are not in the source matter (--delete).
 */
export async function listRemote(
  client: AgentClient,
  tree: SourceTree,
  options: { extraneous: boolean; checksum?: boolean; owner?: boolean; chown?: object; ignoreTimes?: boolean },
): Promise<RemoteListing> {
  const scope = tree.scope;
  const capable = client.info?.capabilities.includes(LIST_COMPARE_CAPABILITY) ?? false;
  if (!capable || !comparable(tree, options)) return { entries: await client.list(scope) };
  return client.compare(tree.entries, { paths: scope, extraneous: options.extraneous });
}

/**
 * Encodes the listing a compare will send (encodeListing keeps it for those entries) and starts its
 * deflate as soon as the scan is done: a sync or fan-out then does both while it waits for the
 * agents' hellos, not after. Only where listRemote would compare (not with --checksum, not beyond
 * MAX_LISTING_ENTRIES); an agent without the capability is listed the old way, and the bytes go
 * unused.
 */
export function encodeAhead(tree: SourceTree, options: { checksum?: boolean; owner?: boolean; chown?: object }): void {
  if (comparable(tree, options)) void deflatedListing(tree.entries);
}

/** Whether a capable agent is sent this tree as a compared listing (else it is listed): see listRemote. */
/**
 * Whether a run's plan needs the destination's whole listing rather than a compared one: with
 * --checksum (content decides), with --owner or --chown (a compared listing carries no owners, and
 * the plan compares the destination's).
 */
export function needsFullListing(options: { checksum?: boolean; owner?: boolean; chown?: object; ignoreTimes?: boolean }): boolean {
  return options.checksum === true || options.owner === true || options.chown !== undefined || options.ignoreTimes === true;
}

/** Whether the agent can compare this tree's listing: unless the run needs the full one, or beyond the limits. */
function comparable(tree: SourceTree, options: { checksum?: boolean; owner?: boolean; chown?: object; ignoreTimes?: boolean }): boolean {
  const scope = tree.scope;
  const fits = scope === undefined || (scope.length <= MAX_LIST_PATHS && scope.reduce((n, p) => n + p.length, 0) <= COMPARE_PATHS_BYTES);
  return !needsFullListing(options) && fits && tree.entries.length <= MAX_LISTING_ENTRIES;
}

/** Whether a compared listing says the destination holds source entry `path` unchanged. */
export function heldUnchanged(listing: RemoteListing, tree: SourceTree, path: string): boolean {
  if (!listing.unchanged) return false;
  const i = sourceIndex(tree.entries).get(path);
  return i !== undefined && bitIsSet(listing.unchanged, i);
}
