import { describe, expect, it } from 'vitest';
import {
  MAX_BLOCK_LENGTH,
  NATIVE_SIG_MAGIC,
  SignatureError,
  blake2b256,
  createSignature,
  decodeSignature,
  encodeSignature,
  md4,
  nativeBlockLength,
  rabinKarpSum,
  rdiffBlockLength,
  rollsumSum,
  signature,
  signatureOfStream,
  xxh64,
  type Signature,
  type SignatureOptions,
} from '../src/index.js';
import { asDeltacastError, bytes, concat, hex, pseudoRandom, thrown } from './helpers.js';

function be64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

function expectSignatureError(fn: () => unknown, code: string, details?: Record<string, unknown>): SignatureError {
  const error = asDeltacastError(thrown(fn));
  expect(error).toBeInstanceOf(SignatureError);
  expect(error.code).toBe(code);
  if (details) expect(error.details).toMatchObject(details);
  return error as SignatureError;
}

describe('native signature layout', () => {
  // "DCSG" | version u8 | weak u8 | strong u8 | strong_len u8 | block_len u32 | basis_len u64 | seed u64 | records
  const basis = bytes('abcdefghij');
  const seed = 0x0102030405060708n;

  it('has each header field at its offset and one record per block (the last one short)', () => {
    const sig = signature(basis, { blockLength: 4, seed });
    const out = encodeSignature(sig);
    const view = new DataView(out.buffer, out.byteOffset);
    expect(out.length).toBe(28 + 3 * (4 + 8));
    expect(view.getUint32(0)).toBe(NATIVE_SIG_MAGIC);
    expect(hex(out.subarray(0, 4))).toBe(hex(bytes('DCSG')));
    expect(out[4]).toBe(1); // version
    expect(out[5]).toBe(1); // weak: RabinKarp
    expect(out[6]).toBe(1); // strong: xxh64
    expect(out[7]).toBe(8); // strong length
    expect(view.getUint32(8)).toBe(4);
    expect(view.getBigUint64(12)).toBe(10n);
    expect(view.getBigUint64(20)).toBe(seed);
    const blocks = [basis.subarray(0, 4), basis.subarray(4, 8), basis.subarray(8, 10)];
    blocks.forEach((block, i) => {
      const at = 28 + i * 12;
      expect(view.getUint32(at), `weak ${i}`).toBe(rabinKarpSum(block));
      expect(hex(out.subarray(at + 4, at + 12)), `strong ${i}`).toBe(be64(xxh64(block, seed)));
    });
  });

  it('records the rollsum as weak sum id 2', () => {
    const out = encodeSignature(signature(basis, { blockLength: 4, seed, weakSum: 'rollsum', strongLength: 3 }));
    expect(out[5]).toBe(2);
    expect(out[7]).toBe(3);
    expect(out.length).toBe(28 + 3 * 7);
    expect(new DataView(out.buffer).getUint32(28)).toBe(rollsumSum(basis.subarray(0, 4)));
  });

  it('defaults: xxh64 full length, RabinKarp, rsync block length, random seed, basis length kept', () => {
    const data = pseudoRandom(3000);
    const a = signature(data);
    const b = signature(data);
    expect(a).toMatchObject({
      format: 'native',
      weakSum: 'rabinkarp',
      strongSum: 'xxh64',
      strongLength: 8,
      blockLength: nativeBlockLength(3000),
      basisLength: 3000,
      blockCount: Math.ceil(3000 / 700),
    });
    // Seeds are drawn per signature, so block sums differ per transfer.
    expect(a.seed).not.toBe(b.seed);
    expect(hex(a.strongSums)).not.toBe(hex(b.strongSums));
    expect(Array.from(a.weakSums)).toEqual(Array.from(b.weakSums));
  });
});

describe('rdiff signature layout', () => {
  // magic u32 | block_len u32 | strong_len u32 | { weak u32, strong[strong_len] } * n
  const basis = bytes('The quick brown fox jumps over the lazy dog');

  it.each([
    ['rabinkarp', 'blake2', 0x72730147],
    ['rollsum', 'blake2', 0x72730137],
    ['rabinkarp', 'md4', 0x72730146],
    ['rollsum', 'md4', 0x72730136],
  ] as const)('%s + %s: magic %d, block and strong length at 4 and 8', (weakSum, strongSum, magic) => {
    const sig = signature(basis, { format: 'rdiff', weakSum, strongSum, blockLength: 16 });
    const out = encodeSignature(sig);
    const view = new DataView(out.buffer);
    const full = strongSum === 'blake2' ? 32 : 16;
    expect(view.getUint32(0)).toBe(magic);
    expect(view.getUint32(4)).toBe(16);
    expect(view.getUint32(8)).toBe(full);
    expect(out.length).toBe(12 + 3 * (4 + full));
    for (let i = 0; i < 3; i++) {
      const block = basis.subarray(i * 16, Math.min(basis.length, (i + 1) * 16));
      const at = 12 + i * (4 + full);
      const weak = weakSum === 'rabinkarp' ? rabinKarpSum(block) : rollsumSum(block);
      const strong = strongSum === 'blake2' ? blake2b256(block) : md4(block);
      expect(view.getUint32(at)).toBe(weak);
      expect(hex(out.subarray(at + 4, at + 4 + full))).toBe(hex(strong));
    }
  });

  it('defaults to rdiff 2.3.2: RabinKarp + BLAKE2, full-length sums, rdiff block length, no seed, no basis length', () => {
    const data = pseudoRandom(70_000);
    const sig = signature(data, { format: 'rdiff' });
    expect(sig).toMatchObject({
      format: 'rdiff',
      weakSum: 'rabinkarp',
      strongSum: 'blake2',
      strongLength: 32,
      blockLength: rdiffBlockLength(70_000),
      seed: 0n,
      basisLength: undefined,
      blockCount: Math.ceil(70_000 / 256),
    });
    expect(createSignature({ format: 'rdiff' }).blockLength).toBe(2048);
  });
});

describe('block boundaries', () => {
  const cases: [string, number, number][] = [
    ['empty basis', 0, 0],
    ['basis shorter than one block', 5, 1],
    ['exactly one block', 8, 1],
    ['exact multiple of the block length', 24, 3],
    ['one byte past a multiple', 25, 4],
  ];
  it.each(cases)('%s (%d bytes, block 8) -> %d blocks', (_name, length, blocks) => {
    const data = pseudoRandom(length, 5);
    for (const format of ['native', 'rdiff'] as const) {
      const sig = signature(data, { format, blockLength: 8, seed: 1n });
      expect(sig.blockCount).toBe(blocks);
      expect(sig.weakSums.length).toBe(blocks);
      expect(sig.strongSums.length).toBe(blocks * sig.strongLength);
      if (blocks > 0) {
        const lastStart = (blocks - 1) * 8;
        expect(sig.weakSums[blocks - 1]).toBe(rabinKarpSum(data, lastStart, length));
      }
      const encoded = encodeSignature(sig);
      expect(encoded.length).toBe((format === 'native' ? 28 : 12) + blocks * (4 + sig.strongLength));
      expect(decodeSignature(encoded)).toEqual(sig);
    }
  });
});

describe('strong length', () => {
  it('keeps a prefix of each full strong sum', () => {
    const data = pseudoRandom(100, 9);
    const kinds: SignatureOptions[] = [
      { format: 'native', seed: 77n },
      { format: 'rdiff', strongSum: 'blake2' },
      { format: 'rdiff', strongSum: 'md4' },
    ];
    for (const opts of kinds) {
      const full = signature(data, { ...opts, blockLength: 30 });
      for (let k = 1; k <= full.strongLength; k++) {
        const short = signature(data, { ...opts, blockLength: 30, strongLength: k });
        expect(short.strongLength).toBe(k);
        for (let b = 0; b < full.blockCount; b++) {
          const prefix = full.strongSums.subarray(b * full.strongLength, b * full.strongLength + k);
          expect(hex(short.strongSums.subarray(b * k, (b + 1) * k))).toBe(hex(prefix));
        }
      }
    }
  });
});

describe('seeds', () => {
  const data = pseudoRandom(1000, 13);
  it('the same seed gives the same bytes', () => {
    expect(hex(encodeSignature(signature(data, { seed: 5n, blockLength: 64 })))).toBe(
      hex(encodeSignature(signature(data, { seed: 5n, blockLength: 64 }))),
    );
  });

  it('different seeds give different strong sums for every block, the same weak sums', () => {
    const a = signature(data, { seed: 5n, blockLength: 64 });
    const b = signature(data, { seed: 6n, blockLength: 64 });
    expect(Array.from(a.weakSums)).toEqual(Array.from(b.weakSums));
    for (let i = 0; i < a.blockCount; i++) {
      expect(hex(a.strongSums.subarray(i * 8, i * 8 + 8))).not.toBe(hex(b.strongSums.subarray(i * 8, i * 8 + 8)));
    }
  });

  it('a 64-bit seed survives encoding', () => {
    const seed = 0xffff_eeee_dddd_ccccn;
    expect(decodeSignature(encodeSignature(signature(data, { seed }))).seed).toBe(seed);
  });

  it('rdiff signatures ignore the seed (librsync sums are unseeded)', () => {
    const a = signature(data, { format: 'rdiff', seed: 1n });
    const b = signature(data, { format: 'rdiff', seed: 2n });
    expect(a.seed).toBe(0n);
    expect(hex(encodeSignature(a))).toBe(hex(encodeSignature(b)));
  });
});

describe('invalid options', () => {
  it.each([
    [{ blockLength: 0 }, { blockLength: 0 }],
    [{ blockLength: -8 }, { blockLength: -8 }],
    [{ blockLength: 1.5 }, { blockLength: 1.5 }],
    [{ blockLength: MAX_BLOCK_LENGTH + 1 }, { blockLength: MAX_BLOCK_LENGTH + 1 }],
    [{ strongLength: 0 }, { strongLength: 0, max: 8 }],
    [{ strongLength: 9 }, { strongLength: 9, max: 8 }],
    [{ format: 'rdiff', strongLength: 33 }, { strongLength: 33, max: 32 }],
    [{ format: 'rdiff', strongSum: 'md4', strongLength: 17 }, { strongLength: 17, max: 16 }],
    [{ strongSum: 'md4' }, { format: 'native', strongSum: 'md4' }],
    [{ format: 'rdiff', strongSum: 'xxh64' }, { format: 'rdiff', strongSum: 'xxh64' }],
    [{ format: 'zip' }, { format: 'zip' }],
    [{ weakSum: 'adler32' }, { weakSum: 'adler32' }],
    [{ strongSum: 'sha1' }, { strongSum: 'sha1' }],
  ] as [SignatureOptions, Record<string, unknown>][])('%j -> INVALID_OPTION %j', (opts, details) => {
    expectSignatureError(() => createSignature(opts), 'INVALID_OPTION', details);
    expectSignatureError(() => signature(new Uint8Array(10), opts), 'INVALID_OPTION', details);
  });

  it('update or digest after digest -> FINISHED', () => {
    const builder = createSignature({ seed: 1n });
    builder.update(new Uint8Array(3));
    builder.digest();
    expectSignatureError(() => builder.update(new Uint8Array(1)), 'FINISHED');
    expectSignatureError(() => builder.digest(), 'FINISHED');
  });
});

describe('incremental and streamed forms', () => {
  it('createSignature and signatureOfStream equal the one-shot signature', async () => {
    const data = pseudoRandom(5000, 21);
    const opts: SignatureOptions = { blockLength: 100, seed: 3n };
    const oneShot = encodeSignature(signature(data, opts));
    const builder = createSignature(opts);
    for (let at = 0; at < data.length; at += 333) builder.update(data.subarray(at, at + 333));
    expect(hex(encodeSignature(builder.digest()))).toBe(hex(oneShot));
    async function* chunks() {
      for (let at = 0; at < data.length; at += 1000) yield data.subarray(at, at + 1000);
    }
    expect(hex(encodeSignature(await signatureOfStream(chunks(), opts)))).toBe(hex(oneShot));
  });

  it('grows past its initial capacity when the basis length was not given', () => {
    const data = pseudoRandom(100 * 64 + 1, 2);
    const sig = createSignature({ blockLength: 64, seed: 1n }).update(data).digest();
    expect(sig.blockCount).toBe(101);
    expect(hex(encodeSignature(sig))).toBe(hex(encodeSignature(signature(data, { blockLength: 64, seed: 1n }))));
  });
});

describe('decodeSignature', () => {
  const data = pseudoRandom(50, 4);
  const native = encodeSignature(signature(data, { blockLength: 16, seed: 9n }));
  const rdiffSig = encodeSignature(signature(data, { format: 'rdiff', blockLength: 16, strongLength: 8 }));

  it('round-trips both formats', () => {
    const a = signature(data, { blockLength: 16, seed: 9n });
    expect(decodeSignature(native)).toEqual(a);
    const b = signature(data, { format: 'rdiff', blockLength: 16, strongLength: 8 });
    expect(decodeSignature(rdiffSig)).toEqual(b);
    // A view into a larger buffer decodes the same.
    const framed = concat(new Uint8Array(7), native, new Uint8Array(3)).subarray(7, 7 + native.length);
    expect(decodeSignature(framed)).toEqual(a);
  });

  it('BAD_MAGIC with the magic in details', () => {
    expectSignatureError(() => decodeSignature(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0])), 'BAD_MAGIC', {
      magic: 0xdeadbeef,
    });
    // A delta is not a signature.
    expectSignatureError(() => decodeSignature(new Uint8Array([0x72, 0x73, 0x02, 0x36])), 'BAD_MAGIC');
  });

  it.each([
    ['no bytes', new Uint8Array(0)],
    ['part of the magic', native.subarray(0, 3)],
    ['rdiff header cut', rdiffSig.subarray(0, 11)],
    ['native header cut after the version', native.subarray(0, 5)],
    ['native header cut', native.subarray(0, 27)],
    ['rdiff body cut inside a record', rdiffSig.subarray(0, rdiffSig.length - 1)],
    ['rdiff body cut after the first weak sum', rdiffSig.subarray(0, 16)],
    ['native body cut inside a record', native.subarray(0, native.length - 1)],
    ['native body cut at a record boundary', native.subarray(0, native.length - 12)],
  ])('TRUNCATED with incomplete true: %s', (_name, input) => {
    const error = expectSignatureError(() => decodeSignature(input), 'TRUNCATED', { incomplete: true });
    expect(error.incomplete).toBe(true);
    expect(error.details.available).toBe(input.length);
    expect(error.details.expected as number).toBeGreaterThan(input.length);
  });

  it('TRAILING_DATA after the last native record', () => {
    const error = expectSignatureError(() => decodeSignature(concat(native, new Uint8Array(5))), 'TRAILING_DATA', { extra: 5 });
    expect(error.incomplete).toBe(false);
  });

  it('UNSUPPORTED_VERSION for a native version other than 1', () => {
    for (const version of [0, 2, 255]) {
      const bad = native.slice();
      bad[4] = version;
      expectSignatureError(() => decodeSignature(bad), 'UNSUPPORTED_VERSION', { version });
      // Decided from the version byte alone, before the rest of the header arrives.
      expectSignatureError(() => decodeSignature(bad.subarray(0, 5)), 'UNSUPPORTED_VERSION');
    }
  });

  function patched(base: Uint8Array, edit: (view: DataView, out: Uint8Array) => void): Uint8Array {
    const out = base.slice();
    edit(new DataView(out.buffer), out);
    return out;
  }

  it.each([
    ['native weak sum id', patched(native, (_v, o) => (o[5] = 3)), { weakSumId: 3 }],
    ['native strong sum id', patched(native, (_v, o) => (o[6] = 2)), { strongSumId: 2 }],
    ['native strong length 0', patched(native, (_v, o) => (o[7] = 0)), { strongLength: 0 }],
    ['native strong length 9', patched(native, (_v, o) => (o[7] = 9)), { strongLength: 9, max: 8 }],
    ['native block length 0', patched(native, (v) => v.setUint32(8, 0)), { blockLength: 0 }],
    ['native block length 2^24 + 1', patched(native, (v) => v.setUint32(8, 2 ** 24 + 1)), { blockLength: 2 ** 24 + 1 }],
    ['native basis length 2^53', patched(native, (v) => v.setBigUint64(12, 1n << 53n)), { basisLength: 1n << 53n }],
    ['rdiff strong length 33', patched(rdiffSig, (v) => v.setUint32(8, 33)), { strongLength: 33, max: 32 }],
    ['rdiff strong length 2^32 - 1', patched(rdiffSig, (v) => v.setUint32(8, 0xffffffff)), { strongLength: 0xffffffff }],
    ['rdiff block length 0', patched(rdiffSig, (v) => v.setUint32(4, 0)), { blockLength: 0 }],
  ])('INVALID_HEADER: %s', (_name, input, details) => {
    expectSignatureError(() => decodeSignature(input), 'INVALID_HEADER', details);
  });

  it('a huge declared basis length fails TRUNCATED without allocating for it', () => {
    // 2^50 one-byte blocks would need petabytes; the header alone must not make us try.
    const bad = patched(native, (v) => {
      v.setUint32(8, 1);
      v.setBigUint64(12, 1n << 50n);
    });
    const error = expectSignatureError(() => decodeSignature(bad), 'TRUNCATED', { incomplete: true });
    expect(error.details.expected).toBe(28 + 2 ** 50 * 12);
  });

  it('decoded signatures are independent of the input buffer', () => {
    const input = native.slice();
    const sig: Signature = decodeSignature(input);
    const before = hex(encodeSignature(sig));
    input.fill(0);
    expect(hex(encodeSignature(sig))).toBe(before);
  });
});
