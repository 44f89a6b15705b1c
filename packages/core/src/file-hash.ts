/**
 * Whole-file hashes, the check a native delta's END carries (docs/format.md, Native delta):
 * SHA-256 (Node's crypto), or XXH3-128 (hash-wasm), the whole-file checksum rsync itself chose.
 * XXH3-128 runs at ~3.7 GB/s here against SHA-256's ~1.3 GB/s (with SHA-NI): on a 1 GiB file that
 * is ~0.5 s less of CPU on each side. Both guard against the same thing, a block matched by a
 * strong-sum collision or a basis that changed under the patch; neither side of a sync is an
 * adversary to the other here, so the cryptographic strength of SHA-256 buys nothing.
 *
 * XXH3-128's WebAssembly module is set up asynchronously (`loadFileHashes()`); the hashers are then
 * synchronous. All XXH3-128 hashers share one module instance: the one that used it last keeps its
 * state in place, and another saves that state away (580 bytes) before loading its own.
 */
import * as crypto from 'node:crypto';
import type { IHasher } from 'hash-wasm';
import { DeltacastError } from './errors.js';
import { sha256 } from './sha256.js';

export type FileHashKind = 'sha256' | 'xxh128';

/** Digest length in bytes of each kind. */
export function fileHashLength(kind: FileHashKind): number {
  return kind === 'sha256' ? 32 : 16;
}

let wasm: IHasher | undefined;
let loading: Promise<void> | undefined;

/** Sets up XXH3-128 (once; later calls return the same promise). SHA-256 needs nothing. */
export function loadFileHashes(): Promise<void> {
  loading ??= import('./file-hash-wasm.js')
    .then((h) => h.createXXHash128())
    .then((hasher) => void (wasm = hasher));
  return loading;
}

/** Whether `kind` can be computed now (XXH3-128 once loadFileHashes() has resolved). */
export function fileHashLoaded(kind: FileHashKind): boolean {
  return kind === 'sha256' || wasm !== undefined;
}

function module(): IHasher {
  if (wasm === undefined) {
    throw new DeltacastError('NOT_READY', 'the XXH3-128 hash module is not set up yet: await loadFileHashes() first');
  }
  return wasm;
}

/** A whole-file hash fed in pieces. */
export interface FileHasher {
  update(data: Uint8Array): void;
  /** The digest, canonical (big-endian) form; once, after the last update. */
  digest(): Uint8Array;
}

/** Which XXH3-128 hasher's state the shared module holds now. */
let holder: Xxh128Hasher | undefined;

class Xxh128Hasher implements FileHasher {
  /** This hasher's state while another one holds the module; undefined: fresh, or in the module. */
  saved: Uint8Array | undefined;
  private readonly hasher = module();

  update(data: Uint8Array): void {
    this.take();
    this.hasher.update(data);
  }

  digest(): Uint8Array {
    this.take();
    holder = undefined;
    return this.hasher.digest('binary');
  }

  private take(): void {
    if (holder === this) return;
    if (holder !== undefined) holder.saved = this.hasher.save();
    if (this.saved !== undefined) this.hasher.load(this.saved);
    else this.hasher.init();
    this.saved = undefined;
    holder = this;
  }
}

class Sha256Hasher implements FileHasher {
  private readonly hash = crypto.createHash('sha256');

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  digest(): Uint8Array {
    return this.hash.digest();
  }
}

export function createFileHasher(kind: FileHashKind): FileHasher {
  return kind === 'sha256' ? new Sha256Hasher() : new Xxh128Hasher();
}

/** The hash of bytes held whole, in one call. */
export function fileHash(kind: FileHashKind, data: Uint8Array): Uint8Array {
  if (kind === 'sha256') return sha256(data);
  const hasher = module();
  if (holder !== undefined) {
    holder.saved = hasher.save();
    holder = undefined;
  }
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
}
