/** Shared by the core tests: deterministic data, delta decoding, chunking, rdiff, allocation tracking. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { DeltaDecoder, DeltacastError, type DeltaCommand } from '../src/index.js';

export const encoder = new TextEncoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function hex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

export function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so unit tests need no stored fixtures. */
export function pseudoRandom(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 24;
  }
  return out;
}

/** Commands of a whole delta. Pushed in one chunk, each literal comes back as one piece. */
export function decodeCommands(delta: Uint8Array): DeltaCommand[] {
  const decoder = new DeltaDecoder();
  decoder.push(delta);
  const commands: DeltaCommand[] = [];
  for (let c = decoder.next(); c; c = decoder.next()) commands.push(c);
  decoder.finish();
  return commands;
}

/** Short form of commands for assertions: ['L', length] / ['C', offset, length] / ['E']. */
export function shape(commands: readonly DeltaCommand[]): (string | number)[][] {
  return commands.map((c) =>
    c.type === 'literal' ? ['L', c.data.length] : c.type === 'copy' ? ['C', c.offset, c.length] : ['E'],
  );
}

/** Drains an async generator, returning its chunks and its return value. */
export async function drain<T, R>(gen: AsyncGenerator<T, R>): Promise<{ chunks: T[]; result: R }> {
  const chunks: T[] = [];
  for (;;) {
    const step = await gen.next();
    if (step.done) return { chunks, result: step.value };
    chunks.push(step.value);
  }
}

/** The error a function throws (sync or async), or undefined. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

export async function thrownAsync(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Narrow an unknown to a DeltacastError for field checks (fails the test with the real error otherwise). */
export function asDeltacastError(error: unknown): DeltacastError {
  if (!(error instanceof DeltacastError)) throw new Error(`expected a DeltacastError, got ${String(error)}`, { cause: error });
  return error;
}

export const hasRdiff = spawnSync('rdiff', ['--version']).status === 0;

/** A suite title that says why it is skipped when rdiff is missing. */
export function withRdiff(title: string): string {
  return hasRdiff ? title : `${title} (skipped: rdiff is not installed)`;
}

/** Runs rdiff; throws with its stderr on failure. */
export function rdiff(args: string[], input?: Uint8Array): Buffer {
  const run = spawnSync('rdiff', args, { input, maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`rdiff ${args.join(' ')} failed: ${run.stderr.toString()}`);
  return run.stdout;
}

/**
 * Block weak sums as rdiff's signature of `data` records them (basis on stdin, strong sums cut to
 * 8 bytes so records are 12 bytes): rdiff computes the rolling sums independently of us.
 */
export function rdiffWeakSums(data: Uint8Array, blockLength: number, weakSum: 'rabinkarp' | 'rollsum') {
  const sig = rdiff(['signature', '-R', weakSum, '-H', 'md4', '-b', String(blockLength), '-S', '8'], data);
  const weakSums: number[] = [];
  for (let at = 12; at < sig.length; at += 12) weakSums.push(sig.readUInt32BE(at));
  return { magic: sig.readUInt32BE(0), weakSums };
}

/** The weak sums of `data` cut into blocks, computed by `sum`. */
export function blockSums(data: Uint8Array, blockLength: number, sum: (d: Uint8Array) => number): number[] {
  const sums: number[] = [];
  for (let at = 0; at < data.length; at += blockLength) sums.push(sum(data.subarray(at, at + blockLength)));
  return sums;
}

/** What the rolling sum tests use of RabinKarp and Rollsum. */
export interface RollingSum {
  readonly count: number;
  update(data: Uint8Array, start?: number, end?: number): RollingSum;
  rotate(out: number, inByte: number): RollingSum;
  rollin(inByte: number): RollingSum;
  rollout(out: number): RollingSum;
  digest(): number;
}

/**
 * Slides a 4-byte window over `data` with rotate, then grows a window with rollin and empties it
 * with rollout, comparing every digest with `reference` computed from scratch.
 */
export function expectRollingAgrees(make: () => RollingSum, reference: (d: Uint8Array) => number, data: Uint8Array): void {
  const L = 4;
  const sum = make().update(data, 0, L);
  for (let p = 1; p + L <= data.length; p++) {
    sum.rotate(data[p - 1], data[p + L - 1]);
    expect(sum.digest(), `window at ${p}`).toBe(reference(data.subarray(p, p + L)));
  }
  const grow = make();
  for (let i = 0; i < 10; i++) grow.rollin(data[i]);
  expect(grow.digest()).toBe(reference(data.subarray(0, 10)));
  for (let i = 0; i < 10; i++) {
    grow.rollout(data[i]);
    expect(grow.digest(), `after rolling out ${i + 1}`).toBe(reference(data.subarray(i + 1, 10)));
  }
  expect(grow.count).toBe(0);
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'deltacast-core-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Records the largest typed array or ArrayBuffer constructed by length while `fn` runs, by wrapping
 * the global constructors (code under test looks them up at call time).
 */
export async function largestAllocation(fn: () => unknown): Promise<number> {
  const names = ['ArrayBuffer', 'Uint8Array', 'Uint32Array', 'Int32Array'] as const;
  const g = globalThis as unknown as Record<string, unknown>;
  const originals = names.map((name) => g[name] as new (...args: unknown[]) => object);
  let largest = 0;
  names.forEach((name, i) => {
    const original = originals[i];
    const perElement = name === 'ArrayBuffer' || name === 'Uint8Array' ? 1 : 4;
    g[name] = new Proxy(original, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number') largest = Math.max(largest, args[0] * perElement);
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
  });
  try {
    await fn();
  } finally {
    names.forEach((name, i) => {
      g[name] = originals[i];
    });
  }
  return largest;
}

/** A temporary directory for the enclosing suite, made before its tests and removed after them. */
export function useTempDir(): { readonly dir: string } {
  let handle: ReturnType<typeof tempDir> | undefined;
  beforeAll(() => {
    handle = tempDir();
  });
  afterAll(() => handle?.remove());
  return {
    get dir(): string {
      if (!handle) throw new Error('temporary directory used outside a test');
      return handle.dir;
    },
  };
}
