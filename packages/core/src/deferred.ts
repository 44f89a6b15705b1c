/**
 * The package's API without waiting, at import, for the WebAssembly hash modules: call
 * `await loadStrongSums()` before building signatures or deltas (decoding, indexing and patching
 * need no hashes of these kinds), and `await loadFileHashes()` before making or patching deltas
 * whose END carries XXH3-128. The main entry (index.ts) is this plus those waits.
 */
export {
  RS_BLAKE2_SIG_MAGIC,
  RS_DELTA_MAGIC,
  RS_MD4_SIG_MAGIC,
  RS_RK_BLAKE2_SIG_MAGIC,
  RS_RK_MD4_SIG_MAGIC,
  NATIVE_DELTA_MAGIC,
  NATIVE_SIG_MAGIC,
  MAX_BLOCK_LENGTH,
} from './constants.js';
export { DeltacastError, SignatureError, DeltaError, PatchError, type ErrorCode, type ErrorDetails } from './errors.js';
export { RabinKarp, rabinKarpSum, RABINKARP_MULT, RABINKARP_SEED } from './rabinkarp.js';
export { Rollsum, rollsumSum, ROLLSUM_CHAR_OFFSET } from './rollsum.js';
export { blake2b256, md4, xxh64, strongSumMaxLength, loadStrongSums, strongSumsLoaded } from './strong-sum.js';
export {
  createFileHasher,
  fileHash,
  fileHashLength,
  fileHashLoaded,
  loadFileHashes,
  type FileHashKind,
  type FileHasher,
} from './file-hash.js';
export { nativeBlockLength, rdiffBlockLength, rdiffMinStrongLength } from './block-length.js';
export {
  createSignature,
  signature,
  signatureOfStream,
  SignatureBuilder,
  type Signature,
  type SignatureFormat,
  type SignatureOptions,
  type StrongSumKind,
  type WeakSumKind,
} from './signature.js';
export { decodeSignature, encodeSignature } from './signature-format.js';
export { indexSignature, SignatureIndex } from './signature-index.js';
export { createDelta, delta, deltaStream, DeltaBuilder, type DeltaOptions, type DeltaStats } from './delta.js';
export { literalDelta, writeLiteralDelta, LiteralDeltaStream } from './literal-delta.js';
export { literalDeltaLength } from './delta-format.js';
export { DeltaDecoder, type DeltaCommand } from './delta-format.js';
export {
  applyDelta,
  bufferBasis,
  fileHandleBasis,
  patchPieces,
  patchStream,
  type BasisReader,
  type FileHandleLike,
  type PatchedPieces,
  type PatchOptions,
  type PatchResult,
} from './patch.js';
