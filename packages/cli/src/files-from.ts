/**
 * rsync's --files-from: a list of paths relative to the source directory, one a line (NUL-separated
 * with --from0), `-` for stdin. Blank entries and whole-entry comments (`#`, `;`) are ignored,
 * leading slashes removed, `.` components dropped; a `..` that would go above the source directory
 * is a usage error. The paths become the run's scope (wire paths), so a listed directory is sent
 * with what is in it, as rsync's --files-from with -r.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { UsageError } from './errors.js';

/** The list's paths, normalized, each once, in the order given. */
export function parseFilesFrom(text: string, from0: boolean): string[] {
  const seen = new Set<string>();
  for (const raw of text.split(from0 ? '\0' : /\r?\n/)) {
    if (raw === '' || raw.startsWith('#') || raw.startsWith(';')) continue;
    const stripped = raw.replace(/^\/+/, '');
    const normal = stripped === '' ? '' : posix.normalize(stripped).replace(/\/+$/, '');
    if (normal === '..' || normal.startsWith('../')) throw new UsageError(`--files-from: ${JSON.stringify(raw)} goes above the source directory`);
    seen.add(normal === '.' ? '' : normal);
  }
  return [...seen];
}

/** Reads --files-from's FILE (or stdin for `-`). */
export async function readFilesFrom(file: string, from0: boolean, stdin: Readable): Promise<string[]> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Uint8Array));
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`--files-from: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  return parseFilesFrom(text, from0);
}

/** The listed paths the source lacks (rsync reports each and goes on: exit 23). */
export function missingFromSource(sourceDir: string, paths: readonly string[]): string[] {
  return paths.filter((p) => p !== '' && lstatSync(posix.join(sourceDir, p), { throwIfNoEntry: false }) === undefined);
}
