/**
 * The native signature of a basis file read from an open descriptor. A large basis is split into
 * runs of whole blocks, one per core (at most four), and the runs are summed at once on worker
 * threads sharing the descriptor (positional reads); the block sums are concatenated in order, so the
 * signature is the one a single pass would make. This halves the signature phase of a large file on
 * two cores, where the client waits for it before it can compute the delta.
 *
 * The worker is this very module (or, in a single-file bundle, the bundle itself): loaded on a worker
 * thread with SIGNATURE_JOB in its workerData, it sums its run at load and posts the result. A bundle's
 * entry point must therefore start nothing when it is not on the main thread (`isMainThread`).
 */
import { readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createSignature, loadStrongSums, type Signature, type SignatureOptions } from '@deltacast/core/deferred';

/** Below this a basis is summed on the calling thread: a worker's start-up (~30-80 ms) would eat the gain. */
export const PARALLEL_SIGNATURE_BYTES = 64 * 1024 * 1024;
const MAX_THREADS = 4;
const READ_BYTES = 1 << 20;
/** The workerData key that makes a load of this module (or the bundle) a signature job. */
export const SIGNATURE_JOB = 'deltacast-signature-job';

interface Job {
  [SIGNATURE_JOB]: true;
  fd: number;
  start: number;
  end: number;
  seed: bigint;
  blockLength: number;
}

interface JobResult {
  weakSums: Uint32Array;
  strongSums: Uint8Array;
}

type NativeOptions = Pick<SignatureOptions, 'seed' | 'blockLength'>;

/** Sums bytes [start, end) of `fd` as a native signature with these parameters (a run of whole blocks but for the file's last). */
function sumRange(fd: number, start: number, end: number, seed: bigint | undefined, blockLength: number | undefined, basisLength: number): Signature {
  const builder = createSignature({ format: 'native', seed, blockLength, basisLength });
  const buffer = new Uint8Array(Math.min(READ_BYTES, Math.max(1, end - start)));
  for (let position = start; position < end; ) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - position), position);
    if (n === 0) break; // the file shrank: the signature covers what was there
    builder.update(buffer.subarray(0, n));
    position += n;
  }
  return builder.digest();
}

/**
 * The native signature of the `size` bytes of open file `fd`, split across threads (SplitOptions). A
 * small basis, or a module that cannot be run on a worker (TypeScript source under a test runner), is
 * summed on this thread; a worker that fails has its run summed here.
 */
export interface SplitOptions {
  /** Threads to use at most, this one included (default: one per core; never more than four). */
  threads?: number;
  /** Smallest basis split across threads (default PARALLEL_SIGNATURE_BYTES). */
  minParallelBytes?: number;
  /** Told how many runs the basis was split into and how many of them workers summed. */
  onSplit?: (split: { runs: number; onWorkers: number }) => void;
}

export async function fileSignature(fd: number, size: number, options: NativeOptions = {}, split: SplitOptions = {}): Promise<Signature> {
  const { threads = availableParallelism(), minParallelBytes = PARALLEL_SIGNATURE_BYTES } = split;
  await loadStrongSums(['xxh64']);
  // The whole-file parameters: block length from the full size, one seed for every run.
  const shape = createSignature({ format: 'native', seed: options.seed, blockLength: options.blockLength, basisLength: size });
  const { blockLength, seed } = shape;
  const blocks = Math.ceil(size / blockLength);
  const runs = Math.min(Math.max(1, threads), MAX_THREADS, blocks);
  if (runs < 2 || size < minParallelBytes || !workerModule()) {
    split.onSplit?.({ runs: 1, onWorkers: 0 });
    return sumRange(fd, 0, size, seed, blockLength, size);
  }
  const perRun = Math.ceil(blocks / runs);
  const bounds = Array.from({ length: runs }, (_, i) => [Math.min(size, i * perRun * blockLength), Math.min(size, (i + 1) * perRun * blockLength)] as const);
  // Runs 1.. on workers, run 0 here meanwhile; a worker that fails has its run summed here after.
  const others = bounds.slice(1).map(([start, end]) => runOnWorker({ [SIGNATURE_JOB]: true, fd, start, end, seed, blockLength }).catch(() => undefined));
  let first: Signature;
  try {
    first = sumRange(fd, bounds[0][0], bounds[0][1], seed, blockLength, size);
  } catch (error) {
    // The workers read the caller's descriptor: it must stay open until they are done.
    await Promise.all(others);
    throw error;
  }
  const parts: JobResult[] = [first];
  const results = await Promise.all(others);
  for (let i = 0; i < results.length; i++) {
    const [start, end] = bounds[i + 1];
    parts.push(results[i] ?? sumRange(fd, start, end, seed, blockLength, size));
  }
  split.onSplit?.({ runs, onWorkers: results.filter(Boolean).length });
  const strongLength = first.strongLength;
  const blockCount = parts.reduce((n, p) => n + p.weakSums.length, 0);
  const weakSums = new Uint32Array(blockCount);
  const strongSums = new Uint8Array(blockCount * strongLength);
  let at = 0;
  for (const part of parts) {
    weakSums.set(part.weakSums, at);
    strongSums.set(part.strongSums, at * strongLength);
    at += part.weakSums.length;
  }
  return { ...first, basisLength: size, blockCount, weakSums, strongSums };
}

/** The file a worker loads: this module as built (or the bundle holding it); none for TypeScript source. */
function workerModule(): URL | undefined {
  const url = new URL(import.meta.url);
  return url.protocol === 'file:' && /\.[cm]?js$/.test(url.pathname) ? url : undefined;
}

function runOnWorker(job: Job): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerModule()!, { workerData: job, stdout: false, stderr: false });
    let result: JobResult | undefined;
    worker.once('message', (message: JobResult) => (result = message));
    worker.once('error', reject);
    worker.once('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`signature worker exited with ${code}`))));
  });
}

// On a worker thread started by runOnWorker: sum the run, post it, and end.
if (!isMainThread && parentPort && (workerData as Partial<Job> | null)?.[SIGNATURE_JOB] === true) {
  const job = workerData as Job;
  const port = parentPort;
  void loadStrongSums(['xxh64']).then(() => {
    const sig = sumRange(job.fd, job.start, job.end, job.seed, job.blockLength, job.end - job.start);
    const message: JobResult = { weakSums: sig.weakSums, strongSums: sig.strongSums };
    port.postMessage(message, [sig.weakSums.buffer as ArrayBuffer, sig.strongSums.buffer as ArrayBuffer]);
  });
}
