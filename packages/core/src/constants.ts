/**
 * Format constants. Each value mirrors a row of docs/format.md; librsync's come from its
 * doc/formats.md and src/prototab.c (librsync 2.3.2).
 */

// librsync signature magics: the strong sum (MD4 or BLAKE2) and the weak sum (rollsum or RabinKarp).
export const RS_MD4_SIG_MAGIC = 0x72730136;
export const RS_BLAKE2_SIG_MAGIC = 0x72730137;
export const RS_RK_MD4_SIG_MAGIC = 0x72730146;
export const RS_RK_BLAKE2_SIG_MAGIC = 0x72730147;
export const RS_DELTA_MAGIC = 0x72730236;

export const RS_MD4_SUM_LENGTH = 16;
export const RS_BLAKE2_SUM_LENGTH = 32;
/** rdiff's block length when the basis length is not known (input from a pipe). */
export const RS_DEFAULT_BLOCK_LENGTH = 2048;

// librsync delta opcodes (prototab.c).
export const RS_OP_END = 0x00;
export const RS_OP_LITERAL_1 = 0x01;
export const RS_OP_LITERAL_64 = 0x40;
export const RS_OP_LITERAL_N1 = 0x41;
export const RS_OP_LITERAL_N8 = 0x44;
export const RS_OP_COPY_N1_N1 = 0x45;
export const RS_OP_COPY_N8_N8 = 0x54;

// Native format: "DCSG" signature and "DCDL" delta, version 1.
export const NATIVE_SIG_MAGIC = 0x44435347;
export const NATIVE_DELTA_MAGIC = 0x4443444c;
export const NATIVE_VERSION = 1;
export const NATIVE_SIG_HEADER_LENGTH = 28;
export const NATIVE_DELTA_HEADER_LENGTH = 16;
export const NATIVE_OP_END = 0x00;
export const NATIVE_OP_LITERAL = 0x01;
export const NATIVE_OP_COPY = 0x02;
export const NATIVE_WEAK_RABINKARP = 1;
export const NATIVE_WEAK_ROLLSUM = 2;
export const NATIVE_STRONG_XXH64 = 1;
export const NATIVE_XXH64_LENGTH = 8;
export const SHA256_LENGTH = 32;
/** Native delta flags: the END carries XXH3-128 (16 bytes), not SHA-256. */
export const NATIVE_FLAG_XXH128 = 0x01;

/** Upper bound on a block length (16 MiB): delta buffers are a few blocks long. rsync stops at 128 KiB. */
export const MAX_BLOCK_LENGTH = 1 << 24;
/** Offsets and lengths above this are refused: JavaScript numbers are exact only up to 2^53. */
export const MAX_SAFE_LENGTH = Number.MAX_SAFE_INTEGER;
