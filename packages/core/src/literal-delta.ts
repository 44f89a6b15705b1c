/**
 * Deltas of new files: the native delta that makes data from nothing is its header, LITERALs and
 * END, with no signature to match against and no window to scan. For a sender of many new files,
 * the delta builder's window and growing output buffer only copied each file twice more.
 */
import { NATIVE_DELTA_HEADER_LENGTH } from './constants.js';
import {
  encodeLiteralDelta,
  encodeNativeEnd,
  encodeNativeHeader,
  encodeNativeLiteralHead,
  literalDeltaLength,
  nativeEndLength,
  nativeLiteralHeadLength,
} from './delta-format.js';
import type { DeltaStats } from './delta.js';
import { DeltaError } from './errors.js';
import { createFileHasher, fileHash as hashOf, type FileHashKind, type FileHasher } from './file-hash.js';

/**
 * The native delta that makes `data` from nothing (a new file), in one buffer of its exact size: one
 * literal, so up to 1 MiB the very bytes `delta()` gives against an empty native signature (beyond,
 * delta() cuts its literals per MiB of window; both rebuild `data`). For a sender of many small new
 * files, which would otherwise hold each file twice (the builder's window and the encoder's output).
 */
export function literalDelta(data: Uint8Array, fileHash: FileHashKind = 'sha256'): Uint8Array {
  const out = new Uint8Array(literalDeltaLength(data.length, fileHash));
  writeLiteralDelta(data, out, 0, fileHash);
  return out;
}

/**
 * Writes literalDelta(data, fileHash) into `out` at `offset` and returns its length
 * (`literalDeltaLength(data.length, fileHash)` bytes, which `out` must have room for): a sender of
 * many small new files can put them side by side in one buffer, with no buffer of their own.
 */
export function writeLiteralDelta(data: Uint8Array, out: Uint8Array, offset: number, fileHash: FileHashKind = 'sha256'): number {
  return encodeLiteralDelta(data, fileHash, hashOf(fileHash, data), out, offset);
}

/**
 * literalDelta for a new file read in pieces, with DeltaBuilder's interface: `update(piece)` gives the
 * delta bytes for each piece as it is read (the header first, then the piece as one LITERAL) in a
 * buffer of their own, the piece copied once (it may sit in a read buffer used again); `final()`
 * gives the END with the target length and whole-file hash. One LITERAL per piece, where
 * literalDelta has one for the whole file: the same data.
 */
export class LiteralDeltaStream {
  readonly stats: DeltaStats = { targetLength: 0, literalBytes: 0, literalCommands: 0, copiedBytes: 0, copyCommands: 0 };
  private readonly hash: FileHasher;
  private started = false;
  private finished = false;

  constructor(private readonly fileHash: FileHashKind = 'sha256') {
    this.hash = createFileHasher(fileHash);
  }

  update(piece: Uint8Array): Uint8Array {
    if (this.finished) throw new DeltaError('FINISHED', 'delta already finished', {});
    const n = piece.length;
    const out = new Uint8Array((this.started ? 0 : NATIVE_DELTA_HEADER_LENGTH) + (n > 0 ? nativeLiteralHeadLength(n) + n : 0));
    let at = this.started ? 0 : encodeNativeHeader(0, out, 0, this.fileHash);
    this.started = true;
    if (n > 0) {
      at = encodeNativeLiteralHead(n, out, at);
      out.set(piece, at);
      this.hash.update(piece);
      this.stats.targetLength += n;
      this.stats.literalBytes += n;
      this.stats.literalCommands++;
    }
    return out;
  }

  final(): Uint8Array {
    if (this.finished) throw new DeltaError('FINISHED', 'delta already finished', {});
    this.finished = true;
    const out = new Uint8Array((this.started ? 0 : NATIVE_DELTA_HEADER_LENGTH) + nativeEndLength(this.fileHash));
    const at = this.started ? 0 : encodeNativeHeader(0, out, 0, this.fileHash);
    this.started = true;
    encodeNativeEnd(this.stats.targetLength, this.hash.digest(), out, at);
    return out;
  }
}
