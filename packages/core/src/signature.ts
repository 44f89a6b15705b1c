/**
 * Signatures: per block of the basis a weak rolling sum and a (possibly truncated) strong sum,
 * held in typed arrays. `createSignature()` takes the basis in chunks of any size; `signature()`
 * is the one-shot form. Both give identical results for any chunking.
 */
import { nativeBlockLength, rdiffBlockLength } from './block-length.js';
import { MAX_BLOCK_LENGTH } from './constants.js';
import { SignatureError } from './errors.js';
import { rabinKarpSum } from './rabinkarp.js';
import { rabinKarpBlockSums } from './rabinkarp-wasm.js';
import { rollsumSum } from './rollsum.js';
import { strongSumMaxLength, writeStrongSum, type StrongSumKind } from './strong-sum.js';

export type SignatureFormat = 'native' | 'rdiff';
export type WeakSumKind = 'rabinkarp' | 'rollsum';
export type { StrongSumKind };

/** A basis file's signature. Produced by `signature()`, `createSignature()` or `decodeSignature()`. */
export interface Signature {
  readonly format: SignatureFormat;
  readonly weakSum: WeakSumKind;
  readonly strongSum: StrongSumKind;
  readonly blockLength: number;
  /** Bytes of each strong sum kept (a prefix of the full sum). */
  readonly strongLength: number;
  /** Seed of the native format's xxh64 block sums; 0n for rdiff signatures. */
  readonly seed: bigint;
  /** Length of the basis; the native format records it, rdiff's does not (undefined then). */
  readonly basisLength: number | undefined;
  readonly blockCount: number;
  /** Weak sum of block i at index i. */
  readonly weakSums: Uint32Array;
  /** Strong sum of block i at [i * strongLength, (i + 1) * strongLength). */
  readonly strongSums: Uint8Array;
}

export interface SignatureOptions {
  /** 'native' (default): xxh64 sums, seeded, basis length recorded. 'rdiff': librsync's format. */
  format?: SignatureFormat;
  /** Block length in bytes; by default from `basisLength` (rdiff's or rsync's rule, per format). */
  blockLength?: number;
  /** Bytes of strong sum to keep, 1 .. full length (the default). */
  strongLength?: number;
  /** Weak rolling sum; 'rabinkarp' by default (as rdiff 2.3). */
  weakSum?: WeakSumKind;
  /** Strong sum: 'xxh64' for native; 'blake2' (default) or 'md4' for rdiff. */
  strongSum?: StrongSumKind;
  /** Seed for the native format's block sums. Random by default, so sums differ per transfer. */
  seed?: bigint;
  /** Length of the basis if known in advance; chooses the default block length. */
  basisLength?: number;
}

function randomSeed(): bigint {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (BigInt(words[0]) << 32n) | BigInt(words[1]);
}

function invalid(message: string, details: Record<string, unknown>): SignatureError {
  return new SignatureError('INVALID_OPTION', message, details);
}

/** Checks a set of signature parameters; shared by the builder and the decoders. */
export function checkSignatureParameters(
  format: SignatureFormat,
  strongSum: StrongSumKind,
  blockLength: number,
  strongLength: number,
  code: 'INVALID_OPTION' | 'INVALID_HEADER' = 'INVALID_OPTION',
): void {
  if (!Number.isInteger(blockLength) || blockLength < 1 || blockLength > MAX_BLOCK_LENGTH) {
    throw new SignatureError(code, `invalid block length ${blockLength} (1 .. ${MAX_BLOCK_LENGTH})`, { blockLength });
  }
  if ((format === 'native') !== (strongSum === 'xxh64')) {
    throw new SignatureError(code, `strong sum ${strongSum} does not belong to the ${format} format`, {
      format,
      strongSum,
    });
  }
  const max = strongSumMaxLength(strongSum);
  if (!Number.isInteger(strongLength) || strongLength < 1 || strongLength > max) {
    throw new SignatureError(code, `invalid strong sum length ${strongLength} for ${strongSum} (1 .. ${max})`, {
      strongLength,
      max,
    });
  }
}

/** Incremental signature builder: push the basis with `update()`, then `digest()` once. */
export class SignatureBuilder {
  readonly format: SignatureFormat;
  readonly weakSum: WeakSumKind;
  readonly strongSum: StrongSumKind;
  readonly blockLength: number;
  readonly strongLength: number;
  readonly seed: bigint;
  private readonly pending: Uint8Array;
  private pendingLength = 0;
  private basisLength = 0;
  private blockCount = 0;
  private weakSums: Uint32Array;
  private strongSums: Uint8Array;
  private done = false;

  constructor(options: SignatureOptions = {}) {
    const format = options.format ?? 'native';
    if (format !== 'native' && format !== 'rdiff') throw invalid(`unknown signature format ${String(format)}`, { format });
    const strongSum = options.strongSum ?? (format === 'native' ? 'xxh64' : 'blake2');
    const weakSum = options.weakSum ?? 'rabinkarp';
    if (weakSum !== 'rabinkarp' && weakSum !== 'rollsum') throw invalid(`unknown weak sum ${String(weakSum)}`, { weakSum });
    if (strongSum !== 'xxh64' && strongSum !== 'blake2' && strongSum !== 'md4') {
      throw invalid(`unknown strong sum ${String(strongSum)}`, { strongSum });
    }
    const blockLength =
      options.blockLength ?? (format === 'native' ? nativeBlockLength(options.basisLength) : rdiffBlockLength(options.basisLength));
    const strongLength = options.strongLength ?? strongSumMaxLength(strongSum);
    checkSignatureParameters(format, strongSum, blockLength, strongLength);
    this.format = format;
    this.weakSum = weakSum;
    this.strongSum = strongSum;
    this.blockLength = blockLength;
    this.strongLength = strongLength;
    this.seed = format === 'native' ? (options.seed ?? randomSeed()) : 0n;
    this.pending = new Uint8Array(blockLength);
    const expected = options.basisLength !== undefined ? Math.ceil(options.basisLength / blockLength) : 16;
    const capacity = Math.max(1, Math.min(expected, 1 << 20));
    this.weakSums = new Uint32Array(capacity);
    this.strongSums = new Uint8Array(capacity * strongLength);
  }

  /** Adds basis bytes. Any chunking gives the same signature. */
  update(chunk: Uint8Array): this {
    if (this.done) throw new SignatureError('FINISHED', 'signature already digested', {});
    const L = this.blockLength;
    let i = 0;
    const n = chunk.length;
    this.basisLength += n;
    if (this.pendingLength > 0) {
      const take = Math.min(L - this.pendingLength, n);
      this.pending.set(chunk.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      i = take;
      if (this.pendingLength < L) return this;
      this.addBlock(this.pending, 0, L);
      this.pendingLength = 0;
    }
    const whole = Math.floor((n - i) / L);
    if (whole > 1 && this.weakSum === 'rabinkarp') {
      // The run of whole blocks: weak sums in one SIMD pass, then a strong sum each.
      while (this.blockCount + whole > this.weakSums.length) this.grow();
      if (rabinKarpBlockSums(chunk, i, L, whole, this.weakSums, this.blockCount)) {
        for (const stop = i + whole * L; i < stop; i += L) this.addStrong(chunk, i, i + L);
      }
    }
    for (; i + L <= n; i += L) this.addBlock(chunk, i, i + L);
    if (i < n) {
      this.pending.set(chunk.subarray(i), 0);
      this.pendingLength = n - i;
    }
    return this;
  }

  /** Finishes the signature: the trailing short block, if any, becomes the last block. */
  digest(): Signature {
    if (this.done) throw new SignatureError('FINISHED', 'signature already digested', {});
    if (this.pendingLength > 0) this.addBlock(this.pending, 0, this.pendingLength);
    this.done = true;
    return {
      format: this.format,
      weakSum: this.weakSum,
      strongSum: this.strongSum,
      blockLength: this.blockLength,
      strongLength: this.strongLength,
      seed: this.seed,
      basisLength: this.format === 'native' ? this.basisLength : undefined,
      blockCount: this.blockCount,
      weakSums: this.weakSums.slice(0, this.blockCount),
      strongSums: this.strongSums.slice(0, this.blockCount * this.strongLength),
    };
  }

  private addBlock(data: Uint8Array, start: number, end: number): void {
    const i = this.blockCount;
    if (i === this.weakSums.length) this.grow();
    this.weakSums[i] = this.weakSum === 'rabinkarp' ? rabinKarpSum(data, start, end) : rollsumSum(data, start, end);
    this.addStrong(data, start, end);
  }

  /** The strong sum of the next block, whose weak sum is in place; counts the block. */
  private addStrong(data: Uint8Array, start: number, end: number): void {
    const i = this.blockCount;
    writeStrongSum(this.strongSum, data.subarray(start, end), this.seed, this.strongSums, i * this.strongLength, this.strongLength);
    this.blockCount = i + 1;
  }

  private grow(): void {
    const weak = new Uint32Array(this.weakSums.length * 2);
    weak.set(this.weakSums);
    const strong = new Uint8Array(weak.length * this.strongLength);
    strong.set(this.strongSums);
    this.weakSums = weak;
    this.strongSums = strong;
  }
}

/**
 * Starts an incremental signature of a basis. Untrusted input: none is parsed here, but a huge
 * basis with a tiny block length makes a large signature (8+ bytes a block); choose the block
 * length from the basis length (the default) when the basis comes from elsewhere.
 */
export function createSignature(options: SignatureOptions = {}): SignatureBuilder {
  return new SignatureBuilder(options);
}

/** One-shot signature of a basis held in memory. */
export function signature(basis: Uint8Array, options: SignatureOptions = {}): Signature {
  return new SignatureBuilder({ basisLength: basis.length, ...options }).update(basis).digest();
}

/** Signature of a basis read from a stream (a Node Readable, a web ReadableStream, any async iterable). */
export async function signatureOfStream(
  basis: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: SignatureOptions = {},
): Promise<Signature> {
  const builder = new SignatureBuilder(options);
  for await (const chunk of basis) builder.update(chunk);
  return builder.digest();
}
