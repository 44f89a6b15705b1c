/**
 * Transport errors: one class per concern, each with a stable `code` and the values involved.
 *   ProtocolError  the byte stream or a message broke the protocol; the session ends.
 *   PathError      a path from the wire would leave the destination root, or is malformed.
 *   RemoteError    the peer reported a failure for one operation (the session goes on).
 *   ConnectError   could not reach, authenticate or start the agent.
 */
import { DeltacastError, type ErrorDetails } from '@deltacast/core/deferred';

export type TransportErrorCode =
  | 'FRAME_TOO_LARGE'
  | 'BAD_FRAME'
  | 'BAD_MESSAGE'
  | 'VERSION_MISMATCH'
  | 'UNEXPECTED_EOF'
  | 'CLOSED'
  | 'TIMEOUT'
  | 'LOCKED'
  | 'CONFIG'
  | 'PATH_ABSOLUTE'
  | 'PATH_ESCAPE'
  | 'PATH_INVALID'
  | 'PATH_SYMLINK'
  | 'REMOTE'
  | 'CONNECT'
  | 'AUTH'
  | 'HOST_KEY_UNKNOWN'
  | 'HOST_KEY_MISMATCH'
  | 'NO_REMOTE_NODE'
  | 'IO';

/** Base of the transport's errors; `code` is stable, `details` holds the values involved. */
export class TransportError extends Error {
  readonly code: TransportErrorCode | string;
  readonly details: ErrorDetails;

  constructor(code: TransportErrorCode | string, message: string, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

export class ProtocolError extends TransportError {}
export class PathError extends TransportError {}
export class ConnectError extends TransportError {}

/**
 * A failure the peer reported for one operation. `code` is the remote error's code (e.g. EACCES,
 * ENOSPC, HASH_MISMATCH, PATH_ESCAPE) so callers can branch on it as if it had happened locally.
 */
export class RemoteError extends TransportError {}

/** Keeps core's typed errors recognisable after they crossed the wire. */
export function isDeltacastError(error: unknown): error is DeltacastError | TransportError {
  return error instanceof DeltacastError || error instanceof TransportError;
}
