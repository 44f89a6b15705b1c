import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DeltaError,
  applyDelta,
  createDelta,
  delta,
  deltaStream,
  indexSignature,
  literalDelta,
  literalDeltaLength,
  writeLiteralDelta,
  LiteralDeltaStream,
  md4,
  rabinKarpSum,
  rollsumSum,
  signature,
  xxh64,
  type Signature,
  type SignatureFormat,
  type SignatureOptions,
} from '../src/index.js';
import { DeltaEncoder } from '../src/delta-format.js';
import { sha256 } from '../src/sha256.js';
import { asDeltacastError, concat, decodeCommands, fromHex, hex, pseudoRandom, shape, thrown } from './helpers.js';

const FORMATS: SignatureFormat[] = ['native', 'rdiff'];

/** Makes the delta, checks that it patches back to `target`, and returns its commands' shape. */
function deltaShape(basis: Uint8Array, target: Uint8Array, opts: SignatureOptions) {
  const d = delta(signature(basis, { seed: 11n, ...opts }), target);
  expect(hex(applyDelta(basis, d))).toBe(hex(target));
  return shape(decodeCommands(d));
}

describe.each(FORMATS)('delta (%s format)', (format) => {
  const L = 256;
  const basis = pseudoRandom(16 * L, 1);
  const extra = pseudoRandom(100, 2);

  it('identical files -> a single COPY', () => {
    expect(deltaShape(basis, basis, { format, blockLength: L })).toEqual([['C', 0, basis.length], ['E']]);
    // A short last block is matched at the end of the new data and merged into the same COPY.
    const odd = basis.subarray(0, 4000);
    expect(deltaShape(odd, odd, { format, blockLength: L })).toEqual([['C', 0, 4000], ['E']]);
    // Default block length too.
    const big = pseudoRandom(200_000, 8);
    expect(deltaShape(big, big, { format })).toEqual([['C', 0, big.length], ['E']]);
  });

  it('append -> COPY then LITERAL', () => {
    expect(deltaShape(basis, concat(basis, extra), { format, blockLength: L })).toEqual([
      ['C', 0, basis.length],
      ['L', 100],
      ['E'],
    ]);
  });

  it('prepend -> LITERAL then COPY', () => {
    expect(deltaShape(basis, concat(extra, basis), { format, blockLength: L })).toEqual([
      ['L', 100],
      ['C', 0, basis.length],
      ['E'],
    ]);
  });

  it('insert in the middle, at a block boundary and inside a block', () => {
    const atBoundary = concat(basis.subarray(0, 8 * L), extra, basis.subarray(8 * L));
    expect(deltaShape(basis, atBoundary, { format, blockLength: L })).toEqual([
      ['C', 0, 8 * L],
      ['L', 100],
      ['C', 8 * L, 8 * L],
      ['E'],
    ]);
    // Inserting at 2000 breaks block 7 (1792..2048): it goes as a literal with the inserted bytes.
    const inside = concat(basis.subarray(0, 2000), extra, basis.subarray(2000));
    expect(deltaShape(basis, inside, { format, blockLength: L })).toEqual([
      ['C', 0, 7 * L],
      ['L', 2048 + 100 - 7 * L],
      ['C', 2048, basis.length - 2048],
      ['E'],
    ]);
  });

  it('delete a block and reorder blocks', () => {
    const deleted = concat(basis.subarray(0, 3 * L), basis.subarray(4 * L));
    expect(deltaShape(basis, deleted, { format, blockLength: L })).toEqual([['C', 0, 3 * L], ['C', 4 * L, 12 * L], ['E']]);
    const swapped = concat(basis.subarray(8 * L), basis.subarray(0, 8 * L));
    expect(deltaShape(basis, swapped, { format, blockLength: L })).toEqual([['C', 8 * L, 8 * L], ['C', 0, 8 * L], ['E']]);
  });

  it('new file empty -> only END', () => {
    const d = delta(signature(basis, { format, blockLength: L }), new Uint8Array(0));
    const commands = decodeCommands(d);
    expect(shape(commands)).toEqual([['E']]);
    expect(applyDelta(basis, d).length).toBe(0);
    if (format === 'native') {
      const end = commands[0] as { targetLength: number; fileHash: string; digest: Uint8Array };
      expect(end.targetLength).toBe(0);
      expect(end.fileHash).toBe('sha256');
      expect(hex(end.digest)).toBe(createHash('sha256').digest('hex'));
    }
  });

  it('basis empty -> one LITERAL', () => {
    const target = pseudoRandom(5000, 3);
    expect(deltaShape(new Uint8Array(0), target, { format, blockLength: L })).toEqual([['L', 5000], ['E']]);
    expect(deltaShape(new Uint8Array(0), new Uint8Array(0), { format, blockLength: L })).toEqual([['E']]);
  });

  it('new data shorter than one block can match the short last block only', () => {
    const small = basis.subarray(0, 100);
    expect(deltaShape(small, small, { format, blockLength: L })).toEqual([['C', 0, 100], ['E']]);
    expect(deltaShape(basis, basis.subarray(0, 100), { format, blockLength: L })).toEqual([['L', 100], ['E']]);
  });

  it('8 MiB of zeros against 8 MiB of zeros -> one merged COPY', () => {
    const zeros = new Uint8Array(8 << 20);
    const sig = signature(zeros, { format, seed: 1n });
    const builder = createDelta(sig);
    const d = concat(builder.update(zeros), builder.final());
    expect(shape(decodeCommands(d))).toEqual([['C', 0, zeros.length], ['E']]);
    expect(builder.stats).toEqual({
      targetLength: zeros.length,
      literalBytes: 0,
      literalCommands: 0,
      copiedBytes: zeros.length,
      copyCommands: 1,
    });
  });

  it('zeros with a different tail: the run of zeros stays one COPY', () => {
    const zeros = new Uint8Array(1 << 20);
    const target = concat(zeros, pseudoRandom(1000, 4));
    const commands = deltaShape(zeros, target, { format, blockLength: 1024 });
    expect(commands).toEqual([['C', 0, zeros.length], ['L', 1000], ['E']]);
  });

  // The literal fast path for an empty basis once emitted one LITERAL per update() call.
  it('against an empty basis, chunking does not change the delta bytes', () => {
    const sig = signature(new Uint8Array(0), { format, seed: 1n });
    const builder = createDelta(sig);
    const chunked = concat(builder.update(extra.subarray(0, 50)), builder.update(extra.subarray(50)), builder.final());
    expect(hex(chunked)).toBe(hex(delta(sig, extra)));
  });

  it('counts what it emits in stats', () => {
    const builder = createDelta(signature(basis, { format, blockLength: L }));
    builder.update(concat(extra, basis));
    builder.final();
    expect(builder.stats).toEqual({
      targetLength: basis.length + 100,
      literalBytes: 100,
      literalCommands: 1,
      copiedBytes: basis.length,
      copyCommands: 1,
    });
  });

  it('update or final after final -> FINISHED', () => {
    const builder = createDelta(signature(basis, { format, blockLength: L }));
    builder.final();
    for (const call of [() => builder.update(basis), () => builder.final()]) {
      const error = asDeltacastError(thrown(call));
      expect(error).toBeInstanceOf(DeltaError);
      expect(error.code).toBe('FINISHED');
    }
  });

  it('an index is reusable and gives the same delta as the signature', async () => {
    const sig = signature(basis, { format, blockLength: L, seed: 5n });
    const index = indexSignature(sig);
    const target = concat(extra, basis, extra);
    const expected = hex(delta(sig, target));
    expect(hex(delta(index, target))).toBe(expected);
    expect(hex(delta(index, target))).toBe(expected);
    async function* chunks() {
      for (let at = 0; at < target.length; at += 777) yield target.subarray(at, at + 777);
    }
    const streamed: Uint8Array[] = [];
    for await (const piece of deltaStream(index, chunks())) streamed.push(piece);
    expect(hex(concat(...streamed))).toBe(expected);
  });
});

describe('many equal weak sums', () => {
  it('a crafted signature of 100,000 blocks sharing the windows` weak sum yields only literals', () => {
    // New data of zeros has the same weak sum at every offset; every block claims that weak sum
    // but none has the right strong sum, so each offset meets 100,000 candidates.
    const L = 64;
    const target = new Uint8Array(64 * 1024);
    const seed = 3n;
    const blockCount = 100_000;
    const weak = rabinKarpSum(target, 0, L);
    const right = xxh64(target.subarray(0, L), seed);
    const wrong = new Uint8Array(8);
    new DataView(wrong.buffer).setBigUint64(0, right ^ 0xff00_0000_0000_0000n);
    const strongSums = new Uint8Array(blockCount * 8);
    for (let i = 0; i < blockCount; i++) strongSums.set(wrong, i * 8);
    const sig: Signature = {
      format: 'native',
      weakSum: 'rabinkarp',
      strongSum: 'xxh64',
      blockLength: L,
      strongLength: 8,
      seed,
      basisLength: blockCount * L,
      blockCount,
      weakSums: new Uint32Array(blockCount).fill(weak),
      strongSums,
    };
    const builder = createDelta(sig);
    const d = concat(builder.update(target), builder.final());
    expect(builder.stats).toMatchObject({ copyCommands: 0, copiedBytes: 0, literalBytes: target.length });
    expect(shape(decodeCommands(d))).toEqual([['L', target.length], ['E']]);
    expect(hex(applyDelta(new Uint8Array(blockCount * L), d))).toBe(hex(target));
  });
});

describe('false block matches with short strong sums', () => {
  // [x, y+1, z+1, w] and [x+1, y, z, w+1] have the same rollsum (s1 and s2 = 4a+3b+2c+d agree);
  // with a 1-byte strong sum, some choice of seed or bytes makes the strong sums agree too.
  const pair = (x: number, y: number, z: number, w: number) => [new Uint8Array([x, y + 1, z + 1, w]), new Uint8Array([x + 1, y, z, w + 1])];

  it('native: the END hash turns the wrong COPY into HASH_MISMATCH', () => {
    const [block, window] = pair(10, 20, 30, 40);
    expect(rollsumSum(block)).toBe(rollsumSum(window));
    let seed = 0n;
    while (xxh64(block, seed) >> 56n !== xxh64(window, seed) >> 56n) seed++;
    const d = delta(signature(block, { blockLength: 4, weakSum: 'rollsum', strongLength: 1, seed }), window);
    expect(shape(decodeCommands(d))).toEqual([['C', 0, 4], ['E']]);
    const error = asDeltacastError(thrown(() => applyDelta(block, d)));
    expect(error.code).toBe('HASH_MISMATCH');
    // Full-length sums tell the two apart.
    const safe = delta(signature(block, { blockLength: 4, weakSum: 'rollsum', seed }), window);
    expect(hex(applyDelta(block, safe))).toBe(hex(window));
  });

  it('rdiff: no hash travels with the delta, so the wrong COPY goes through (as with rdiff -S 1)', () => {
    let found: Uint8Array[] | undefined;
    for (let x = 0; !found && x < 250; x++) {
      const [block, window] = pair(x, 7, 8, 9);
      if (md4(block)[0] === md4(window)[0]) found = [block, window];
    }
    const [block, window] = found!;
    const d = delta(signature(block, { format: 'rdiff', blockLength: 4, weakSum: 'rollsum', strongSum: 'md4', strongLength: 1 }), window);
    expect(shape(decodeCommands(d))).toEqual([['C', 0, 4], ['E']]);
    expect(hex(applyDelta(block, d))).toBe(hex(block));
  });
});

describe('rdiff delta encoding uses the minimal opcode widths', () => {
  function encode(write: (e: DeltaEncoder) => void): string {
    const e = new DeltaEncoder('rdiff');
    write(e);
    return hex(e.take());
  }
  const lit = (n: number) => (e: DeltaEncoder) => e.literal(new Uint8Array(n), 0, n);

  it.each([
    [1, '01'],
    [64, '40'],
    [65, '4141'],
    [255, '41ff'],
    [256, '420100'],
    [65535, '42ffff'],
    [65536, '4300010000'],
  ])('LITERAL of %d bytes -> opcode and length %s', (n, head) => {
    const out = encode(lit(n));
    expect(out.slice(0, head.length)).toBe(head);
    expect(out.length).toBe(head.length + 2 * n);
  });

  it.each([
    [0, 1, '450001'],
    [255, 255, '45ffff'],
    [256, 1, '49010001'],
    [1, 256, '46010100'],
    [300, 70000, '4b012c00011170'],
    [70000, 300, '4e00011170012c'],
    [2 ** 32, 65536, '530000000100000000' + '00010000'],
    [2 ** 32 - 1, 2 ** 32, '50ffffffff' + '0000000100000000'],
  ])('COPY offset %d length %d -> %s', (offset, length, expected) => {
    expect(encode((e) => e.copy(offset, length))).toBe(expected);
  });

  it('delta() of 64 and 65 literal bytes and a 300/70000 COPY', () => {
    const empty = signature(new Uint8Array(0), { format: 'rdiff' });
    const b64 = pseudoRandom(64, 5);
    expect(hex(delta(empty, b64))).toBe(`72730236 40 ${hex(b64)} 00`.replace(/ /g, ''));
    const b65 = pseudoRandom(65, 6);
    expect(hex(delta(empty, b65))).toBe(`72730236 41 41 ${hex(b65)} 00`.replace(/ /g, ''));
    const basis = pseudoRandom(70_500, 7);
    const sig = signature(basis, { format: 'rdiff', blockLength: 100 });
    expect(hex(delta(sig, basis.subarray(300, 70_300)))).toBe('72730236' + '4b012c00011170' + '00');
  });
});

describe('native delta encoding', () => {
  it('"DCDL" | version | flags | reserved | basis_len u64 | LEB128 commands | END target_len u64 sha256', () => {
    const basis = pseudoRandom(70_500, 7);
    const target = concat(fromHex('aabbcc'), basis.subarray(300, 70_300));
    const d = delta(signature(basis, { blockLength: 100, seed: 1n }), target);
    const sha = createHash('sha256').update(target).digest('hex');
    expect(hex(d)).toBe(
      hex(new TextEncoder().encode('DCDL')) +
        '01' +
        '00' +
        '0000' +
        (70_500).toString(16).padStart(16, '0') +
        '01' + '03' + 'aabbcc' + // LITERAL, length 3
        '02' + 'ac02' + 'f0a204' + // COPY, offset 300, length 70000 as LEB128
        '00' +
        target.length.toString(16).padStart(16, '0') +
        sha,
    );
  });
});

describe('literalDelta (a new file in one literal)', () => {
  const empty = signature(new Uint8Array(0), { format: 'native', seed: 0n });
  it('is byte for byte delta() against an empty native signature, up to 1 MiB, and rebuilds the data', () => {
    for (const size of [0, 1, 100, 65_535, 70_000, 1 << 20]) {
      const data = pseudoRandom(size, size + 3);
      const made = literalDelta(data);
      expect(Buffer.from(made).equals(Buffer.from(delta(empty, data))), `${size} bytes`).toBe(true);
      expect(Buffer.from(applyDelta(new Uint8Array(0), made)).equals(Buffer.from(data))).toBe(true);
      // One buffer of its exact size: header, one literal command, END with length and SHA-256.
      expect(made.buffer.byteLength - made.byteLength).toBeLessThanOrEqual(11);
    }
  });

  it('writeLiteralDelta puts the same bytes side by side in one buffer, literalDeltaLength bytes each', () => {
    const datas = [0, 1, 127, 128, 16_383, 16_384, 70_000].map((size) => pseudoRandom(size, size + 5));
    const total = datas.reduce((n, d) => n + literalDeltaLength(d.length), 0);
    const out = new Uint8Array(total + 3).fill(0xee);
    let at = 1;
    for (const d of datas) {
      const n = writeLiteralDelta(d, out, at);
      expect(n).toBe(literalDeltaLength(d.length));
      expect(Buffer.from(out.subarray(at, at + n)).equals(Buffer.from(literalDelta(d)))).toBe(true);
      at += n;
    }
    expect([out[0], out[at], out[at + 1]]).toEqual([0xee, 0xee, 0xee]);
  });

  it('LiteralDeltaStream: a LITERAL per piece read, copied out of the reader\'s buffer, the END of literalDelta', () => {
    const data = pseudoRandom(600_000, 21);
    for (const cuts of [[0], [1], [262_144], [262_144, 524_288], [100, 100, 599_999]]) {
      const reused = new Uint8Array(600_000); // one read buffer for every piece, as a file reader has
      const stream = new LiteralDeltaStream();
      const out: Uint8Array[] = [];
      const ends = [...cuts, data.length];
      let from = 0;
      for (const to of ends) {
        reused.set(data.subarray(from, to));
        out.push(stream.update(reused.subarray(0, to - from)));
        reused.fill(0xaa); // the delta bytes handed out must not change with it
        from = to;
      }
      out.push(stream.final());
      const made = concat(...out);
      expect(Buffer.from(applyDelta(new Uint8Array(0), made)).equals(Buffer.from(data)), `cuts ${cuts}`).toBe(true);
      expect(decodeCommands(made).filter((c) => c.type === 'literal')).toHaveLength(ends.filter((to, i) => to > (i === 0 ? 0 : ends[i - 1])).length);
      // The same END (length and SHA-256) as the delta in one buffer.
      const whole = literalDelta(data);
      expect(hex(made.subarray(made.length - 41))).toBe(hex(whole.subarray(whole.length - 41)));
      expect(stream.stats).toMatchObject({ targetLength: data.length, literalBytes: data.length, copiedBytes: 0 });
    }
  });

  it('LiteralDeltaStream: an empty file is literalDelta\'s bytes, and nothing follows the final END', () => {
    const empty = new LiteralDeltaStream();
    expect(hex(empty.final())).toBe(hex(literalDelta(new Uint8Array(0))));
    expect(asDeltacastError(thrown(() => empty.update(new Uint8Array(1)))).code).toBe('FINISHED');
    expect(asDeltacastError(thrown(() => empty.final())).code).toBe('FINISHED');
    const one = new LiteralDeltaStream();
    const made = concat(one.update(new Uint8Array(0)), one.final());
    expect(hex(made)).toBe(hex(literalDelta(new Uint8Array(0))));
  });

  it('rebuilds data past 1 MiB too, as one literal', () => {
    const data = pseudoRandom((1 << 20) + 12_345, 9);
    const made = literalDelta(data);
    expect(Buffer.from(applyDelta(new Uint8Array(0), made)).equals(Buffer.from(data))).toBe(true);
    expect(decodeCommands(made).filter((c) => c.type === 'literal')).toHaveLength(1);
  });
});


describe('sha256 (one call)', () => {
  it('is the SHA-256 createHash gives, for empty, small and large inputs and views', () => {
    const big = pseudoRandom(300_000, 2);
    for (const data of [new Uint8Array(0), big.subarray(0, 1), big.subarray(5, 4_101), big, big.subarray(7)]) {
      expect(sha256(data).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });
});
