import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/errors.js';
import { encodeFrameHead, FrameDecoder, MAX_HEADER_LENGTH, MAX_PAYLOAD_LENGTH, type Frame, type Header } from '../src/frame.js';
import { pseudoRandom } from './helpers/tree.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });

function frameBytes(header: Header, payload?: Uint8Array): Uint8Array {
  const head = encodeFrameHead(header, payload?.length ?? 0);
  return payload ? Buffer.concat([head, payload]) : head;
}

/** A raw frame: the two lengths as given, then the bytes as given (no checks). */
function rawFrame(headerLength: number, payloadLength: number, rest: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(8 + rest.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength);
  view.setUint32(4, payloadLength);
  out.set(rest, 8);
  return out;
}

/** Frames decoded from `chunks` pushed one after another; payloads copied (they are views). */
function decodeAll(chunks: Uint8Array[]): { header: Header; payload: number[] | undefined }[] {
  const decoder = new FrameDecoder();
  const out: { header: Header; payload: number[] | undefined }[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f: Frame | undefined = decoder.next(); f; f = decoder.next()) {
      out.push({ header: f.header, payload: f.payload ? [...f.payload] : undefined });
    }
  }
  expect(decoder.pending).toBe(0);
  return out;
}

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

function feedPrefix(headerLength: number, payloadLength: number): ProtocolError {
  const decoder = new FrameDecoder();
  decoder.push(rawFrame(headerLength, payloadLength));
  return protocolError(() => decoder.next());
}

const frames: [Header, Uint8Array | undefined][] = [
  [{ t: 'hello', v: [1, 1], caps: ['zlib'], root: '/srv/site' }, undefined],
  [{ t: 'data', id: 7 }, pseudoRandom(1000, 3)],
  [{ t: 'put', id: 8, path: 'dir/ünï cødé', size: 2 ** 40, mtime: 1_700_000_000_123.456, basis: true, uid: null }, undefined],
  [{ t: 'data', id: 8, z: true }, new Uint8Array([0])],
  [{ t: 'end', id: 8 }, undefined],
];
const stream = Buffer.concat(frames.map(([h, p]) => frameBytes(h, p)));
const expected = frames.map(([header, payload]) => ({ header, payload: payload ? [...payload] : undefined }));

describe('frames', () => {
  it('round-trip headers (any msgpack values) and raw payloads', () => {
    expect(decodeAll([stream])).toEqual(expected);
  });

  it('put the lengths big-endian in an 8-byte prefix, then the header', () => {
    const head = encodeFrameHead({ t: 'end', id: 1 }, 300);
    const packed = packr.pack({ t: 'end', id: 1 });
    expect([...head.subarray(0, 8)]).toEqual([0, 0, 0, packed.length, 0, 0, 1, 44]);
    expect([...head.subarray(8)]).toEqual([...packed]);
  });

  it('decode the same when fed one byte at a time', () => {
    const bytes = [...stream].map((b) => new Uint8Array([b]));
    expect(decodeAll(bytes)).toEqual(expected);
  });

  it('wait for the rest of a frame and report what is pending', () => {
    const decoder = new FrameDecoder();
    decoder.push(stream.subarray(0, 5));
    expect(decoder.next()).toBeUndefined();
    decoder.push(stream.subarray(5, 12));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.pending).toBe(12);
  });

  it('refuse to encode a header over 64 KiB or a payload over 16 MiB', () => {
    expect(protocolError(() => encodeFrameHead({ t: 'x', big: 'a'.repeat(MAX_HEADER_LENGTH) })).code).toBe('FRAME_TOO_LARGE');
    expect(protocolError(() => encodeFrameHead({ t: 'x' }, MAX_PAYLOAD_LENGTH + 1)).code).toBe('FRAME_TOO_LARGE');
    expect(encodeFrameHead({ t: 'x' }, MAX_PAYLOAD_LENGTH).length).toBeGreaterThan(8);
  });
});

describe('the frame decoder refuses, from the 8-byte prefix alone,', () => {
  it('a header length of 0', () => {
    const e = feedPrefix(0, 0);
    expect(e.code).toBe('FRAME_TOO_LARGE');
    expect(e.details).toMatchObject({ headerLength: 0 });
  });

  it('a header length over 64 KiB', () => {
    expect(feedPrefix(MAX_HEADER_LENGTH + 1, 0).details).toMatchObject({ headerLength: MAX_HEADER_LENGTH + 1 });
    expect(feedPrefix(0xffffffff, 0).code).toBe('FRAME_TOO_LARGE');
  });

  it('a payload length over 16 MiB', () => {
    const e = feedPrefix(10, MAX_PAYLOAD_LENGTH + 1);
    expect(e.code).toBe('FRAME_TOO_LARGE');
    expect(e.details).toMatchObject({ payloadLength: MAX_PAYLOAD_LENGTH + 1 });
    expect(feedPrefix(10, 0xffffffff).code).toBe('FRAME_TOO_LARGE');
  });

  it('but waits on lengths at the caps', () => {
    const decoder = new FrameDecoder();
    decoder.push(rawFrame(MAX_HEADER_LENGTH, MAX_PAYLOAD_LENGTH));
    expect(decoder.next()).toBeUndefined();
  });
});

describe('the frame decoder refuses headers with BAD_FRAME', () => {
  const bad = (header: Uint8Array) => {
    const decoder = new FrameDecoder();
    decoder.push(rawFrame(header.length, 0, header));
    return protocolError(() => decoder.next()).code;
  };

  it('that are not msgpack', () => {
    expect(bad(new Uint8Array([0xc1]))).toBe('BAD_FRAME'); // 0xc1 is never used in msgpack
    expect(bad(new Uint8Array([0x82, 0xa1]))).toBe('BAD_FRAME'); // a map cut short
  });

  it('that hold more than one msgpack value', () => {
    expect(bad(Buffer.concat([packr.pack({ t: 'bye' }), packr.pack({ t: 'bye' })]))).toBe('BAD_FRAME');
  });

  it('that are not a map', () => {
    for (const value of [[1, 2], 'hello', 42, null, true]) expect(bad(packr.pack(value))).toBe('BAD_FRAME');
  });

  it('without a string "t"', () => {
    for (const value of [{}, { t: 5 }, { type: 'hello' }, { t: null }, { t: ['hello'] }]) expect(bad(packr.pack(value))).toBe('BAD_FRAME');
  });
});
