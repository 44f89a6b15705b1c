/**
 * Small changed files of a fan-out in batches (the transport's `sigs` and `puts`, docs/protocol.md):
 * for a run of consecutive small files, each destination is asked for all the signatures it has in
 * one request; each file is read once and its delta computed once per distinct basis, exactly as for
 * a file sent alone; then each destination gets all of its files in one request. A file that cannot
 * go this way (its basis too large for a batch, or the file changed since the scan or while it was
 * read) is handed back with the destinations still to serve, to be sent alone with that path's own
 * checks, wider targets and re-reads. Every destination still receives the same bytes.
 */
import { createDelta, decodeSignature, indexSignature, literalDeltaLength, writeLiteralDelta } from '@deltacast/core/deferred';
import {
  BATCH_CAPABILITY,
  deltaFileHash,
  isSessionFailure,
  loadDeltaHashes,
  PayloadBuffer,
  ProtocolError,
  readChunks,
  remoteFailure,
  hasBasis,
  TOO_LARGE,
  type Change,
  type DestinationRun,
  type SourceEntry,
} from '@deltacast/transport';

/** One destination that needs a file, and what its plan says of it. */
export interface Target {
  run: DestinationRun;
  change: Change;
}

/** What a batch needs of the fan-out around it. */
export interface BatchContext {
  seed: bigint;
  compress?: boolean;
  owner?: boolean;
  live(run: DestinationRun): boolean;
  /** Takes a destination whose session failed out of the run. */
  drop(run: DestinationRun, error: unknown): void;
  stat(path: string): { size: number; mtimeMs: number };
  /** One per delta computed: the destinations it reached. */
  delta(event: { path: string; destinations: string[]; basis: 'new' | 'shared'; deltaBytes: number; literalBytes: number; matchedBytes: number }): void;
  counts: { deltasComputed: number; destinationFiles: number; sourceReads: number };
}

/** Whether a destination's agent takes batches. */
export function takesBatches(run: DestinationRun): boolean {
  return run.client.info?.capabilities.includes(BATCH_CAPABILITY) ?? false;
}

interface Group {
  targets: Target[];
  basis: 'new' | 'shared';
  delta: Uint8Array;
  literalBytes: number;
  matchedBytes: number;
}

/**
 * Sends the files of `items` (small, each with the destinations that need it) in batches. Resolves
 * with what is to be sent alone: files with the destinations the batches did not serve.
 */
export async function sendSmallFiles(items: { entry: SourceEntry; targets: Target[] }[], ctx: BatchContext): Promise<{ entry: SourceEntry; targets: Target[] }[]> {
  const alone = new Map<SourceEntry, Target[]>();
  const handBack = (entry: SourceEntry, targets: Target[]) => {
    const list = alone.get(entry);
    if (list) list.push(...targets);
    else alone.set(entry, [...targets]);
  };

  // The deltas' hash modules are set up while the signatures come.
  const hashes = loadDeltaHashes();
  hashes.catch(() => {});
  // Each destination's signatures, in one request per destination.
  const wanted = new Map<DestinationRun, { entry: SourceEntry; target: Target }[]>();
  for (const { entry, targets } of items) {
    for (const target of targets) if (hasBasis(target.change)) pushTo(wanted, target.run, { entry, target });
  }
  const signatures = new Map<Target, Uint8Array>();
  await Promise.all(
    [...wanted].map(async ([run, wants]) => {
      if (!ctx.live(run)) return;
      try {
        const results = await run.client.signatureBatch(
          wants.map((w) => w.entry.path),
          ctx.seed,
        );
        results.forEach((r, k) => {
          const { entry, target } = wants[k];
          if (r.ok) signatures.set(target, r.signature);
          else if (r.code === TOO_LARGE) handBack(entry, [target]);
          else run.fail(entry.path, remoteFailure(r.code, r.message, entry.path));
        });
      } catch (error) {
        if (isSessionFailure(error)) ctx.drop(run, error);
        else for (const w of wants) run.fail(w.entry.path, error);
      }
    }),
  );

  await hashes;
  // Each file read once, its deltas made once per distinct basis.
  const prepared: { entry: SourceEntry; groups: Group[] }[] = [];
  for (const { entry, targets } of items) {
    const handed = alone.get(entry) ?? [];
    const active = targets.filter((t) => ctx.live(t.run) && !handed.includes(t) && (!hasBasis(t.change) || signatures.has(t)));
    if (active.length === 0) continue;
    const failAll = (error: unknown) => {
      for (const t of active) t.run.fail(entry.path, error);
    };
    let bytes: Uint8Array;
    try {
      const before = ctx.stat(entry.local);
      const read = readWhole(entry.local, entry.size);
      ctx.counts.sourceReads++;
      const after = ctx.stat(entry.local);
      const steady =
        before.size === entry.size && before.mtimeMs === entry.mtimeMs && after.size === entry.size && after.mtimeMs === entry.mtimeMs && read.length === entry.size;
      if (!steady) {
        // Changed since the scan or while read: sent alone, which widens its targets and reads again.
        handBack(entry, active);
        continue;
      }
      bytes = read;
    } catch (error) {
      failAll(error); // vanished or unreadable since the scan
      continue;
    }
    const groups: Group[] = [];
    const fresh = active.filter((t) => !hasBasis(t.change));
    if (fresh.length > 0) {
      const fileHash = deltaFileHash(fresh.map((t) => t.run.client));
      const delta = new Uint8Array(literalDeltaLength(bytes.length, fileHash));
      writeLiteralDelta(bytes, delta, 0, fileHash);
      groups.push({ targets: fresh, basis: 'new', delta, literalBytes: bytes.length, matchedBytes: 0 });
    }
    // Destinations with the same signature (byte for byte: a small file's is short) share a delta.
    const bySignature = new Map<string, Target[]>();
    for (const t of active) {
      if (!hasBasis(t.change)) continue;
      const sig = signatures.get(t)!;
      pushTo(bySignature, Buffer.from(sig.buffer, sig.byteOffset, sig.length).toString('latin1'), t);
    }
    for (const members of bySignature.values()) {
      const sig = decodeSignature(signatures.get(members[0])!);
      if (sig.format !== 'native' || sig.seed !== ctx.seed) {
        for (const t of members) t.run.fail(entry.path, new ProtocolError('BAD_MESSAGE', `signature for ${entry.path} is not native with our seed`, {}));
        continue;
      }
      const builder = createDelta(indexSignature(sig), { expectedLength: bytes.length, fileHash: deltaFileHash(members.map((t) => t.run.client)) });
      const head = builder.update(bytes);
      const tail = builder.final();
      const delta = head.length === 0 ? tail : Buffer.concat([head, tail]);
      groups.push({ targets: members, basis: 'shared', delta, literalBytes: builder.stats.literalBytes, matchedBytes: builder.stats.copiedBytes });
    }
    prepared.push({ entry, groups });
  }

  // Each destination's files in one request.
  const perRun = new Map<DestinationRun, { entry: SourceEntry; target: Target; group: Group }[]>();
  for (const { entry, groups } of prepared) {
    for (const group of groups) for (const target of group.targets) pushTo(perRun, target.run, { entry, target, group });
  }
  const reached = new Map<Group, string[]>();
  await Promise.all(
    [...perRun].map(async ([run, files]) => {
      if (!ctx.live(run)) return;
      const payload = new PayloadBuffer(files.reduce((n, f) => n + f.group.delta.length, 0));
      for (const f of files) payload.append(f.group.delta);
      const list = files.map(({ entry, group }) => ({
        path: entry.path,
        attributes: { size: entry.size, mode: entry.mode, mtimeMs: entry.mtimeMs, uid: ctx.owner ? entry.uid : undefined, gid: ctx.owner ? entry.gid : undefined },
        basis: group.basis === 'shared',
        length: group.delta.length,
      }));
      try {
        const { results, sentBytes } = await run.client.putBatch(list, payload.bytes(), { compress: ctx.compress });
        const share = payload.length > 0 ? sentBytes / payload.length : 0;
        results.forEach((r, k) => {
          const { entry, target, group } = files[k];
          if (r.ok) {
            ctx.counts.destinationFiles++;
            pushTo(reached, group, run.name);
            run.fileDone(target.change, { size: r.size, literalBytes: group.literalBytes, matchedBytes: group.matchedBytes, sentBytes: Math.round(group.delta.length * share) });
          } else if (r.code === TOO_LARGE) handBack(entry, [target]);
          else run.fail(entry.path, remoteFailure(r.code, r.message, entry.path));
        });
      } catch (error) {
        if (isSessionFailure(error)) ctx.drop(run, error);
        else for (const f of files) run.fail(f.entry.path, error);
      }
    }),
  );
  for (const { entry, groups } of prepared) {
    for (const group of groups) {
      ctx.counts.deltasComputed++;
      ctx.delta({
        path: entry.path,
        destinations: reached.get(group) ?? [],
        basis: group.basis,
        deltaBytes: group.delta.length,
        literalBytes: group.literalBytes,
        matchedBytes: group.matchedBytes,
      });
    }
  }
  return [...alone].map(([entry, targets]) => ({ entry, targets }));
}

/** A small file's bytes, copied out of readChunks' shared buffer (a file that grew: all of it read). */
function readWhole(path: string, size: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const chunk of readChunks(path, size)) parts.push(chunk.slice());
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Adds `value` to the list under `key` (made on first use). */
function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
