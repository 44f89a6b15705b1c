/**
 * A delta computed once and sent to several destinations: kept in memory up to a limit, then spilled
 * to a temporary file, and replayed for each destination. Bounded memory whatever the delta's size
 * (a new 10 GiB file is 10 GiB of literal data), and every destination gets the same bytes.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MEMORY_LIMIT = 8 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;

export class Spool {
  private readonly parts: Uint8Array[] = [];
  private memoryBytes = 0;
  private file: { dir: string; path: string; fd: number } | undefined;
  size = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (!this.file && this.memoryBytes + chunk.length <= MEMORY_LIMIT) {
      this.parts.push(chunk);
      this.memoryBytes += chunk.length;
      return;
    }
    if (!this.file) {
      const dir = mkdtempSync(join(tmpdir(), 'deltacast-spool-'));
      const path = join(dir, 'delta');
      this.file = { dir, path, fd: openSync(path, 'w+', 0o600) };
    }
    for (let at = 0; at < chunk.length; ) at += writeSync(this.file.fd, chunk, at, chunk.length - at);
  }

  /** The bytes pushed, in order; may be iterated any number of times. */
  *chunks(): Generator<Uint8Array> {
    yield* this.parts;
    if (!this.file) return;
    const spilled = this.size - this.memoryBytes;
    for (let position = 0; position < spilled; ) {
      const buffer = new Uint8Array(Math.min(READ_CHUNK, spilled - position));
      const n = readSync(this.file.fd, buffer, 0, buffer.length, position);
      if (n === 0) throw new Error(`spool file ${this.file.path} ended early`);
      position += n;
      yield n === buffer.length ? buffer : buffer.subarray(0, n);
    }
  }

  dispose(): void {
    if (!this.file) return;
    closeSync(this.file.fd);
    rmSync(this.file.dir, { recursive: true, force: true });
    this.file = undefined;
  }
}
