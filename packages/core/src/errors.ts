/**
 * Typed errors: one class per operation, each with a stable `code` and the values involved.
 * Messages say what was wrong and with which value; callers branch on `code`, never on the message.
 */

export type ErrorCode =
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'INVALID_HEADER'
  | 'INVALID_OPTION'
  | 'TRUNCATED'
  | 'TRAILING_DATA'
  | 'BAD_COMMAND'
  | 'VALUE_TOO_LARGE'
  | 'COPY_OUT_OF_BOUNDS'
  | 'OUTPUT_LIMIT'
  | 'LENGTH_MISMATCH'
  | 'HASH_MISMATCH'
  | 'BASIS_MISMATCH'
  | 'FINISHED'
  | 'NOT_READY';

export interface ErrorDetails {
  /** True when the input ended early: more bytes could have made it valid. */
  readonly incomplete?: boolean;
  readonly [key: string]: unknown;
}

/** Base class of every error deltacast throws on purpose. */
export class DeltacastError extends Error {
  readonly code: ErrorCode;
  readonly incomplete: boolean;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.incomplete = details.incomplete === true;
    this.details = details;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** Building, encoding or decoding a signature. */
export class SignatureError extends DeltacastError {}

/** Generating a delta (including a signature unfit for it). */
export class DeltaError extends DeltacastError {}

/** Reading and applying a delta: malformed or truncated deltas, bounds, limits and verification. */
export class PatchError extends DeltacastError {}
