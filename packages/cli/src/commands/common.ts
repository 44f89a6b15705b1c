/** Pieces shared by the signature, delta and patch commands. */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import type { MainIO } from '../io.js';

/** rdiff's -f and -s, on every command that writes a file. */
export function addOutputOptions(command: Command): Command {
  return command
    .option('-f, --force', 'overwrite an existing output file', false)
    .option('-s, --statistics', 'print statistics to stderr when done', false)
    .option('--fsync', 'flush the output to disk before renaming it into place', false);
}

export interface OutputFlags {
  force: boolean;
  fsync: boolean;
  statistics: boolean;
}

/** The statistics line, in the spirit of rdiff's `librsync: delta statistics: ...`. */
export function printStatistics(io: MainIO, command: string, text: string): void {
  io.stderr.write(`deltacast: ${command} statistics: ${text}\n`);
}

/** Two inputs cannot both be stdin. */
export function checkOneStdin(...paths: [string, string | undefined][]): void {
  const onStdin = paths.filter(([, path]) => path === undefined || path === '-').map(([what]) => what);
  if (onStdin.length > 1) throw new UsageError(`${onStdin.join(' and ')} cannot both be stdin`);
}

export function choice(flags: string, description: string, choices: readonly string[]): Option {
  return new Option(flags, description).choices(choices);
}
