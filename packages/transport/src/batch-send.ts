/**
 * Small files sent in batches (src/batch.ts) by a transfer's pipeline. Consecutive small files of the
 * plan go together: the signatures of those that have a basis in one `sigs`, then every delta in one
 * `puts`. A file a batch cannot take (grown past what a batch takes since the scan, or whose basis
 * is TOO_LARGE for a batch) is handed back to be sent alone; every other file gets its own outcome, as
 * its own requests would have given it.
 */
import { createDelta, decodeSignature, indexSignature, literalDeltaLength, writeLiteralDelta } from '@deltacast/core/deferred';
import type { AgentClient } from './agent-client.js';
import { MAX_BATCH_BASIS, MAX_BATCH_BYTES, MAX_BATCH_FILES, TOO_LARGE } from './batch.js';
import { deltaFileHash, loadDeltaHashes } from './delta-hash.js';
import { sourceIndex, type RemoteListing } from './listing.js';
import { ProtocolError, RemoteError } from './errors.js';
import { hasBasis, skippedByRules, type Change, type TransferRules } from './plan.js';
import type { SourceTree } from './tree.js';

/** A file under this size (at the scan) goes in a batch. */
export const SMALL_FILE = 64 * 1024;
/** Source bytes gathered into one batch. */
const BATCH_SOURCE_BYTES = 1024 * 1024;
/** Header bytes the file list of one batch may take (the frame header cap is 64 KiB). */
const BATCH_HEADER_BYTES = 40 * 1024;

export interface FileStats {
  size: number;
  literalBytes: number;
  matchedBytes: number;
  sentBytes: number;
}

/** What became of one file of a batch. */
export type BatchOutcome = { stats: FileStats } | { error: unknown } | { alone: true };

/** Whether a change can go in a batch: a small new file, or a small changed file. */
export function batchable(change: Change): boolean {
  return (change.kind === 'create' || change.kind === 'update') && change.source !== undefined && change.source.size < SMALL_FILE;
}

/**
 * The end (exclusive) of the batch that starts at `start`: the items after it for which `small`
 * gives a path and a size, up to MAX_BATCH_FILES of them, BATCH_SOURCE_BYTES of their sizes and
 * BATCH_HEADER_BYTES of their paths (the first item always goes).
 */
export function batchEnd<T>(items: readonly T[], start: number, small: (item: T) => { path: string; size: number } | undefined): number {
  let end = start;
  let bytes = 0;
  let header = 0;
  while (end < items.length && end - start < MAX_BATCH_FILES) {
    const item = small(items[end]);
    if (!item) break;
    // At most three UTF-8 bytes per UTF-16 unit; the rest of an entry is under 48 bytes.
    const entry = item.path.length * 3 + 48;
    if (end > start && (bytes + item.size > BATCH_SOURCE_BYTES || header + entry > BATCH_HEADER_BYTES)) break;
    bytes += item.size;
    header += entry;
    end++;
  }
  return end;
}

/**
 * The paths whose signatures the batches will ask for, as a compared listing tells them before any
 * plan: small source files (under SMALL_FILE at the scan) that the destination holds, different, as
 * regular files of at most MAX_BATCH_BASIS, but for those the transfer rules will leave alone. In
 * source order, the order the batches go in. None for a listing that was not compared: every entry
 * is in it.
 */
export function changedSmallFiles(tree: SourceTree, remote: RemoteListing, rules: TransferRules = {}): string[] {
  if (!remote.unchanged || rules.ignoreExisting) return [];
  const index = sourceIndex(tree.entries);
  const found: number[] = [];
  for (const e of remote.entries) {
    if (e.type !== 'f' || e.size > MAX_BATCH_BASIS) continue;
    const i = index.get(e.path);
    if (i === undefined) continue;
    const source = tree.entries[i];
    if (source.type !== 'f' || source.size >= SMALL_FILE) continue;
    // Not those the plan will leave alone: by a transfer rule, or of the same size with --size-only.
    if (skippedByRules(rules, source, e) || (rules.sizeOnly && source.size === e.size)) continue;
    found.push(i);
  }
  found.sort((a, b) => a - b);
  return found.map((i) => tree.entries[i].path);
}

/** A change's path and size when it can go in a batch. */
export function smallChange(change: Change): { path: string; size: number } | undefined {
  return batchable(change) ? { path: change.path, size: change.source!.size } : undefined;
}

/**
 * Sends `changes` (batchable, as batchEnd groups them) as one batch. `read` gives a source file's
 * bytes, or undefined when it has grown past what a batch takes; they are used before the next call
 * (they may sit in a buffer the next read reuses). Rejects only when the session fails, or the agent
 * refuses the batch as a whole.
 */
export async function sendBatch(
  changes: readonly Change[],
  client: AgentClient,
  seed: bigint,
  options: { compress?: boolean; owner?: boolean },
  read: (change: Change) => Uint8Array | undefined,
): Promise<BatchOutcome[]> {
  const outcomes: (BatchOutcome | undefined)[] = new Array(changes.length).fill(undefined);
  // The deltas' hash modules are set up while the signatures come (delta-hash.ts).
  const hashes = loadDeltaHashes();
  hashes.catch(() => {});
  // Signatures first, for the files that have a basis.
  const signatures = new Map<number, Uint8Array>();
  const needSig = changes.flatMap((c, i) => (hasBasis(c) ? [i] : []));
  if (needSig.length > 0) {
    const sigs = await client.signatureBatch(
      needSig.map((i) => changes[i].path),
      seed,
    );
    needSig.forEach((i, k) => {
      const r = sigs[k];
      if (r.ok) signatures.set(i, r.signature);
      else outcomes[i] = r.code === TOO_LARGE ? { alone: true } : { error: remoteFailure(r.code, r.message, changes[i].path) };
    });
  }
  await hashes;
  const fileHash = deltaFileHash(client);
  const files: { path: string; attributes: { size: number; mode: number; mtimeMs: number; uid?: number; gid?: number }; basis: boolean; length: number }[] = [];
  const members: { index: number; literalBytes: number; matchedBytes: number }[] = [];
  // Every delta side by side in one buffer, the payload as it goes out: new files are written
  // straight into it, with no buffer of their own, and full SSH packets carry it.
  const payload = new PayloadBuffer(changes.reduce((n, c) => n + literalDeltaLength(c.source!.size, fileHash), 0));
  for (let i = 0; i < changes.length; i++) {
    if (outcomes[i]) continue;
    const change = changes[i];
    const source = change.source!;
    try {
      const bytes = read(change);
      if (!bytes) {
        outcomes[i] = { alone: true };
        continue;
      }
      let length: number;
      let literalBytes = bytes.length;
      let matchedBytes = 0;
      const basis = hasBasis(change);
      if (basis) {
        const sig = decodeSignature(signatures.get(i)!);
        if (sig.format !== 'native' || sig.seed !== seed) {
          throw new ProtocolError('BAD_MESSAGE', `signature for ${change.path} is not native with our seed`, { path: change.path });
        }
        const builder = createDelta(indexSignature(sig), { expectedLength: bytes.length, fileHash });
        const head = builder.update(bytes);
        const tail = builder.final();
        length = head.length + tail.length;
        if (payload.length + length > MAX_BATCH_BYTES) {
          outcomes[i] = { alone: true };
          continue;
        }
        payload.append(head);
        payload.append(tail);
        literalBytes = builder.stats.literalBytes;
        matchedBytes = builder.stats.copiedBytes;
      } else {
        length = literalDeltaLength(bytes.length, fileHash);
        if (payload.length + length > MAX_BATCH_BYTES) {
          outcomes[i] = { alone: true };
          continue;
        }
        writeLiteralDelta(bytes, payload.room(length), 0, fileHash);
        payload.length += length;
      }
      const attributes = {
        size: source.size,
        mode: source.mode,
        mtimeMs: source.mtimeMs,
        uid: options.owner ? source.uid : undefined,
        gid: options.owner ? source.gid : undefined,
      };
      files.push({ path: change.path, attributes, basis, length });
      members.push({ index: i, literalBytes, matchedBytes });
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      outcomes[i] = { error };
    }
  }
  if (files.length > 0) {
    const { results, sentBytes } = await client.putBatch(files, payload.bytes(), { compress: options.compress });
    // The bytes sent, shared out by delta length (compression works on the batch as a whole).
    const share = payload.length > 0 ? sentBytes / payload.length : 0;
    results.forEach((r, k) => {
      const { index, literalBytes, matchedBytes } = members[k];
      if (r.ok) outcomes[index] = { stats: { size: r.size, literalBytes, matchedBytes, sentBytes: Math.round(files[k].length * share) } };
      else outcomes[index] = r.code === TOO_LARGE ? { alone: true } : { error: remoteFailure(r.code, r.message, changes[index].path) };
    });
  }
  return outcomes.map((o) => o ?? { alone: true });
}

/** A batch's payload, written in place: grows (by copying) only when it was sized too small. */
export class PayloadBuffer {
  private buffer: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(capacity, 64));
  }

  /** A view of the next `n` bytes to write (the caller then adds `n` to `length`). */
  room(n: number): Uint8Array {
    if (this.length + n > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + n));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    return this.buffer.subarray(this.length, this.length + n);
  }

  append(bytes: Uint8Array): void {
    this.room(bytes.length).set(bytes);
    this.length += bytes.length;
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

/** A batch file's failure as put would have reported it. */
export function remoteFailure(code: string, message: string, path: string): RemoteError {
  return new RemoteError(code, `put ${path}: ${message}`, { code, path });
}
