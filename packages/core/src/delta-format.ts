/**
 * Delta files, byte by byte as docs/format.md describes them: an encoder that writes commands and an
 * incremental decoder that reads them back from chunks of any size. All integers are big-endian.
 *   rdiff:  0x72730236 | commands (librsync prototab.c opcodes 0x00-0x54)
 *   native: "DCDL" | version u8 | flags u8 | reserved u16 | basis_len u64 | commands (LEB128 varints)
 *           | END: 0x00 | target_len u64 | whole-file hash (SHA-256, 32 bytes; XXH3-128, 16, with flag 0x01)
 */
import {
  MAX_SAFE_LENGTH,
  NATIVE_DELTA_HEADER_LENGTH,
  NATIVE_DELTA_MAGIC,
  NATIVE_FLAG_XXH128,
  NATIVE_OP_COPY,
  NATIVE_OP_END,
  NATIVE_OP_LITERAL,
  NATIVE_VERSION,
  RS_DELTA_MAGIC,
  RS_OP_COPY_N1_N1,
  RS_OP_COPY_N8_N8,
  RS_OP_END,
  RS_OP_LITERAL_64,
  RS_OP_LITERAL_N1,
  RS_OP_LITERAL_N8,
} from './constants.js';
import { PatchError } from './errors.js';
import { fileHashLength, type FileHashKind } from './file-hash.js';
import type { SignatureFormat } from './signature.js';

const EMPTY = new Uint8Array(0);
const TWO_32 = 0x1_0000_0000;

/** 0..3 for an integer that fits in 1, 2, 4 or 8 bytes (librsync rs_int_len). */
function widthIndex(value: number): number {
  if (value < 0x100) return 0;
  if (value < 0x10000) return 1;
  if (value < TWO_32) return 2;
  return 3;
}

/** Bytes of LEB128 varint `value`. */
function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}

/** Bytes of the native delta that makes `length` bytes from nothing: header, one literal (none for 0), END. */
export function literalDeltaLength(length: number, fileHash: FileHashKind = 'sha256'): number {
  return NATIVE_DELTA_HEADER_LENGTH + (length > 0 ? 1 + varintLength(length) + length : 0) + nativeEndLength(fileHash);
}

/**
 * Writes the native delta that makes `data` (whose whole-file hash of kind `fileHash` is `digest`)
 * from nothing into `out` at `offset`, the bytes DeltaEncoder would write for it; returns its length
 * (literalDeltaLength). `out` must have the room.
 */
export function encodeLiteralDelta(data: Uint8Array, fileHash: FileHashKind, digest: Uint8Array, out: Uint8Array, offset: number): number {
  let at = encodeNativeHeader(0, out, offset, fileHash);
  if (data.length > 0) {
    at = encodeNativeLiteralHead(data.length, out, at);
    out.set(data, at);
    at += data.length;
  }
  return encodeNativeEnd(data.length, digest, out, at) - offset;
}

/** Bytes of a native LITERAL's opcode and length for `length` bytes of data. */
export function nativeLiteralHeadLength(length: number): number {
  return 1 + varintLength(length);
}

/** Bytes of a native END: opcode, target length, whole-file hash. */
export function nativeEndLength(fileHash: FileHashKind): number {
  return 1 + 8 + fileHashLength(fileHash);
}

/** The header's flags byte for deltas whose END carries `fileHash`. */
function nativeFlags(fileHash: FileHashKind): number {
  return fileHash === 'xxh128' ? NATIVE_FLAG_XXH128 : 0;
}

/**
 * Writes the native delta header (against a basis of `basisLength` bytes, its END to carry
 * `fileHash`) at `at`; returns the end.
 */
export function encodeNativeHeader(basisLength: number, out: Uint8Array, at: number, fileHash: FileHashKind = 'sha256'): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(at, NATIVE_DELTA_MAGIC);
  out[at + 4] = NATIVE_VERSION;
  out[at + 5] = nativeFlags(fileHash);
  out[at + 6] = 0; // reserved
  out[at + 7] = 0;
  view.setUint32(at + 8, Math.floor(basisLength / TWO_32)); // u64
  view.setUint32(at + 12, basisLength >>> 0);
  return at + NATIVE_DELTA_HEADER_LENGTH;
}

/** Writes a native LITERAL's opcode and length (its `length` bytes of data follow) at `at`; returns the end. */
export function encodeNativeLiteralHead(length: number, out: Uint8Array, at: number): number {
  out[at++] = NATIVE_OP_LITERAL;
  let v = length;
  while (v >= 0x80) {
    out[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at++] = v;
  return at;
}

/** Writes a native END (target length, whole-file hash) at `at`; returns the end. */
export function encodeNativeEnd(targetLength: number, digest: Uint8Array, out: Uint8Array, at: number): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[at++] = NATIVE_OP_END;
  view.setUint32(at, Math.floor(targetLength / TWO_32));
  view.setUint32(at + 4, targetLength >>> 0);
  at += 8;
  out.set(digest, at);
  return at + digest.length;
}

/** Writes delta commands into a growing buffer; `take()` hands over what was written so far. */
export class DeltaEncoder {
  readonly format: SignatureFormat;
  /** The whole-file hash a native END carries (rdiff deltas carry none). */
  readonly fileHash: FileHashKind;
  private out: Uint8Array;
  private length = 0;

  private readonly capacity: number;

  constructor(format: SignatureFormat, initialCapacity = 1 << 16, fileHash: FileHashKind = 'sha256') {
    this.format = format;
    this.fileHash = fileHash;
    this.capacity = Math.max(64, initialCapacity);
    this.out = new Uint8Array(this.capacity);
  }

  header(basisLength: number): void {
    if (this.format === 'rdiff') {
      this.u32(RS_DELTA_MAGIC);
      return;
    }
    this.u32(NATIVE_DELTA_MAGIC);
    this.reserve(12);
    this.out[this.length++] = NATIVE_VERSION;
    this.out[this.length++] = nativeFlags(this.fileHash);
    this.out[this.length++] = 0; // reserved
    this.out[this.length++] = 0;
    this.u64(basisLength);
  }

  literal(data: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    this.reserve(n + 10);
    if (this.format === 'rdiff') {
      if (n <= RS_OP_LITERAL_64) {
        this.out[this.length++] = n;
      } else {
        const w = widthIndex(n);
        this.out[this.length++] = RS_OP_LITERAL_N1 + w;
        this.uint(n, 1 << w);
      }
    } else {
      this.out[this.length++] = NATIVE_OP_LITERAL;
      this.varint(n);
    }
    this.out.set(data.subarray(start, end), this.length);
    this.length += n;
  }

  copy(offset: number, length: number): void {
    if (length <= 0) return;
    this.reserve(20);
    if (this.format === 'rdiff') {
      const wo = widthIndex(offset);
      const wl = widthIndex(length);
      this.out[this.length++] = RS_OP_COPY_N1_N1 + wo * 4 + wl;
      this.uint(offset, 1 << wo);
      this.uint(length, 1 << wl);
    } else {
      this.out[this.length++] = NATIVE_OP_COPY;
      this.varint(offset);
      this.varint(length);
    }
  }

  /** The END command; the native one carries the target's length and its whole-file hash (`digest`). */
  end(targetLength: number, digest: Uint8Array | undefined): void {
    if (this.format === 'rdiff') {
      this.reserve(1);
      this.out[this.length++] = RS_OP_END;
      return;
    }
    if (digest?.length !== fileHashLength(this.fileHash)) throw new RangeError(`a native END needs the ${this.fileHash} of the output`);
    this.reserve(nativeEndLength(this.fileHash));
    this.out[this.length++] = NATIVE_OP_END;
    this.u64(targetLength);
    this.out.set(digest, this.length);
    this.length += digest.length;
  }

  get pending(): number {
    return this.length;
  }

  /** The bytes written since the last call. */
  take(): Uint8Array {
    if (this.length === 0) return EMPTY;
    let result: Uint8Array;
    if (this.length < this.out.length >>> 2) {
      result = this.out.slice(0, this.length);
    } else {
      // Mostly full: hand the buffer over instead of copying it; the next write allocates anew.
      result = this.out.subarray(0, this.length);
      this.out = EMPTY;
    }
    this.length = 0;
    return result;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.out.length) return;
    const grown = new Uint8Array(Math.max(this.out.length * 2, this.length + n, this.capacity));
    grown.set(this.out.subarray(0, this.length));
    this.out = grown;
  }

  private u32(value: number): void {
    this.reserve(4);
    this.uint(value, 4);
  }

  private u64(value: number): void {
    this.reserve(8);
    this.uint(value, 8);
  }

  /** Big-endian unsigned integer of `width` bytes; `reserve` has been called. */
  private uint(value: number, width: number): void {
    const out = this.out;
    let at = this.length + width;
    let v = value;
    for (let i = 0; i < width; i++) {
      out[--at] = v % 256;
      v = Math.floor(v / 256);
    }
    this.length += width;
  }

  private varint(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.out[this.length++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.out[this.length++] = v;
  }
}

/** One decoded command. A long literal may come as several `literal` pieces. */
export type DeltaCommand =
  | { readonly type: 'literal'; readonly data: Uint8Array }
  | { readonly type: 'copy'; readonly offset: number; readonly length: number }
  | { readonly type: 'end'; readonly targetLength?: number; readonly fileHash?: FileHashKind; readonly digest?: Uint8Array };

const enum State {
  Magic,
  NativeHeader,
  Opcode,
  RdiffParams,
  Varint,
  Literal,
  NativeTrailer,
  Done,
}

/** Longest native varint: 8 bytes hold 56 bits, more than a safe integer. */
const MAX_VARINT_BYTES = 8;

/**
 * Incremental delta parser for both formats (told apart by the magic). `push()` a chunk, then call
 * `next()` until it returns undefined (chunk used up); `finish()` at end of input. Safe on untrusted
 * input: lengths are never used to allocate, every integer is checked to be a safe integer, and any
 * malformed byte raises a `PatchError` (BAD_MAGIC, UNSUPPORTED_VERSION, BAD_COMMAND, VALUE_TOO_LARGE,
 * TRAILING_DATA, or TRUNCATED with `incomplete: true` from `finish()`).
 */
export class DeltaDecoder {
  format: SignatureFormat | undefined;
  /** The basis length a native delta was made against. */
  basisLength: number | undefined;
  /** The whole-file hash a native delta's END carries (from its flags). */
  fileHash: FileHashKind | undefined;
  /** Bytes of delta consumed so far. */
  consumed = 0;

  private chunk: Uint8Array = EMPTY;
  private offset = 0;
  private readonly carry = new Uint8Array(64);
  private carryLength = 0;
  private state = State.Magic;
  private opcode = 0;
  private literalRemaining = 0;
  // Native varint fields being read: which (0 literal length, 1 copy offset, 2 copy length) and partial value.
  private varField = 0;
  private varValue = 0;
  private varScale = 1;
  private varBytes = 0;
  private copyOffset = 0;

  push(chunk: Uint8Array): void {
    if (this.offset < this.chunk.length) throw new Error('DeltaDecoder.push() before next() used up the last chunk');
    if (this.state === State.Done && chunk.length > 0) {
      throw new PatchError('TRAILING_DATA', `data after the end of the delta at byte ${this.consumed}`, {
        offset: this.consumed,
      });
    }
    this.chunk = chunk;
    this.offset = 0;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Throws if the delta has not reached its END command. */
  finish(): void {
    if (this.state !== State.Done) {
      throw new PatchError('TRUNCATED', `delta ends early after ${this.consumed} bytes, before its END command`, {
        incomplete: true,
        consumed: this.consumed,
      });
    }
  }

  next(): DeltaCommand | undefined {
    for (;;) {
      switch (this.state) {
        case State.Magic: {
          const b = this.need(4);
          if (!b) return undefined;
          const magic = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
          if (magic === RS_DELTA_MAGIC) {
            this.format = 'rdiff';
            this.state = State.Opcode;
          } else if (magic === NATIVE_DELTA_MAGIC) {
            this.format = 'native';
            this.state = State.NativeHeader;
          } else {
            throw new PatchError('BAD_MAGIC', `not a delta: magic 0x${magic.toString(16).padStart(8, '0')}`, { magic });
          }
          break;
        }
        case State.NativeHeader: {
          const b = this.need(NATIVE_DELTA_HEADER_LENGTH - 4);
          if (!b) return undefined;
          if (b[0] !== NATIVE_VERSION) {
            throw new PatchError('UNSUPPORTED_VERSION', `unsupported delta version ${b[0]} (expected ${NATIVE_VERSION})`, {
              version: b[0],
            });
          }
          if ((b[1] & ~NATIVE_FLAG_XXH128) !== 0 || b[2] !== 0 || b[3] !== 0) {
            throw new PatchError('BAD_COMMAND', `unknown delta flags 0x${b[1].toString(16)}`, { flags: b[1] });
          }
          this.fileHash = b[1] & NATIVE_FLAG_XXH128 ? 'xxh128' : 'sha256';
          this.basisLength = this.readUint(b, 4, 8, 'basis length');
          this.state = State.Opcode;
          break;
        }
        case State.Opcode: {
          const b = this.need(1);
          if (!b) return undefined;
          const op = b[0];
          this.opcode = op;
          if (this.format === 'rdiff') {
            if (op === RS_OP_END) {
              this.state = State.Done;
              return { type: 'end' };
            }
            if (op <= RS_OP_LITERAL_64) {
              this.literalRemaining = op;
              this.state = State.Literal;
            } else if (op <= RS_OP_COPY_N8_N8) {
              this.state = State.RdiffParams;
            } else {
              throw this.badCommand(op);
            }
          } else if (op === NATIVE_OP_END) {
            this.state = State.NativeTrailer;
          } else if (op === NATIVE_OP_LITERAL || op === NATIVE_OP_COPY) {
            this.startVarint(op === NATIVE_OP_LITERAL ? 0 : 1);
          } else {
            throw this.badCommand(op);
          }
          break;
        }
        case State.RdiffParams: {
          const op = this.opcode;
          if (op <= RS_OP_LITERAL_N8) {
            const width = 1 << (op - RS_OP_LITERAL_N1);
            const b = this.need(width);
            if (!b) return undefined;
            this.literalRemaining = this.readUint(b, 0, width, 'literal length');
            this.state = State.Literal;
            break;
          }
          const code = op - RS_OP_COPY_N1_N1;
          const offsetWidth = 1 << (code >> 2);
          const lengthWidth = 1 << (code & 3);
          const b = this.need(offsetWidth + lengthWidth);
          if (!b) return undefined;
          const offset = this.readUint(b, 0, offsetWidth, 'copy offset');
          const length = this.readUint(b, offsetWidth, lengthWidth, 'copy length');
          this.state = State.Opcode;
          return { type: 'copy', offset, length };
        }
        case State.Varint: {
          const b = this.need(1);
          if (!b) return undefined;
          const byte = b[0];
          this.varValue += (byte & 0x7f) * this.varScale;
          this.varScale *= 128;
          this.varBytes++;
          if (byte & 0x80) {
            if (this.varBytes === MAX_VARINT_BYTES) throw this.tooLarge('varint', this.varValue);
            break;
          }
          const value = this.varValue;
          if (value > MAX_SAFE_LENGTH) throw this.tooLarge('varint', value);
          if (this.varField === 0) {
            this.literalRemaining = value;
            this.state = State.Literal;
          } else if (this.varField === 1) {
            this.copyOffset = value;
            this.startVarint(2);
          } else {
            this.state = State.Opcode;
            return { type: 'copy', offset: this.copyOffset, length: value };
          }
          break;
        }
        case State.Literal: {
          if (this.literalRemaining === 0) {
            this.state = State.Opcode;
            break;
          }
          const available = this.chunk.length - this.offset;
          if (available === 0) return undefined;
          const n = Math.min(available, this.literalRemaining);
          const data = this.chunk.subarray(this.offset, this.offset + n);
          this.offset += n;
          this.consumed += n;
          this.literalRemaining -= n;
          if (this.literalRemaining === 0) this.state = State.Opcode;
          return { type: 'literal', data };
        }
        case State.NativeTrailer: {
          const fileHash = this.fileHash ?? 'sha256';
          const b = this.need(8 + fileHashLength(fileHash));
          if (!b) return undefined;
          const targetLength = this.readUint(b, 0, 8, 'target length');
          const digest = b.slice(8);
          this.state = State.Done;
          return { type: 'end', targetLength, fileHash, digest };
        }
        case State.Done: {
          if (this.offset < this.chunk.length) {
            throw new PatchError('TRAILING_DATA', `data after the end of the delta at byte ${this.consumed}`, {
              offset: this.consumed,
            });
          }
          return undefined;
        }
      }
    }
  }

  /** k bytes as a view (into the chunk, or the carry when they straddle chunks), or undefined. */
  private need(k: number): Uint8Array | undefined {
    const available = this.chunk.length - this.offset;
    if (this.carryLength === 0 && available >= k) {
      const view = this.chunk.subarray(this.offset, this.offset + k);
      this.offset += k;
      this.consumed += k;
      return view;
    }
    const take = Math.min(k - this.carryLength, available);
    this.carry.set(this.chunk.subarray(this.offset, this.offset + take), this.carryLength);
    this.carryLength += take;
    this.offset += take;
    this.consumed += take;
    if (this.carryLength < k) return undefined;
    this.carryLength = 0;
    return this.carry.subarray(0, k);
  }

  private startVarint(field: number): void {
    this.varField = field;
    this.varValue = 0;
    this.varScale = 1;
    this.varBytes = 0;
    this.state = State.Varint;
  }

  private readUint(b: Uint8Array, at: number, width: number, what: string): number {
    let value = 0;
    for (let i = 0; i < width; i++) value = value * 256 + b[at + i];
    if (value > MAX_SAFE_LENGTH) throw this.tooLarge(what, value);
    return value;
  }

  private tooLarge(what: string, value: number): PatchError {
    return new PatchError('VALUE_TOO_LARGE', `${what} ${value} is larger than 2^53 - 1`, { field: what, value });
  }

  private badCommand(op: number): PatchError {
    return new PatchError('BAD_COMMAND', `unknown delta command 0x${op.toString(16)} at byte ${this.consumed - 1}`, {
      opcode: op,
      offset: this.consumed - 1,
    });
  }
}
