/** CLI errors and how every failure becomes one line on stderr and an exit code. */
import { DeltacastError } from '@deltacast/core/deferred';

/** Exit codes, as `deltacast --help` documents them. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Wrong use of the command line (bad option value, missing argument): exit code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

/** A failure of the operation that is not a core error, e.g. an output that already exists. */
export class OperationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The single line printed for a failure: `CODE: message` when the error has a code. */
export function describeError(error: unknown): string {
  if (error instanceof DeltacastError || error instanceof OperationError) return `${error.code}: ${oneLine(error.message)}`;
  if (error instanceof UsageError) return oneLine(error.message);
  if (error instanceof Error) {
    // Node system errors already start with their code ("ENOENT: no such file or directory, open 'x'").
    return oneLine(error.message);
  }
  return oneLine(String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
}
