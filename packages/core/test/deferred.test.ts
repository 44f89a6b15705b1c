/**
 * The deferred entry: importing it sets nothing up, a strong sum asked for too early is a typed
 * NOT_READY error (never a wrong sum), and after loadStrongSums() everything matches the main entry.
 * This file imports only the deferred entry, so the hash modules are not set up by anything else.
 */
import { describe, expect, it } from 'vitest';
import {
  blake2b256,
  createDelta,
  createFileHasher,
  createSignature,
  encodeSignature,
  fileHash,
  fileHashLoaded,
  indexSignature,
  literalDelta,
  loadFileHashes,
  loadStrongSums,
  md4,
  signature,
  strongSumsLoaded,
  xxh64,
} from '../src/deferred.js';

// Not from ./helpers.js: it imports the main entry, which would set the modules up.
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
function pseudoRandom(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('@deltacast/core/deferred', () => {
  it('refuses strong sums until loadStrongSums() has resolved, then computes them', async () => {
    expect(strongSumsLoaded()).toBe(false);
    const data = pseudoRandom(10_000, 3);
    for (const sum of [() => xxh64(data, 1n), () => blake2b256(data), () => md4(data)]) {
      expect(sum).toThrow(expect.objectContaining({ code: 'NOT_READY', name: 'DeltacastError' }));
    }
    expect(() => signature(data, { format: 'native', seed: 5n, blockLength: 1024 })).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
    expect(() => signature(data, { format: 'rdiff', strongSum: 'md4', blockLength: 1024 })).toThrow(expect.objectContaining({ code: 'NOT_READY' }));

    // What hashes no block works before: an empty signature, its index and a new file's literal delta.
    const empty = indexSignature(signature(new Uint8Array(0), { format: 'native', seed: 0n }));
    expect(empty.signature.blockCount).toBe(0);
    expect(literalDelta(data).length).toBeGreaterThan(data.length);

    // One kind alone: the others stay unset (a native sync never loads librsync's sums).
    const native = loadStrongSums(['xxh64']);
    expect(loadStrongSums(['xxh64'])).toBe(native);
    await native;
    expect(strongSumsLoaded(['xxh64'])).toBe(true);
    expect(strongSumsLoaded()).toBe(false);
    expect(xxh64(data, 1n)).toBeTypeOf('bigint');
    for (const sum of [() => blake2b256(data), () => md4(data)]) {
      expect(sum).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
    }
    const first = loadStrongSums();
    expect(loadStrongSums()).toBe(first); // set up once
    await first;
    expect(strongSumsLoaded()).toBe(true);
    expect(hex(md4(new TextEncoder().encode('abc')))).toBe('a448017aaf21d8525fc10ae87aa6729d');
    const sig = signature(data, { format: 'native', seed: 5n, blockLength: 1024 });
    const builder = createDelta(indexSignature(sig));
    builder.update(data);
    builder.final();
    expect(builder.stats.copiedBytes).toBe(data.length);
    const incremental = createSignature({ format: 'native', seed: 5n, blockLength: 1024 });
    expect(hex(encodeSignature(incremental.update(data).digest()))).toBe(hex(encodeSignature(sig)));
  });

  it('refuses XXH3-128 whole-file hashes until loadFileHashes() has resolved; SHA-256 needs nothing', async () => {
    const data = pseudoRandom(1_000, 9);
    expect(fileHashLoaded('xxh128')).toBe(false);
    expect(fileHashLoaded('sha256')).toBe(true);
    for (const use of [() => fileHash('xxh128', data), () => createFileHasher('xxh128'), () => literalDelta(data, 'xxh128')]) {
      expect(use).toThrow(expect.objectContaining({ code: 'NOT_READY', name: 'DeltacastError' }));
    }
    expect(fileHash('sha256', data)).toHaveLength(32);
    const loading = loadFileHashes();
    expect(loadFileHashes()).toBe(loading);
    await loading;
    expect(fileHashLoaded('xxh128')).toBe(true);
    expect(hex(fileHash('xxh128', new Uint8Array(0)))).toBe('99aa06d3014798d86001c324468d497f');
  });
});
