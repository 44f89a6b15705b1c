/**
 * Signature files, byte by byte as docs/format.md describes them. All integers are big-endian.
 *   rdiff:  magic u32 | block_len u32 | strong_len u32 | { weak u32, strong[strong_len] } * n
 *   native: "DCSG" | version u8 | weak u8 | strong u8 | strong_len u8 | block_len u32 |
 *           basis_len u64 | seed u64 | { weak u32, strong[strong_len] } * ceil(basis_len / block_len)
 */
import {
  MAX_SAFE_LENGTH,
  NATIVE_SIG_HEADER_LENGTH,
  NATIVE_SIG_MAGIC,
  NATIVE_STRONG_XXH64,
  NATIVE_VERSION,
  NATIVE_WEAK_RABINKARP,
  NATIVE_WEAK_ROLLSUM,
  RS_BLAKE2_SIG_MAGIC,
  RS_MD4_SIG_MAGIC,
  RS_RK_BLAKE2_SIG_MAGIC,
  RS_RK_MD4_SIG_MAGIC,
} from './constants.js';
import { SignatureError } from './errors.js';
import { checkSignatureParameters, type Signature, type StrongSumKind, type WeakSumKind } from './signature.js';

const RDIFF_HEADER_LENGTH = 12;

/** The librsync magic for a weak/strong pair. */
export function rdiffSignatureMagic(weakSum: WeakSumKind, strongSum: StrongSumKind): number {
  if (strongSum === 'blake2') return weakSum === 'rabinkarp' ? RS_RK_BLAKE2_SIG_MAGIC : RS_BLAKE2_SIG_MAGIC;
  if (strongSum === 'md4') return weakSum === 'rabinkarp' ? RS_RK_MD4_SIG_MAGIC : RS_MD4_SIG_MAGIC;
  throw new SignatureError('INVALID_OPTION', `strong sum ${strongSum} has no rdiff signature format`, { strongSum });
}

function headerLength(sig: Signature): number {
  return sig.format === 'native' ? NATIVE_SIG_HEADER_LENGTH : RDIFF_HEADER_LENGTH;
}

/** Serializes a signature in its own format. */
export function encodeSignature(sig: Signature): Uint8Array {
  const recordLength = 4 + sig.strongLength;
  const head = headerLength(sig);
  const out = new Uint8Array(head + sig.blockCount * recordLength);
  const view = new DataView(out.buffer);
  if (sig.format === 'native') {
    view.setUint32(0, NATIVE_SIG_MAGIC);
    out[4] = NATIVE_VERSION;
    out[5] = sig.weakSum === 'rabinkarp' ? NATIVE_WEAK_RABINKARP : NATIVE_WEAK_ROLLSUM;
    out[6] = NATIVE_STRONG_XXH64;
    out[7] = sig.strongLength;
    view.setUint32(8, sig.blockLength);
    view.setBigUint64(12, BigInt(sig.basisLength ?? 0));
    view.setBigUint64(20, sig.seed);
  } else {
    view.setUint32(0, rdiffSignatureMagic(sig.weakSum, sig.strongSum));
    view.setUint32(4, sig.blockLength);
    view.setUint32(8, sig.strongLength);
  }
  const { weakSums, strongSums, strongLength } = sig;
  for (let i = 0, at = head; i < sig.blockCount; i++, at += recordLength) {
    view.setUint32(at, weakSums[i]);
    out.set(strongSums.subarray(i * strongLength, (i + 1) * strongLength), at + 4);
  }
  return out;
}

function truncated(what: string, expected: number, available: number): SignatureError {
  return new SignatureError('TRUNCATED', `signature truncated in ${what}: needs ${expected} bytes, has ${available}`, {
    incomplete: true,
    reading: what,
    expected,
    available,
  });
}

function rdiffKinds(magic: number): [WeakSumKind, StrongSumKind] | undefined {
  switch (magic) {
    case RS_MD4_SIG_MAGIC:
      return ['rollsum', 'md4'];
    case RS_BLAKE2_SIG_MAGIC:
      return ['rollsum', 'blake2'];
    case RS_RK_MD4_SIG_MAGIC:
      return ['rabinkarp', 'md4'];
    case RS_RK_BLAKE2_SIG_MAGIC:
      return ['rabinkarp', 'blake2'];
    default:
      return undefined;
  }
}

/** True if the bytes start like a signature of either format (for sniffing, not validation). */
export function isSignatureMagic(magic: number): boolean {
  return magic === NATIVE_SIG_MAGIC || rdiffKinds(magic) !== undefined;
}

/**
 * Parses a signature of either format (told apart by the magic). Untrusted input is safe here: every
 * header field is checked before use and nothing is allocated beyond the input's own size; errors are
 * `SignatureError` with code BAD_MAGIC, UNSUPPORTED_VERSION, INVALID_HEADER, TRUNCATED or TRAILING_DATA.
 */
export function decodeSignature(bytes: Uint8Array): Signature {
  if (bytes.length < 4) throw truncated('magic', 4, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  let format: Signature['format'];
  let weakSum: WeakSumKind;
  let strongSum: StrongSumKind;
  let blockLength: number;
  let strongLength: number;
  let basisLength: number | undefined;
  let seed = 0n;
  let head: number;
  const kinds = rdiffKinds(magic);
  if (kinds) {
    if (bytes.length < RDIFF_HEADER_LENGTH) throw truncated('header', RDIFF_HEADER_LENGTH, bytes.length);
    format = 'rdiff';
    [weakSum, strongSum] = kinds;
    blockLength = view.getUint32(4);
    strongLength = view.getUint32(8);
    head = RDIFF_HEADER_LENGTH;
  } else if (magic === NATIVE_SIG_MAGIC) {
    if (bytes.length < 5) throw truncated('header', NATIVE_SIG_HEADER_LENGTH, bytes.length);
    if (bytes[4] !== NATIVE_VERSION) {
      throw new SignatureError('UNSUPPORTED_VERSION', `unsupported signature version ${bytes[4]} (expected ${NATIVE_VERSION})`, {
        version: bytes[4],
      });
    }
    if (bytes.length < NATIVE_SIG_HEADER_LENGTH) throw truncated('header', NATIVE_SIG_HEADER_LENGTH, bytes.length);
    format = 'native';
    if (bytes[5] === NATIVE_WEAK_RABINKARP) weakSum = 'rabinkarp';
    else if (bytes[5] === NATIVE_WEAK_ROLLSUM) weakSum = 'rollsum';
    else throw new SignatureError('INVALID_HEADER', `unknown weak sum id ${bytes[5]}`, { weakSumId: bytes[5] });
    if (bytes[6] !== NATIVE_STRONG_XXH64) {
      throw new SignatureError('INVALID_HEADER', `unknown strong sum id ${bytes[6]}`, { strongSumId: bytes[6] });
    }
    strongSum = 'xxh64';
    strongLength = bytes[7];
    blockLength = view.getUint32(8);
    const basis = view.getBigUint64(12);
    if (basis > BigInt(MAX_SAFE_LENGTH)) {
      throw new SignatureError('INVALID_HEADER', `basis length ${basis} is too large`, { basisLength: basis });
    }
    basisLength = Number(basis);
    seed = view.getBigUint64(20);
    head = NATIVE_SIG_HEADER_LENGTH;
  } else {
    throw new SignatureError('BAD_MAGIC', `not a signature: magic 0x${magic.toString(16).padStart(8, '0')}`, { magic });
  }
  checkSignatureParameters(format, strongSum, blockLength, strongLength, 'INVALID_HEADER');

  const recordLength = 4 + strongLength;
  const body = bytes.length - head;
  let blockCount: number;
  if (basisLength !== undefined) {
    blockCount = Math.ceil(basisLength / blockLength);
    const expected = blockCount * recordLength;
    if (body < expected) throw truncated('block sums', head + expected, bytes.length);
    if (body > expected) {
      throw new SignatureError('TRAILING_DATA', `${body - expected} bytes after the last block sum`, {
        extra: body - expected,
      });
    }
  } else {
    blockCount = Math.floor(body / recordLength);
    if (body % recordLength !== 0) throw truncated('block sums', head + (blockCount + 1) * recordLength, bytes.length);
  }
  const weakSums = new Uint32Array(blockCount);
  const strongSums = new Uint8Array(blockCount * strongLength);
  for (let i = 0, at = head; i < blockCount; i++, at += recordLength) {
    weakSums[i] = view.getUint32(at);
    strongSums.set(bytes.subarray(at + 4, at + recordLength), i * strongLength);
  }
  return { format, weakSum, strongSum, blockLength, strongLength, seed, basisLength, blockCount, weakSums, strongSums };
}
