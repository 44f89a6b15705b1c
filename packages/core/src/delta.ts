/**
 * Delta generation: roll a window of one block length over the new data, one byte at a time; where
 * the weak sum passes the prefilter and a block with that weak sum also has the window's strong sum,
 * emit COPY (merged with the previous copy when adjacent in the basis), else the byte joins a LITERAL.
 * Streaming: the new data arrives in chunks and the delta leaves in chunks; memory is a buffer of a
 * few blocks (1 MiB at most unless blocks are larger), whatever the new data's length.
 */
import { DeltaEncoder } from './delta-format.js';
import { DeltaError } from './errors.js';
import { createFileHasher, type FileHashKind, type FileHasher } from './file-hash.js';
import { RABINKARP_ADJ, RABINKARP_MULT, RabinKarp, rabinKarpPower, rabinKarpSum } from './rabinkarp.js';
import { ROLLSUM_CHAR_OFFSET, Rollsum, rollsumSum } from './rollsum.js';
import type { Signature } from './signature.js';
import { MAX_CANDIDATES, SignatureIndex, WEAK_MIX } from './signature-index.js';
import { writeStrongSum } from './strong-sum.js';

/** Blocks examined in one bucket at one offset, whatever their weak sums (guards crafted signatures). */
const MAX_CHAIN_STEPS = 4 * MAX_CANDIDATES;
/** The window buffer starts small (many files are small) and doubles up to its full size. */
const INITIAL_BUFFER = 64 * 1024;
/** Merged COPY runs are emitted once they reach this length. */
const COPY_RUN_LIMIT = 8 << 20;
const FULL_BUFFER = 1 << 20;

/**
 * The rolling loops are free functions over typed arrays, not methods: V8 optimizes them as tight
 * loops (measured ~2.5x faster than the same loop inside a method touching `this`). They pass the
 * weak sum in and out through rollState[0]; rollState[1] is 1 when they stopped on a prefilter hit.
 */
const rollState = new Int32Array(2);

/**
 * Slides a RabinKarp window from p (already checked) towards `last`, stopping at the first window
 * whose weak sum passes the prefilter. Returns the window's start.
 */
function rollRabinKarp(
  buf: Uint8Array,
  p: number,
  last: number,
  L: number,
  multL: number,
  prefilter: Int32Array,
  shift: number,
): number {
  const mult = RABINKARP_MULT | 0;
  const adj = RABINKARP_ADJ | 0;
  const mix = WEAK_MIX | 0;
  let h = rollState[0];
  while (p < last) {
    h = (Math.imul(h, mult) + buf[p + L] - Math.imul(multL, buf[p] + adj)) | 0;
    p++;
    const bit = Math.imul(h, mix) >>> shift;
    if ((prefilter[bit >>> 5] & (1 << (bit & 31))) !== 0) {
      rollState[0] = h;
      rollState[1] = 1;
      return p;
    }
  }
  rollState[0] = h;
  rollState[1] = 0;
  return p;
}

/** The same for librsync's rollsum: s1 and s2 are the digest's low and high halves. */
function rollRollsum(buf: Uint8Array, p: number, last: number, L: number, prefilter: Int32Array, shift: number): number {
  const offset = ROLLSUM_CHAR_OFFSET;
  const mix = WEAK_MIX | 0;
  const w0 = rollState[0];
  let s1 = w0 & 0xffff;
  let s2 = (w0 >>> 16) & 0xffff;
  while (p < last) {
    const out = buf[p] + offset;
    s1 = (s1 + buf[p + L] + offset - out) & 0xffff;
    // s2 loses L * (out + CHAR_OFFSET) as `out` leaves the window.
    s2 = (s2 + s1 - Math.imul(L, out)) & 0xffff;
    p++;
    const bit = Math.imul((s2 << 16) | s1, mix) >>> shift;
    if ((prefilter[bit >>> 5] & (1 << (bit & 31))) !== 0) {
      rollState[0] = (s2 << 16) | s1;
      rollState[1] = 1;
      return p;
    }
  }
  rollState[0] = (s2 << 16) | s1;
  rollState[1] = 0;
  return p;
}

export interface DeltaOptions {
  /**
   * Length of the new data if known: sizes the buffers, so deltas of many small files do not
   * allocate (and collect) a full buffer each. Any length still works.
   */
  expectedLength?: number;
  /**
   * The whole-file hash a native delta's END carries (docs/format.md): 'sha256' (the default, read
   * by every deltacast) or 'xxh128' (~3x faster; needs `loadFileHashes()` and a reader that knows
   * the flag). rdiff deltas carry none, and their new data is not hashed.
   */
  fileHash?: FileHashKind;
}

/** What a delta is made of, for reports and tests. */
export interface DeltaStats {
  targetLength: number;
  literalBytes: number;
  literalCommands: number;
  copiedBytes: number;
  copyCommands: number;
}

/** Incremental delta: `update()` with chunks of the new data, then `final()` once. */
export class DeltaBuilder {
  readonly index: SignatureIndex;
  readonly stats: DeltaStats = { targetLength: 0, literalBytes: 0, literalCommands: 0, copiedBytes: 0, copyCommands: 0 };

  private readonly signature: Signature;
  private readonly blockLength: number;
  private readonly encoder: DeltaEncoder;
  /** Hashes the new data for a native END; undefined for rdiff. */
  private readonly hasher: FileHasher | undefined;
  private readonly strongBuffer: Uint8Array;
  /** Length of the last block when known to be short (native signatures), else 0. */
  private readonly shortLastBlock: number;
  /** Blocks below this index are exactly blockLength long. */
  private readonly lastFullBlock: number;
  private readonly rabinKarpMultL: number;

  private buf: Uint8Array;
  private readonly bufferLimit: number;
  /** Start of the current window. */
  private pos = 0;
  /** Start of bytes not yet emitted as a literal or copy. */
  private lit = 0;
  private end = 0;
  /** 0: no weak sum for the window at pos; 2: `weak` is the window's sum and it did not match. */
  private weakState = 0;
  private weak = 0;
  private lastBlock = -2;
  /** Window start whose strong sum is in strongBuffer (-1: none). */
  private strongAt = -1;
  private strongAtLength = 0;
  private copyOffset = 0;
  private copyLength = 0;
  private finished = false;

  constructor(signatureOrIndex: Signature | SignatureIndex, options: DeltaOptions = {}) {
    this.index = signatureOrIndex instanceof SignatureIndex ? signatureOrIndex : new SignatureIndex(signatureOrIndex);
    const sig = this.index.signature;
    this.signature = sig;
    this.blockLength = sig.blockLength;
    const expected = options.expectedLength;
    const fileHash = options.fileHash ?? 'sha256';
    this.encoder = new DeltaEncoder(sig.format, expected !== undefined ? Math.min(1 << 16, expected + 64) : undefined, fileHash);
    this.encoder.header(sig.basisLength ?? 0);
    this.hasher = sig.format === 'native' ? createFileHasher(fileHash) : undefined;
    this.strongBuffer = new Uint8Array(sig.strongLength);
    this.shortLastBlock = sig.basisLength !== undefined ? sig.basisLength % sig.blockLength : 0;
    this.lastFullBlock = this.shortLastBlock > 0 ? sig.blockCount - 1 : sig.blockCount;
    this.rabinKarpMultL = rabinKarpPower(sig.blockLength);
    this.bufferLimit = Math.max(FULL_BUFFER, 4 * sig.blockLength);
    const initial = expected !== undefined ? Math.max(expected, 1) : INITIAL_BUFFER;
    this.buf = new Uint8Array(Math.min(this.bufferLimit, Math.max(initial, 4 * sig.blockLength)));
  }

  /** Adds new data; returns the delta bytes completed so far (often empty). */
  update(chunk: Uint8Array): Uint8Array {
    if (this.finished) throw new DeltaError('FINISHED', 'delta already finished', {});
    this.hasher?.update(chunk);
    this.stats.targetLength += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.end === this.buf.length) {
        if (this.buf.length < this.bufferLimit) this.grow();
        else this.compact();
      }
      const n = Math.min(this.buf.length - this.end, chunk.length - i);
      this.buf.set(chunk.subarray(i, i + n), this.end);
      this.end += n;
      i += n;
      // Nothing to match against (a new file): every byte is literal, no need to roll. Literals
      // are still cut at buffer boundaries only, so any chunking gives the same delta bytes.
      if (this.signature.blockCount === 0) this.pos = this.end;
      else if (this.signature.weakSum === 'rabinkarp') this.scanRabinKarp();
      else this.scanRollsum();
    }
    return this.encoder.take();
  }

  /** Ends the new data: matches the basis's short last block at the tail, writes END. */
  final(): Uint8Array {
    if (this.finished) throw new DeltaError('FINISHED', 'delta already finished', {});
    this.finished = true;
    this.matchTail();
    this.flushLiteral(this.end);
    this.flushCopy();
    this.encoder.end(this.stats.targetLength, this.hasher?.digest());
    return this.encoder.take();
  }

  private scanRabinKarp(): void {
    const L = this.blockLength;
    const buf = this.buf;
    const { prefilter, prefilterShift } = this.index;
    const end = this.end;
    let p = this.pos;
    for (;;) {
      if (this.weakState === 0) {
        if (end - p < L) break;
        if (this.matchNextBlock(p, L)) {
          p += L;
          continue;
        }
        const weak = rabinKarpSum(buf, p, p + L);
        if (this.index.mayContain(weak) && this.tryMatch(p, weak, L)) {
          p += L;
          continue;
        }
        rollState[0] = weak;
        this.weakState = 2;
      } else {
        rollState[0] = this.weak;
      }
      // The window at p did not match: roll on to the next window that passes the prefilter.
      p = rollRabinKarp(buf, p, end - L, L, this.rabinKarpMultL, prefilter, prefilterShift);
      this.weak = rollState[0] >>> 0;
      if (rollState[1] === 0) break;
      if (this.tryMatch(p, this.weak, L)) {
        p += L;
        this.weakState = 0;
      }
    }
    this.pos = p;
  }

  private scanRollsum(): void {
    const L = this.blockLength;
    const buf = this.buf;
    const { prefilter, prefilterShift } = this.index;
    const end = this.end;
    let p = this.pos;
    for (;;) {
      if (this.weakState === 0) {
        if (end - p < L) break;
        if (this.matchNextBlock(p, L)) {
          p += L;
          continue;
        }
        const weak = rollsumSum(buf, p, p + L);
        if (this.index.mayContain(weak) && this.tryMatch(p, weak, L)) {
          p += L;
          continue;
        }
        rollState[0] = weak;
        this.weakState = 2;
      } else {
        rollState[0] = this.weak;
      }
      p = rollRollsum(buf, p, end - L, L, prefilter, prefilterShift);
      this.weak = rollState[0] >>> 0;
      if (rollState[1] === 0) break;
      if (this.tryMatch(p, this.weak, L)) {
        p += L;
        this.weakState = 0;
      }
    }
    this.pos = p;
  }

  /**
   * Looks for a block with this weak sum and the window's strong sum; emits it on success.
   * rsync match.c hash_search: try the block after the previous match first, so runs of equal blocks
   * (a file of zeros) come out as one merged copy; then at most MAX_CANDIDATES blocks of equal weak sum.
   */
  private tryMatch(p: number, weak: number, length: number): boolean {
    const sig = this.signature;
    const { weakSums } = sig;
    const lastFull = this.lastFullBlock;
    let strongReady = false;
    const want = this.lastBlock + 1;
    if (want >= 0 && want < lastFull && weakSums[want] === weak) {
      this.windowStrong(p, length);
      strongReady = true;
      if (this.strongEquals(want)) {
        this.emitCopy(p, want, length);
        return true;
      }
    }
    const next = this.index.next;
    let candidates = 0;
    let steps = 0;
    for (let b = this.index.firstCandidate(weak); b >= 0 && steps < MAX_CHAIN_STEPS; b = next[b], steps++) {
      if (weakSums[b] !== weak || b === want || b >= lastFull) continue;
      if (++candidates > MAX_CANDIDATES) break;
      if (!strongReady) {
        this.windowStrong(p, length);
        strongReady = true;
      }
      if (this.strongEquals(b)) {
        this.emitCopy(p, b, length);
        return true;
      }
    }
    return false;
  }

  /**
   * Right after a match, the next window most likely holds the next block (unchanged runs). With a
   * strong sum of 64+ bits, compare it directly and skip the weak sum: in matching regions that
   * halves the work per block. A miss costs one strong sum, which the weak path may reuse.
   */
  private matchNextBlock(p: number, length: number): boolean {
    const want = this.lastBlock + 1;
    if (want <= 0 || want >= this.lastFullBlock || this.signature.strongLength < 8) return false;
    this.windowStrong(p, length);
    if (!this.strongEquals(want)) return false;
    this.emitCopy(p, want, length);
    return true;
  }

  private windowStrong(p: number, length: number): void {
    if (this.strongAt === p && this.strongAtLength === length) return;
    const sig = this.signature;
    writeStrongSum(sig.strongSum, this.buf.subarray(p, p + length), sig.seed, this.strongBuffer, 0, sig.strongLength);
    this.strongAt = p;
    this.strongAtLength = length;
  }

  private strongEquals(block: number): boolean {
    const { strongSums, strongLength } = this.signature;
    const s = this.strongBuffer;
    const at = block * strongLength;
    for (let i = 0; i < strongLength; i++) if (strongSums[at + i] !== s[i]) return false;
    return true;
  }

  private emitCopy(p: number, block: number, length: number): void {
    this.flushLiteral(p);
    const offset = block * this.blockLength;
    if (this.copyLength > 0 && this.copyOffset + this.copyLength === offset) {
      this.copyLength += length;
    } else {
      this.flushCopy();
      this.copyOffset = offset;
      this.copyLength = length;
    }
    // A long unchanged run goes out in pieces, so the patching side can start copying while the rest
    // of the new data is still being matched (else a mostly unchanged file arrives as one COPY at the end).
    if (this.copyLength >= COPY_RUN_LIMIT) this.flushCopy();
    this.stats.copiedBytes += length;
    this.lastBlock = block;
    this.lit = p + length;
  }

  private flushLiteral(upTo: number): void {
    if (upTo <= this.lit) return;
    this.flushCopy();
    this.encoder.literal(this.buf, this.lit, upTo);
    this.stats.literalBytes += upTo - this.lit;
    this.stats.literalCommands++;
    this.lit = upTo;
  }

  private flushCopy(): void {
    if (this.copyLength === 0) return;
    this.encoder.copy(this.copyOffset, this.copyLength);
    this.stats.copyCommands++;
    this.copyLength = 0;
  }

  private grow(): void {
    const grown = new Uint8Array(Math.min(this.bufferLimit, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.end));
    this.buf = grown;
  }

  /** Emits pending bytes before the window and moves the window to the front of the buffer. */
  private compact(): void {
    this.flushLiteral(this.pos);
    const keep = this.end - this.pos;
    if (keep + this.blockLength > this.buf.length) {
      // Cannot happen with a buffer of 4+ blocks, but never lose bytes if it did.
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf.subarray(this.pos, this.end));
      this.buf = grown;
    } else {
      this.buf.copyWithin(0, this.pos, this.end);
    }
    this.end = keep;
    this.lit -= this.pos;
    this.pos = 0;
    this.strongAt = -1;
  }

  /**
   * At the end of input the window shrinks: the basis's last block may be shorter than a block, so
   * windows [q, end) shorter than a block are compared with it (librsync does the same at EOF).
   */
  private matchTail(): void {
    const sig = this.signature;
    const n = sig.blockCount;
    if (n === 0) return;
    const L = this.blockLength;
    const last = n - 1;
    const lastWeak = sig.weakSums[last];
    let q = this.weakState === 2 ? this.pos + 1 : this.pos;
    if (this.end - q >= L) q = this.end - L + 1; // full windows were all tried by the scan
    if (q >= this.end) return;
    if (this.shortLastBlock > 0) {
      // Native signatures know the basis length: only one window length can match.
      const r = this.shortLastBlock;
      if (this.end - r < q) return;
      const start = this.end - r;
      const weak = sig.weakSum === 'rabinkarp' ? rabinKarpSum(this.buf, start, this.end) : rollsumSum(this.buf, start, this.end);
      if (weak === lastWeak) this.tryTailBlock(start, r);
      return;
    }
    const sum = sig.weakSum === 'rabinkarp' ? new RabinKarp() : new Rollsum();
    sum.update(this.buf, q, this.end);
    for (; q < this.end; q++) {
      if (sum.digest() === lastWeak && this.tryTailBlock(q, this.end - q)) return;
      sum.rollout(this.buf[q]);
    }
  }

  private tryTailBlock(start: number, length: number): boolean {
    this.windowStrong(start, length);
    if (!this.strongEquals(this.signature.blockCount - 1)) return false;
    this.emitCopy(start, this.signature.blockCount - 1, length);
    return true;
  }
}

/**
 * Starts an incremental delta against a signature (or its index, to reuse the lookup table).
 * Untrusted signatures: decode them with `decodeSignature()`, which bounds every field; a crafted
 * signature can at worst make this slower (candidates per offset are capped), never wrong: the
 * native delta carries the new data's whole-file hash, which `patch` checks.
 */
export function createDelta(signatureOrIndex: Signature | SignatureIndex, options: DeltaOptions = {}): DeltaBuilder {
  return new DeltaBuilder(signatureOrIndex, options);
}

/** One-shot delta of new data held in memory. */
export function delta(signatureOrIndex: Signature | SignatureIndex, newData: Uint8Array, options: Omit<DeltaOptions, 'expectedLength'> = {}): Uint8Array {
  const builder = new DeltaBuilder(signatureOrIndex, { ...options, expectedLength: newData.length });
  const body = builder.update(newData);
  const tail = builder.final();
  const out = new Uint8Array(body.length + tail.length);
  out.set(body, 0);
  out.set(tail, body.length);
  return out;
}

/** Streams a delta: new data in from any (async) iterable of chunks, delta chunks out. */
export async function* deltaStream(
  signatureOrIndex: Signature | SignatureIndex,
  newData: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: DeltaOptions = {},
): AsyncGenerator<Uint8Array> {
  const builder = new DeltaBuilder(signatureOrIndex, options);
  for await (const chunk of newData) {
    const out = builder.update(chunk);
    if (out.length > 0) yield out;
  }
  yield builder.final();
}
