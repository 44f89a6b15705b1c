/**
 * readChunks reads a file to its end: a short read that reaches the expected size is taken as the
 * end without a read more, and any other short read (a pipe, a file system that reads short) is not.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readChunks } from '../src/sync.js';
import { pseudoRandom, useTempDirs } from './helpers/tree.js';

const tempDir = useTempDirs();

/** Everything readChunks gives, each chunk copied as it comes (they share one buffer). */
function readAll(path: string, sizeHint: number): Buffer {
  const parts: Buffer[] = [];
  for (const chunk of readChunks(path, sizeHint)) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

describe('readChunks', () => {
  it('gives a file whole, whether it has the expected size, grew or shrank', () => {
    const path = join(tempDir(), 'f');
    for (const [size, hint] of [
      [0, 0],
      [5_000, 5_000],
      [300_000, 300_000],
      [600_000, 100],
      [100, 600_000],
    ]) {
      const data = pseudoRandom(size, size + 1);
      writeFileSync(path, data);
      const read = readAll(path, hint);
      expect(read.equals(Buffer.from(data)), `${size} bytes, hint ${hint}`).toBe(true);
    }
  });

  it('reads on past a short read that stops before the expected size', async () => {
    const fifo = join(tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Two writes a moment apart, the fifo held open between them: the first read returns only the first.
    const held = spawn('sh', ['-c', 'exec 3>"$0"; printf "first part, " >&3; sleep 0.3; printf "second part" >&3', fifo], { stdio: 'ignore' });
    const text = 'first part, second part';
    const read = readAll(fifo, text.length).toString();
    expect(read).toBe(text);
    await new Promise((resolve) => held.on('close', resolve));
  });
});
