/**
 * Frames, byte by byte as docs/protocol.md describes them:
 *   u32 header_len | u32 payload_len | header (msgpack map) | payload (raw bytes)
 * Big-endian lengths. The payload is written as its own write, so file data is never copied into
 * msgpack. Both lengths are capped before anything is buffered.
 */
// msgpackr/pack is the plain-JavaScript build: the main entry probes for a native string decoder at load (~10 ms of
// start-up in every agent and CLI process), which only speeds up decoding of long strings.
import { Packr, Unpackr } from 'msgpackr/pack';
import { ProtocolError } from './errors.js';

export const FRAME_PREFIX_LENGTH = 8;
export const MAX_HEADER_LENGTH = 64 * 1024;
export const MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024;

/** A message header: a msgpack map whose `t` names the message type. */
export interface Header {
  t: string;
  [field: string]: unknown;
}

export interface Frame {
  header: Header;
  /** Raw payload; a view valid until the next `push()` unless copied. */
  payload: Uint8Array | undefined;
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** The prefix and header of a frame, ready to write; the payload (if any) follows as its own write. */
export function encodeFrameHead(header: Header, payloadLength = 0): Uint8Array {
  const packed = packr.pack(header);
  if (packed.length > MAX_HEADER_LENGTH) {
    throw new ProtocolError('FRAME_TOO_LARGE', `header of ${packed.length} bytes exceeds ${MAX_HEADER_LENGTH}`, {
      headerLength: packed.length,
    });
  }
  if (payloadLength > MAX_PAYLOAD_LENGTH) {
    throw new ProtocolError('FRAME_TOO_LARGE', `payload of ${payloadLength} bytes exceeds ${MAX_PAYLOAD_LENGTH}`, {
      payloadLength,
    });
  }
  const out = new Uint8Array(FRAME_PREFIX_LENGTH + packed.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, packed.length);
  view.setUint32(4, payloadLength);
  out.set(packed, FRAME_PREFIX_LENGTH);
  return out;
}

/**
 * Incremental frame parser: `push()` bytes as they arrive, then `next()` until undefined. Refuses a
 * header or payload longer than the caps before buffering it, and a header that is not a map with a
 * string `t`, with a ProtocolError.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes received in total, for error messages. */
  received = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.received += chunk.length;
  }

  /** Bytes held that do not yet make a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  next(): Frame | undefined {
    if (this.buffered < FRAME_PREFIX_LENGTH) return undefined;
    const prefix = this.peek(FRAME_PREFIX_LENGTH);
    const view = new DataView(prefix.buffer, prefix.byteOffset, FRAME_PREFIX_LENGTH);
    const headerLength = view.getUint32(0);
    const payloadLength = view.getUint32(4);
    if (headerLength === 0 || headerLength > MAX_HEADER_LENGTH) {
      throw new ProtocolError('FRAME_TOO_LARGE', `frame header length ${headerLength} is outside 1 .. ${MAX_HEADER_LENGTH}`, {
        headerLength,
      });
    }
    if (payloadLength > MAX_PAYLOAD_LENGTH) {
      throw new ProtocolError('FRAME_TOO_LARGE', `frame payload length ${payloadLength} exceeds ${MAX_PAYLOAD_LENGTH}`, {
        payloadLength,
      });
    }
    const total = FRAME_PREFIX_LENGTH + headerLength + payloadLength;
    if (this.buffered < total) return undefined;
    const bytes = this.take(total);
    let header: unknown;
    try {
      header = unpackr.unpack(bytes.subarray(FRAME_PREFIX_LENGTH, FRAME_PREFIX_LENGTH + headerLength));
    } catch (error) {
      throw new ProtocolError('BAD_FRAME', `frame header is not valid msgpack: ${(error as Error).message}`, {});
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header) || typeof (header as Header).t !== 'string') {
      throw new ProtocolError('BAD_FRAME', 'frame header is not a map with a string "t"', {});
    }
    const payload = payloadLength > 0 ? bytes.subarray(FRAME_PREFIX_LENGTH + headerLength) : undefined;
    return { header: header as Header, payload };
  }

  private peek(n: number): Uint8Array {
    this.coalesce(n);
    return this.chunks[0];
  }

  private take(n: number): Uint8Array {
    this.coalesce(n);
    const first = this.chunks[0];
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return first.subarray(0, n);
  }

  /** Makes the first chunk at least n bytes long by joining chunks (n <= buffered). */
  private coalesce(n: number): void {
    if (this.chunks[0].length >= n) return;
    let length = 0;
    let count = 0;
    while (length < n) length += this.chunks[count++].length;
    // Not zero-filled: every byte is written just below.
    const merged: Uint8Array = Buffer.allocUnsafeSlow(length);
    let at = 0;
    for (let j = 0; j < count; j++) {
      merged.set(this.chunks[j], at);
      at += this.chunks[j].length;
    }
    this.chunks.splice(0, count, merged);
  }
}
