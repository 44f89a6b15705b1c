/**
 * Whole-file hashes (file-hash.ts) and native deltas whose END carries XXH3-128 (flag 0x01).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  createFileHasher,
  delta,
  fileHash,
  fileHashLength,
  literalDelta,
  literalDeltaLength,
  LiteralDeltaStream,
  patchPieces,
  patchStream,
  bufferBasis,
  signature,
  writeLiteralDelta,
  type PatchResult,
} from '../src/index.js';
import { asDeltacastError, concat, decodeCommands, hex, pseudoRandom, thrown } from './helpers.js';

describe('fileHash', () => {
  it('XXH3-128 gives the reference digests, in canonical (big-endian) form', () => {
    // XXH3_128bits of the empty input, from the xxHash reference (sanity check of the byte order).
    expect(hex(fileHash('xxh128', new Uint8Array(0)))).toBe('99aa06d3014798d86001c324468d497f');
    expect(fileHashLength('xxh128')).toBe(16);
    expect(fileHash('xxh128', new Uint8Array(1))).toHaveLength(16);
  });

  it('SHA-256 is the SHA-256 createHash gives', () => {
    const data = pseudoRandom(10_000, 4);
    expect(hex(fileHash('sha256', data))).toBe(createHash('sha256').update(data).digest('hex'));
    expect(fileHashLength('sha256')).toBe(32);
  });

  it('hashers fed in pieces, interleaved with each other and with one-shot hashes, give the one-shot digest', () => {
    const inputs = fc.array(fc.uint8Array({ maxLength: 3_000 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 40 }), fc.constantFrom('sha256', 'xxh128'), (datas, schedule, kind) => {
        const hashers = datas.map(() => createFileHasher(kind));
        const fed = datas.map(() => 0);
        for (const step of schedule) {
          const i = step % datas.length;
          const take = Math.min(datas[i].length - fed[i], (step >> 2) % 700);
          hashers[i].update(datas[i].subarray(fed[i], fed[i] + take));
          fed[i] += take;
          if (step % 5 === 0) fileHash(kind, datas[(i + 1) % datas.length]); // a one-shot in between
        }
        datas.forEach((data, i) => {
          hashers[i].update(data.subarray(fed[i]));
          expect(hex(hashers[i].digest())).toBe(hex(fileHash(kind, data)));
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('native deltas carrying XXH3-128 (flag 0x01)', () => {
  const basis = pseudoRandom(70_500, 7);
  const target = concat(pseudoRandom(3, 8), basis.subarray(300, 70_300));
  const sig = signature(basis, { blockLength: 100, seed: 1n });

  it('set the flag, end with the 16-byte digest, and patch back with the check made', async () => {
    const d = delta(sig, target, { fileHash: 'xxh128' });
    expect(d[5]).toBe(0x01);
    const sha = delta(sig, target);
    expect(sha[5]).toBe(0x00);
    // The same commands; only the END's hash differs (16 bytes against 32).
    expect(d.length).toBe(sha.length - 16);
    expect(hex(d.subarray(6, d.length - 16))).toBe(hex(sha.subarray(6, sha.length - 32)));
    expect(hex(d.subarray(d.length - 16))).toBe(hex(fileHash('xxh128', target)));
    const end = decodeCommands(d).at(-1);
    expect(end).toMatchObject({ type: 'end', targetLength: target.length, fileHash: 'xxh128' });

    expect(hex(applyDelta(basis, d))).toBe(hex(target));
    const results: PatchResult[] = [patchPieces(basis, d).result];
    for (const cut of [1, 5, 6, 17, d.length - 16, d.length - 1]) {
      const out: Uint8Array[] = [];
      const stream = patchStream(bufferBasis(basis), [d.subarray(0, cut), d.subarray(cut)]);
      let next = await stream.next();
      while (!next.done) {
        out.push(next.value);
        next = await stream.next();
      }
      expect(hex(concat(...out))).toBe(hex(target));
      results.push(next.value);
    }
    for (const result of results) {
      expect(result).toMatchObject({ format: 'native', verified: true, fileHash: 'xxh128', outputLength: target.length });
      expect(hex(result.digest)).toBe(hex(fileHash('xxh128', target)));
    }
  });

  it('HASH_MISMATCH on another basis of the same length, TRUNCATED when the digest is cut short', () => {
    const d = delta(sig, target, { fileHash: 'xxh128' });
    const other = basis.slice();
    other[5000] ^= 1;
    const mismatch = asDeltacastError(thrown(() => applyDelta(other, d)));
    expect(mismatch.code).toBe('HASH_MISMATCH');
    expect(mismatch.details).toMatchObject({ fileHash: 'xxh128', expected: hex(fileHash('xxh128', target)) });
    const flipped = d.slice();
    flipped[flipped.length - 1] ^= 1;
    expect(asDeltacastError(thrown(() => applyDelta(basis, flipped))).code).toBe('HASH_MISMATCH');
    for (const cut of [1, 8, 15]) {
      const error = asDeltacastError(thrown(() => applyDelta(basis, d.subarray(0, d.length - cut))));
      expect(error.code).toBe('TRUNCATED');
      expect(error.incomplete).toBe(true);
    }
    // A SHA-256 delta read as XXH3-128 (its flag set by hand): the END's first 16 bytes of SHA-256
    // are no XXH3-128 (checked as the END is read, before the 16 bytes left after it).
    const relabelled = delta(sig, target);
    relabelled[5] = 0x01;
    expect(asDeltacastError(thrown(() => applyDelta(basis, relabelled))).code).toBe('HASH_MISMATCH');
  });

  it('flags other than 0x01 are BAD_COMMAND', () => {
    const d = delta(sig, target, { fileHash: 'xxh128' });
    for (const flags of [0x02, 0x03, 0x80]) {
      const bad = d.slice();
      bad[5] = flags;
      const error = asDeltacastError(thrown(() => applyDelta(basis, bad)));
      expect(error.code).toBe('BAD_COMMAND');
      expect(error.details).toMatchObject({ flags });
    }
  });

  it('literal deltas of new files: literalDelta, writeLiteralDelta and LiteralDeltaStream agree with delta()', () => {
    const empty = signature(new Uint8Array(0), { format: 'native', seed: 0n });
    for (const size of [0, 1, 1000, 70_000]) {
      const data = pseudoRandom(size, size + 1);
      const made = literalDelta(data, 'xxh128');
      expect(made.length).toBe(literalDeltaLength(size, 'xxh128'));
      expect(literalDeltaLength(size, 'xxh128')).toBe(literalDeltaLength(size) - 16);
      expect(hex(made)).toBe(hex(delta(empty, data, { fileHash: 'xxh128' })));
      const out = new Uint8Array(made.length + 2);
      expect(writeLiteralDelta(data, out, 1, 'xxh128')).toBe(made.length);
      expect(hex(out.subarray(1, 1 + made.length))).toBe(hex(made));
      const stream = new LiteralDeltaStream('xxh128');
      const streamed = concat(stream.update(data.subarray(0, size >> 1)), stream.update(data.subarray(size >> 1)), stream.final());
      expect(hex(applyDelta(new Uint8Array(0), streamed))).toBe(hex(data));
      expect(hex(streamed.subarray(streamed.length - 16))).toBe(hex(fileHash('xxh128', data)));
      expect(patchPieces(new Uint8Array(0), made).result).toMatchObject({ verified: true, fileHash: 'xxh128' });
    }
  });

  it('rdiff deltas are unchanged by the option (they carry no hash)', () => {
    const rdiffSig = signature(basis, { format: 'rdiff', blockLength: 100 });
    expect(hex(delta(rdiffSig, target, { fileHash: 'xxh128' }))).toBe(hex(delta(rdiffSig, target)));
    expect(patchPieces(basis, delta(rdiffSig, target)).result).toMatchObject({ format: 'rdiff', fileHash: 'sha256', verified: false });
  });
});
