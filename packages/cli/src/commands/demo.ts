/**
 * `deltacast demo`: generates a basis and an edited new version, runs signature -> delta -> patch
 * on files through the same code as the commands, checks the result by SHA-256 and reports sizes,
 * the delta's make-up and timings.
 */
import type { SignatureFormat } from '@deltacast/core/deferred';
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OperationError } from '../errors.js';
import { CHUNK_LENGTH, createOutput, withOutput, type MainIO } from '../io.js';
import { byteCount, formatBytes, integer } from '../options.js';
import { runSyncDemo } from './demo-sync.js';
import { choice } from './common.js';
import { writeDelta } from './delta.js';
import { writePatch } from './patch.js';
import { writeSignature } from './signature.js';

const DEFAULT_SIZE = 16 * 1024 * 1024;
const DEFAULT_SYNC_SIZE = 24 * 1024 * 1024;
const BASIS_SEED = 0x5eed;
const EDIT_SEED = 0xed17;

/** mulberry32: a small, fast, deterministic generator; the demo must produce the same files every run. */
class Random {
  constructor(private state: number) {}

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  below(n: number): number {
    return this.next() % n;
  }

  /** Fills `out` four bytes per draw, so the stream is the same whatever the chunk lengths (multiples of 4). */
  fill(out: Uint8Array): Uint8Array {
    for (let i = 0; i < out.length; i += 4) {
      const v = this.next();
      out[i] = v;
      if (i + 1 < out.length) out[i + 1] = v >>> 8;
      if (i + 2 < out.length) out[i + 2] = v >>> 16;
      if (i + 3 < out.length) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

interface Edit {
  kind: 'replace' | 'insert' | 'delete';
  /** Basis offset where the edit starts. */
  offset: number;
  /** Basis bytes dropped there. */
  remove: number;
  /** Fresh bytes written there. */
  insert: number;
}

/** Scattered edits: one per span of the basis, at a random place in it, kinds in turn. */
export function planEdits(size: number): Edit[] {
  const rng = new Random(EDIT_SEED);
  const count = Math.min(256, Math.max(3, Math.round(size / (512 * 1024))));
  const span = Math.floor(size / count);
  const longest = Math.max(1, Math.min(4096, Math.floor(span / 4)));
  const kinds = ['replace', 'insert', 'delete'] as const;
  const edits: Edit[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % 3];
    // Replacements are small (a changed word or record); inserts and deletes up to a few KiB.
    const length = 1 + rng.below(kind === 'replace' ? Math.min(64, longest) : longest);
    const offset = i * span + rng.below(Math.max(1, span - length));
    edits.push({ kind, offset, remove: kind === 'insert' ? 0 : length, insert: kind === 'delete' ? 0 : length });
  }
  return edits;
}

function* basisChunks(size: number): Generator<Uint8Array> {
  const rng = new Random(BASIS_SEED);
  for (let done = 0; done < size; ) {
    const n = Math.min(CHUNK_LENGTH, size - done);
    yield rng.fill(new Uint8Array(n));
    done += n;
  }
}

/** The basis stream with the edits applied (edits sorted by offset, not overlapping). */
function* editedChunks(basis: Iterable<Uint8Array>, edits: readonly Edit[]): Generator<Uint8Array> {
  const rng = new Random(EDIT_SEED ^ 0xffff);
  let position = 0;
  let e = 0;
  let inserted = false;
  for (const chunk of basis) {
    let i = 0;
    while (i < chunk.length) {
      const edit = edits[e];
      const at = position + i;
      if (edit === undefined || edit.offset > at) {
        const stop = edit === undefined ? chunk.length : Math.min(chunk.length, edit.offset - position);
        yield chunk.subarray(i, stop);
        i = stop;
        continue;
      }
      if (!inserted) {
        if (edit.insert > 0) yield rng.fill(new Uint8Array(edit.insert));
        inserted = true;
      }
      const skip = Math.min(chunk.length - i, edit.offset + edit.remove - at);
      i += skip;
      if (position + i >= edit.offset + edit.remove) {
        e++;
        inserted = false;
      }
    }
    position += chunk.length;
  }
}

async function writeChunks(path: string, chunks: Iterable<Uint8Array>, io: MainIO): Promise<number> {
  const out = await createOutput(path, { force: true }, io);
  return withOutput(out, async () => {
    for (const chunk of chunks) await out.write(chunk);
    return out.length;
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_LENGTH })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await work();
  return [result, performance.now() - start];
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => '  ' + row.map((cell, c) => (c === row.length - 1 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('   ')).join('\n');
}

const ms = (t: number): string => `${t.toFixed(t < 10 ? 1 : 0)} ms`;
const count = (n: number): string => n.toLocaleString('en-US');

export interface DemoOptions {
  size: number;
  dir?: string;
  format: SignatureFormat;
}

/** Runs the demo; resolves to true when the patched file matches the new file. */
export async function runDemo(options: DemoOptions, io: MainIO): Promise<boolean> {
  const keep = options.dir !== undefined;
  const dir = keep ? options.dir! : await mkdtemp(join(tmpdir(), 'deltacast-demo-'));
  if (keep) await mkdir(dir, { recursive: true });
  const path = (name: string): string => join(dir, name);
  // A temporary directory is removed unless verification failed (then its files are the evidence).
  let keepFiles = keep;
  try {
    const edits = planEdits(options.size);
    const [[basisLength, newLength], tGenerate] = await timed(async () => [
      await writeChunks(path('basis.bin'), basisChunks(options.size), io),
      await writeChunks(path('new.bin'), editedChunks(basisChunks(options.size), edits), io),
    ]);
    const [sig, tSignature] = await timed(() =>
      writeSignature(path('basis.bin'), path('basis.sig'), { format: options.format, blockLength: 0, strongLength: 0, weakSum: 'rabinkarp' }, { force: true }, io),
    );
    const [delta, tDelta] = await timed(() => writeDelta(path('basis.sig'), path('new.bin'), path('new.delta'), { force: true }, io));
    const [patch, tPatch] = await timed(() => writePatch(path('basis.bin'), path('new.delta'), path('patched.bin'), { force: true }, io));
    const [[expected, actual], tVerify] = await timed(() => Promise.all([sha256File(path('new.bin')), sha256File(path('patched.bin'))]));
    const ok = expected === actual && patch.fileHash === 'sha256' && Buffer.from(patch.digest).toString('hex') === expected;

    const s = delta.stats;
    const kinds = (kind: Edit['kind']): number => edits.filter((edit) => edit.kind === kind).length;
    const lines = [
      `deltacast demo: ${options.format} format, ${formatBytes(basisLength)} basis, new version with ${edits.length} edits ` +
        `(${kinds('replace')} replaced, ${kinds('insert')} inserted, ${kinds('delete')} deleted ranges)`,
      `files in ${dir}${keep ? '' : ' (removed afterwards)'}`,
      '',
      table([
        ['step', 'reads', 'writes', 'time'],
        ['generate', '-', `basis.bin ${formatBytes(basisLength)}, new.bin ${formatBytes(newLength)}`, ms(tGenerate)],
        ['signature', 'basis.bin', `basis.sig ${formatBytes(sig.signatureLength)} (${count(sig.signature.blockCount)} blocks of ${sig.signature.blockLength} B)`, ms(tSignature)],
        ['delta', 'basis.sig + new.bin', `new.delta ${formatBytes(delta.deltaLength)}`, ms(tDelta)],
        ['patch', 'basis.bin + new.delta', `patched.bin ${formatBytes(patch.outputLength)}${patch.verified ? ' (delta hash checked)' : ''}`, ms(tPatch)],
        ['verify', 'new.bin + patched.bin', ok ? 'SHA-256 equal: ok' : 'SHA-256 DIFFERENT', ms(tVerify)],
      ]),
      '',
      `delta: ${count(s.literalBytes)} literal bytes in ${count(s.literalCommands)} commands, ` +
        `${count(s.copiedBytes)} copied bytes in ${count(s.copyCommands)} commands`,
      `compression: the delta is ${((100 * delta.deltaLength) / Math.max(1, newLength)).toFixed(2)}% of the new file ` +
        `(${(newLength / Math.max(1, delta.deltaLength)).toFixed(1)}:1)`,
      `sha256: ${actual}`,
    ];
    io.stdout.write(lines.join('\n') + '\n');
    if (!ok) {
      keepFiles = true;
      throw new OperationError('VERIFY_FAILED', `patched file ${actual} differs from the new file ${expected} (files kept in ${dir})`);
    }
    return ok;
  } finally {
    if (!keepFiles) await rm(dir, { recursive: true, force: true });
  }
}

export function demoCommand(io: MainIO): Command {
  return new Command('demo')
    .summary('a real sync over SSH (default), or signature/delta/patch on generated files')
    .description(
      'sync (default): generate a tree, sync it over SSH to an in-process server on 127.0.0.1, change it, sync again, ' +
        'verify and report. patch: generate a basis and an edited new version, run signature -> delta -> patch, ' +
        'verify by SHA-256 and report sizes and timings.',
    )
    .addOption(choice('--kind <kind>', 'which demo', ['sync', 'patch']).default('sync'))
    .option('--size <bytes>', 'data size: the tree (sync, default 24M) or the basis (patch, default 16M)', byteCount(1024))
    .option('--files <n>', 'files in the generated tree (sync)', integer(1, 100_000), 300)
    .option('--dir <dir>', 'work in DIR and keep the files (default: a temporary directory, removed afterwards)')
    .addOption(choice('--format <format>', 'signature and delta format (patch)', ['native', 'rdiff']).default('native'))
    .action(async (opts: DemoOptions & { kind: 'sync' | 'patch'; files: number; size?: number }) => {
      if (opts.kind === 'sync') {
        await runSyncDemo({ size: opts.size ?? DEFAULT_SYNC_SIZE, files: opts.files, dir: opts.dir }, io);
        return;
      }
      await runDemo({ ...opts, size: opts.size ?? DEFAULT_SIZE }, io);
    });
}
