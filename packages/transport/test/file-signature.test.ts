import { existsSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { decodeSignature, encodeSignature, signature } from '@deltacast/core';
import { AgentClient } from '../src/agent-client.js';
import { childProcessAgent } from '../src/local.js';
import { useTempDirs } from './helpers/tree.js';

// Worker threads run JavaScript: the parallel path is tested on the build (TypeScript source sums on
// one thread, see workerModule), and through the agent bundle as a host without deltacast runs it.
const DIST = fileURLToPath(new URL('../dist/file-signature.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/agent.bundle.mjs', import.meta.url));
const built = existsSync(DIST) && existsSync(BUNDLE);

const tempDir = useTempDirs();

/** Bytes that differ block to block (a constant fill would give every block the same sums). */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x;
    out[i + 1] = x >>> 8;
    out[i + 2] = x >>> 16;
    out[i + 3] = x >>> 24;
  }
  return out;
}

describe.skipIf(!built)('the signature of a basis file on several threads', () => {
  it('is byte for byte the single-pass signature, whatever the split', async () => {
    const { fileSignature } = (await import(DIST)) as typeof import('../src/file-signature.js');
    for (const [size, blockLength, threads] of [
      [1_000_000, 1000, 3], // runs of whole blocks, the last one short
      [1_000_003, 4096, 4], // a short last block
      [10_000, 4096, 4], // fewer blocks than threads
      [4096 * 8, 4096, 2], // an exact number of blocks
      [0, 4096, 2],
    ] as const) {
      const data = pattern(size, size + 1);
      const path = join(tempDir(), 'basis');
      await writeFile(path, data);
      const handle = await open(path, 'r');
      try {
        const seed = 0x0123456789abcdefn;
        const expected = encodeSignature(signature(data, { format: 'native', seed, blockLength }));
        let split: { runs: number; onWorkers: number } | undefined;
        const sig = await fileSignature(handle.fd, size, { seed, blockLength }, { threads, minParallelBytes: 0, onSplit: (s) => (split = s) });
        expect(Buffer.from(encodeSignature(sig)).equals(Buffer.from(expected)), `${size} bytes, blocks of ${blockLength}, ${threads} threads`).toBe(true);
        // Every run but this thread's was summed by a worker (none failed and fell back).
        const runs = Math.min(threads, Math.ceil(size / blockLength));
        expect(split).toEqual(runs >= 2 ? { runs, onWorkers: runs - 1 } : { runs: 1, onWorkers: 0 });
      } finally {
        await handle.close();
      }
    }
  });

  it('runs a job when the agent bundle is loaded on a worker, and starts no agent there', async () => {
    const { SIGNATURE_JOB } = (await import(DIST)) as typeof import('../src/file-signature.js');
    const data = pattern(300_000, 3);
    const path = join(tempDir(), 'basis');
    await writeFile(path, data);
    const handle = await open(path, 'r');
    try {
      const job = { [SIGNATURE_JOB]: true, fd: handle.fd, start: 8192, end: 300_000, seed: 9n, blockLength: 4096 };
      const worker = new Worker(BUNDLE, { workerData: job, stdout: true, stderr: true });
      let output = '';
      worker.stdout.on('data', (c: Buffer) => (output += c.toString()));
      worker.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const message = new Promise<{ weakSums: Uint32Array; strongSums: Uint8Array }>((resolve) => worker.once('message', resolve));
      const code = await new Promise<number>((resolve) => worker.once('exit', resolve));
      const expected = signature(data.subarray(8192), { format: 'native', seed: 9n, blockLength: 4096 });
      const got = await message;
      expect(code).toBe(0);
      expect(output).toBe(''); // an agent started there would have failed on its empty input, and said so
      expect([...got.weakSums]).toEqual([...expected.weakSums]);
      expect(Buffer.from(got.strongSums).equals(Buffer.from(expected.strongSums))).toBe(true);
    } finally {
      await handle.close();
    }
  });

  it('serves a large basis from the agent bundle, its workers sharing the descriptor', async () => {
    const size = 66 * 1024 * 1024; // past PARALLEL_SIGNATURE_BYTES
    const data = pattern(size, 7);
    const root = tempDir();
    await writeFile(join(root, 'big.bin'), data);
    const client = await AgentClient.connect(childProcessAgent([process.execPath, BUNDLE]), { root });
    try {
      const seed = 42n;
      const sig = decodeSignature(await client.signature('big.bin', seed));
      const expected = signature(data, { format: 'native', seed });
      expect(sig.blockCount).toBe(expected.blockCount);
      expect(Buffer.from(encodeSignature(sig)).equals(Buffer.from(encodeSignature(expected)))).toBe(true);
    } finally {
      await client.close();
    }
  });
});
