/**
 * Temporary files beside their target: `.<name>.dctmp-<pid>-<8 hex>`, written, verified, then
 * renamed over the target, so a live path never holds a partial file. A run that dies leaves such
 * files behind; a later listing removes those whose agent process is gone (or, with --partial, keeps
 * them as `.<name>.dcpartial` to resume from). Names are kept within NAME_MAX (255 bytes): for a long
 * target name the temp name carries a shortened prefix and the marker `dctmpx`, and is never kept as
 * a partial (the target's name cannot be recovered from it).
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

const NAME_MAX = 255;
const TEMP_PATTERN = /^\.(.+)\.dctmp(x?)-([0-9a-z]+)-[0-9a-f]{8}$/;
const PARTIAL_SUFFIX = '.dcpartial';

export function tempPathFor(target: string): string {
  // A random start, then the next number for each name: a random draw per file cost more than the
  // rest of the name (O_EXCL refuses a name that exists all the same).
  tempCounter = (tempCounter + 1) >>> 0;
  const suffix = `-${PID36}-${tempCounter.toString(16).padStart(8, '0')}`;
  // Split at the last '/' by hand: dirname, basename and join (which normalizes again) cost more
  // than the rest of a small file's put.
  const slash = target.lastIndexOf('/');
  const dir = target.slice(0, slash + 1);
  let name = target.slice(slash + 1);
  const room = NAME_MAX - `..dctmpx${suffix}`.length; // ASCII
  // At most three UTF-8 bytes per UTF-16 unit: most names need no count.
  if (name.length * 3 <= room || Buffer.byteLength(name) <= room) return `${dir}.${name}.dctmp${suffix}`;
  while (Buffer.byteLength(name) > room) name = name.slice(0, -1);
  return `${dir}.${name}.dctmpx${suffix}`;
}

const PID36 = process.pid.toString(36);
let tempCounter = randomBytes(4).readUInt32BE(0);

/** Where an interrupted new file is kept with --partial; undefined when the name would be too long. */
export function partialPathFor(target: string): string | undefined {
  const name = `.${basename(target)}${PARTIAL_SUFFIX}`;
  return Buffer.byteLength(name) <= NAME_MAX ? join(dirname(target), name) : undefined;
}

export interface TempName {
  /** The target's name, when the temp name holds it whole. */
  target: string | undefined;
  pid: number;
}

export function parseTempName(name: string): TempName | undefined {
  const m = TEMP_PATTERN.exec(name);
  if (!m) return undefined;
  return { target: m[2] === '' ? m[1] : undefined, pid: parseInt(m[3], 36) };
}

/** The target name of a partial file, or undefined if `name` is not one. */
export function parsePartialName(name: string): string | undefined {
  return name.startsWith('.') && name.endsWith(PARTIAL_SUFFIX) && name.length > 1 + PARTIAL_SUFFIX.length
    ? name.slice(1, -PARTIAL_SUFFIX.length)
    : undefined;
}

/** Whether the process that made a temp file may still be writing it. */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
