/**
 * Temporary files beside their target: `.<name>.dctmp-<8 hex>`. Written, verified, then renamed over
 * the target, so a live path never holds a partial file. A run that dies leaves such files behind; the
 * next listing removes them (or, with --partial, keeps one as `.<name>.dcpartial` to resume from).
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

const TEMP_PATTERN = /^\..+\.dctmp-[0-9a-f]{8}$/;
const PARTIAL_PATTERN = /^\..+\.dcpartial$/;

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.dctmp-${randomBytes(4).toString('hex')}`);
}

export function partialPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.dcpartial`);
}

export function isTempName(name: string): boolean {
  return TEMP_PATTERN.test(name);
}

export function isPartialName(name: string): boolean {
  return PARTIAL_PATTERN.test(name);
}
