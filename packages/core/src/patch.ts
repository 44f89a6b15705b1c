/**
 * Patch: apply a delta to a basis. The delta is parsed incrementally; COPY reads the basis at random
 * offsets through `BasisReader` (a buffer, a file handle, later a remote handle), in pieces of at most
 * 1 MiB so a long copy never needs a long buffer. Every COPY is bounds-checked, the output can be
 * capped, and a native delta's target length and whole-file hash are checked when its END arrives.
 */
import { timingSafeEqual } from 'node:crypto';
import { DeltaDecoder, type DeltaCommand } from './delta-format.js';
import { PatchError } from './errors.js';
import { createFileHasher, fileHash, type FileHashKind, type FileHasher } from './file-hash.js';

/** Random access to the basis. `read` returns up to `length` bytes at `position` (fewer only at EOF). */
export interface BasisReader {
  /** Length of the basis if known; COPY commands beyond it fail before any read. */
  readonly size?: number;
  read(position: number, length: number): Uint8Array | Promise<Uint8Array>;
}

/** A file handle as node:fs/promises gives it, described structurally so core needs no node:fs. */
export interface FileHandleLike {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export interface PatchOptions {
  /** Fail with OUTPUT_LIMIT before the output would exceed this many bytes. */
  maxOutputLength?: number;
  /**
   * For a native delta: require the END's target length and whole-file hash to match the output
   * (default true). A delta whose END carries XXH3-128 needs `loadFileHashes()` first.
   * rdiff deltas carry no hash; check the result by other means.
   */
  verify?: boolean;
  /**
   * patchStream only: hand out literal data as views into the delta's chunks, not copies (default
   * false). For a consumer that is done with each output chunk before it asks for the next, such as
   * one that writes it out at once: it saves a copy of every literal byte.
   */
  viewLiterals?: boolean;
}

/** What a finished patch wrote and checked. */
export interface PatchResult {
  format: 'native' | 'rdiff';
  outputLength: number;
  /** The kind of `digest`: the native delta's whole-file hash, SHA-256 for an rdiff delta. */
  fileHash: FileHashKind;
  /** The output's hash of that kind (computed for both formats). */
  digest: Uint8Array;
  /** True when a native END's length and hash were compared and matched. */
  verified: boolean;
}

const COPY_PIECE = 1 << 20;

/** A basis held in memory. */
export function bufferBasis(data: Uint8Array): BasisReader {
  return {
    size: data.length,
    read: (position, length) => data.subarray(position, Math.min(data.length, position + length)),
  };
}

/** A basis read from an open file (e.g. `await fs.promises.open(path)`); pass its size from `stat()`. */
export function fileHandleBasis(handle: FileHandleLike, size?: number): BasisReader {
  return {
    size,
    async read(position, length) {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(out, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? out : out.subarray(0, filled);
    },
  };
}

/**
 * The state of one patch: the delta decoder, the output count and hash, the checks. Shared by the
 * one-shot and streaming forms; it never reads the basis itself.
 */
class PatchState {
  readonly decoder = new DeltaDecoder();
  /**
   * The output hashed as it is written, made at the first write (the delta's header, read by then,
   * names the kind); never when the output is kept whole (`kept`).
   */
  private hash: FileHasher | undefined;
  outputLength = 0;
  verified = false;
  /** The output's hash, once taken (at a native END): nothing is written after the END. */
  private digest: Uint8Array | undefined;

  /**
   * `kept`: the caller keeps every piece written, unchanged, until the patch is over (patchPieces),
   * so they are hashed once at the end; a file patched in memory is most often one piece, hashed
   * in one call.
   */
  constructor(
    private readonly basisSize: number | undefined,
    private readonly options: PatchOptions,
    private readonly kept?: readonly Uint8Array[],
  ) {}

  /** The whole-file hash of this delta: its END's kind, SHA-256 for rdiff. */
  private get fileHash(): FileHashKind {
    return this.decoder.fileHash ?? 'sha256';
  }

  /** Accounts for `n` more output bytes, failing first if that passes the limit. */
  reserveOutput(n: number): void {
    const max = this.options.maxOutputLength;
    if (max !== undefined && this.outputLength + n > max) {
      throw new PatchError('OUTPUT_LIMIT', `output would exceed the limit of ${max} bytes`, {
        limit: max,
        outputLength: this.outputLength + n,
      });
    }
  }

  wrote(bytes: Uint8Array): void {
    if (this.kept === undefined) (this.hash ??= createFileHasher(this.fileHash)).update(bytes);
    this.outputLength += bytes.length;
  }

  /** The hash of everything written (taken once: nothing is written after it). */
  private outputDigest(): Uint8Array {
    if (this.digest !== undefined) return this.digest;
    const kept = this.kept;
    if (kept !== undefined && kept.length === 1) return (this.digest = fileHash(this.fileHash, kept[0]));
    const hash = this.hash ?? createFileHasher(this.fileHash);
    if (kept !== undefined) for (const piece of kept) hash.update(piece);
    return (this.digest = hash.digest());
  }

  /** Validates a COPY before any basis read. */
  checkCopy(offset: number, length: number): void {
    const end = offset + length;
    if (!Number.isSafeInteger(end) || (this.basisSize !== undefined && end > this.basisSize)) {
      throw copyOutOfBounds(offset, length, this.basisSize);
    }
    if (this.decoder.format === 'native' && this.decoder.basisLength !== undefined && end > this.decoder.basisLength) {
      throw copyOutOfBounds(offset, length, this.decoder.basisLength);
    }
    this.reserveOutput(length);
  }

  checkHeader(): void {
    const declared = this.decoder.basisLength;
    if (this.decoder.format === 'native' && declared !== undefined && this.basisSize !== undefined && declared !== this.basisSize) {
      throw new PatchError('BASIS_MISMATCH', `delta was made against a basis of ${declared} bytes, this one has ${this.basisSize}`, {
        expected: declared,
        actual: this.basisSize,
      });
    }
  }

  end(command: Extract<DeltaCommand, { type: 'end' }>): void {
    if (command.targetLength === undefined || this.options.verify === false) return;
    if (command.targetLength !== this.outputLength) {
      throw new PatchError('LENGTH_MISMATCH', `patched ${this.outputLength} bytes, the delta says ${command.targetLength}`, {
        expected: command.targetLength,
        actual: this.outputLength,
      });
    }
    const actual = this.outputDigest();
    const expected = command.digest;
    if (!expected || expected.length !== actual.length || !timingSafeEqual(actual, expected)) {
      throw new PatchError('HASH_MISMATCH', `patched output does not have the ${this.fileHash} the delta carries (wrong basis?)`, {
        fileHash: this.fileHash,
        expected: Buffer.from(expected ?? []).toString('hex'),
        actual: Buffer.from(actual).toString('hex'),
      });
    }
    this.verified = true;
  }

  result(): PatchResult {
    this.decoder.finish();
    return {
      format: this.decoder.format ?? 'rdiff',
      outputLength: this.outputLength,
      fileHash: this.fileHash,
      digest: new Uint8Array(this.outputDigest()),
      verified: this.verified,
    };
  }
}

function copyOutOfBounds(offset: number, length: number, basisLength: number | undefined): PatchError {
  return new PatchError(
    'COPY_OUT_OF_BOUNDS',
    `COPY of ${length} bytes at offset ${offset} is beyond the basis (${basisLength ?? 'unknown'} bytes)`,
    { offset, length, basisLength },
  );
}

/**
 * Applies a delta to a basis held in memory. Safe on untrusted deltas: malformed, truncated or
 * out-of-bounds input raises `PatchError`; pass `maxOutputLength` so a small delta cannot make a
 * huge output (a COPY run may repeat the basis without limit).
 */
export function applyDelta(basis: Uint8Array, delta: Uint8Array, options: PatchOptions = {}): Uint8Array {
  const { pieces, result } = patchPieces(basis, delta, options);
  const out = new Uint8Array(result.outputLength);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** The output of `patchPieces`: its pieces in order, and what the patch wrote and checked. */
export interface PatchedPieces {
  pieces: Uint8Array[];
  result: PatchResult;
}

/**
 * `applyDelta` without joining the output: the pieces are views into `basis` and `delta` (valid as
 * long as those are), ready for one vectored write, and the result says whether a native END was
 * verified. Same safety notes as `applyDelta`.
 */
export function patchPieces(basis: Uint8Array, delta: Uint8Array, options: PatchOptions = {}): PatchedPieces {
  const pieces: Uint8Array[] = [];
  const state = new PatchState(basis.length, options, pieces);
  state.decoder.push(delta);
  let headerChecked = false;
  for (let command = state.decoder.next(); command; command = state.decoder.next()) {
    if (!headerChecked) {
      state.checkHeader();
      headerChecked = true;
    }
    if (command.type === 'literal') {
      state.reserveOutput(command.data.length);
      state.wrote(command.data);
      pieces.push(command.data);
    } else if (command.type === 'copy') {
      state.checkCopy(command.offset, command.length);
      const data = basis.subarray(command.offset, command.offset + command.length);
      state.wrote(data);
      pieces.push(data);
    } else {
      state.end(command);
    }
  }
  return { pieces, result: state.result() };
}

/**
 * Applies a delta arriving as a stream of chunks, yielding output chunks of at most 1 MiB for copies
 * (literals are passed through as they arrive). Resolves `result` after the last chunk; the caller
 * should only make the output live once the generator has finished without error. Same safety
 * notes as `applyDelta`.
 */
export async function* patchStream(
  basis: BasisReader,
  delta: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: PatchOptions = {},
): AsyncGenerator<Uint8Array, PatchResult> {
  const state = new PatchState(basis.size, options);
  let headerChecked = false;
  for await (const chunk of delta) {
    state.decoder.push(chunk);
    for (let command = state.decoder.next(); command; command = state.decoder.next()) {
      if (!headerChecked) {
        state.checkHeader();
        headerChecked = true;
      }
      if (command.type === 'literal') {
        state.reserveOutput(command.data.length);
        // The decoder's view is into the caller's chunk; copied so the consumer may keep it, unless
        // it said it does not.
        const data = options.viewLiterals ? command.data : command.data.slice();
        state.wrote(data);
        yield data;
      } else if (command.type === 'copy') {
        state.checkCopy(command.offset, command.length);
        const pieceAt = (done: number) => Math.min(COPY_PIECE, command.length - done);
        const readAhead = (position: number, length: number) => {
          const read = Promise.resolve(basis.read(position, length));
          read.catch(() => {}); // awaited below; a consumer that stops early must not leave it unhandled
          return read;
        };
        // The next piece is read while the consumer writes this one (both may run on I/O threads).
        let reading = readAhead(command.offset, pieceAt(0));
        for (let done = 0; done < command.length; ) {
          const want = pieceAt(done);
          const data = await reading;
          if (data.length !== want) throw copyOutOfBounds(command.offset, command.length, command.offset + done + data.length);
          done += want;
          if (done < command.length) reading = readAhead(command.offset + done, pieceAt(done));
          state.wrote(data);
          yield data;
        }
      } else {
        state.end(command);
      }
    }
  }
  return state.result();
}
