/**
 * A basis read synchronously from an open file descriptor: for a local file in the page cache a
 * blocking read costs less than a thread-pool round trip per piece (the agent and the CLI's patch).
 */
import { readSync } from 'node:fs';
import type { BasisReader } from '@deltacast/core/deferred';

export function fdBasis(fd: number, size: number): BasisReader {
  return {
    size,
    read(position, length) {
      const out = new Uint8Array(Math.min(length, Math.max(0, size - position)));
      let filled = 0;
      while (filled < out.length) {
        const n = readSync(fd, out, filled, out.length - filled, position + filled);
        if (n === 0) break;
        filled += n;
      }
      return filled === out.length ? out : out.subarray(0, filled);
    },
  };
}
