import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, TransportError } from '../src/errors.js';
import { encodeFrameHead, FrameDecoder, type Header } from '../src/frame.js';
import { FrameSession } from '../src/wire.js';

/** Splits `bytes` at the given cut points (any values; reduced modulo the length). */
function chunk(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(at, p));
    at = p;
  }
  return out;
}

interface Decoded {
  header: Header;
  payload: number[] | undefined;
}

function decodeChunks(chunks: Uint8Array[]): Decoded[] {
  const decoder = new FrameDecoder();
  const out: Decoded[] = [];
  for (const c of chunks) {
    decoder.push(c);
    for (let f = decoder.next(); f; f = decoder.next()) out.push({ header: f.header, payload: f.payload ? [...f.payload] : undefined });
  }
  return out;
}

const fieldValue = fc.oneof(
  fc.string(),
  fc.integer(),
  // msgpack (msgpackr) packs -0 as the integer 0, which is fine for the protocol.
  fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 4 }),
  fc.uint8Array({ maxLength: 16 }).map((u) => [...u]),
);
const header = fc
  .record({ t: fc.string({ minLength: 1, maxLength: 10 }), fields: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== 't' && k !== '__proto__'), fieldValue, { maxKeys: 5 }) })
  .map(({ t, fields }) => ({ ...fields, t }) as Header);
const frameArb = fc.tuple(header, fc.option(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { nil: undefined }));

/** Decoding must end in frames or a ProtocolError; anything else is a bug in the decoder. */
function decodeOrProtocolError(chunks: Uint8Array[]): void {
  try {
    decodeChunks(chunks);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    expect(['FRAME_TOO_LARGE', 'BAD_FRAME']).toContain(error.code);
  }
}

describe('frame decoding', () => {
  it('gives the same frames for any chunking of the stream', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.flatMap(([h, p]) => [encodeFrameHead(h, p?.length ?? 0), ...(p ? [p] : [])]));
        const whole = decodeChunks([bytes]);
        expect(whole).toEqual(frames.map(([h, p]) => ({ header: h, payload: p ? [...p] : undefined })));
        expect(decodeChunks(chunk(bytes, cuts))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it('turns random bytes into frames or a ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        decodeOrProtocolError(chunk(bytes, cuts));
      }),
      { numRuns: 500 },
    );
  });

  it('turns random headers behind valid lengths into frames or a ProtocolError', () => {
    // Random bytes rarely pass the length caps; these reach the msgpack parser.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.uint8Array({ maxLength: 50 }), (head, payload) => {
        const prefix = new Uint8Array(8);
        new DataView(prefix.buffer).setUint32(0, head.length);
        new DataView(prefix.buffer).setUint32(4, payload.length);
        decodeOrProtocolError([Buffer.concat([prefix, head, payload])]);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('FrameSession', () => {
  it('delivers frames written in any chunking, then closes cleanly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 20 }), async (frames, cuts) => {
        const bytes = Buffer.concat(frames.flatMap(([h, p]) => [encodeFrameHead(h, p?.length ?? 0), ...(p ? [p] : [])]));
        const readable = new PassThrough();
        const session = new FrameSession({ readable, writable: new PassThrough() });
        const got: Decoded[] = [];
        session.onFrame((f) => got.push({ header: f.header, payload: f.payload ? [...f.payload] : undefined }));
        const closed = new Promise<TransportError | undefined>((resolve) => session.onClose(resolve));
        for (const c of chunk(bytes, cuts)) readable.write(c);
        readable.end();
        expect(await closed).toBeUndefined();
        expect(got).toEqual(frames.map(([h, p]) => ({ header: h, payload: p ? [...p] : undefined })));
      }),
      { numRuns: 50 },
    );
  });

  it('closes with a ProtocolError on random input, never throws', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
        const readable = new PassThrough();
        const session = new FrameSession({ readable, writable: new PassThrough() });
        const closed = new Promise<TransportError | undefined>((resolve) => session.onClose(resolve));
        readable.end(bytes);
        const error = await closed;
        // Either whole frames by luck (clean end) or a protocol error; an unfinished frame is UNEXPECTED_EOF.
        if (error !== undefined) {
          expect(error).toBeInstanceOf(ProtocolError);
          expect(['FRAME_TOO_LARGE', 'BAD_FRAME', 'UNEXPECTED_EOF']).toContain(error.code);
        }
      }),
      { numRuns: 200 },
    );
  });
});
