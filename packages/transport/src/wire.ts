/**
 * A framed, bidirectional session over any pair of byte streams (child stdio, an SSH exec channel,
 * an in-process pipe). Sending honours backpressure: `send` resolves once the stream can take more.
 * Small frames sent in the same turn of the event loop are joined into one write: over SSH every
 * write becomes its own encrypted packet and system call, which dominated syncs of many small files.
 * A large payload is written on its own, after whatever is batched, never copied.
 */
import type { Readable, Writable } from 'node:stream';
import { encodeFrameHead, FrameDecoder, type Frame, type Header } from './frame.js';
import { ConnectError, ProtocolError, TransportError } from './errors.js';

/** The two directions of a connection to a peer. */
export interface ByteStreams {
  readable: Readable;
  writable: Writable;
  /** Ends the underlying transport (kills a child, closes a channel). */
  close?: () => void;
  /**
   * Settles once the peer's output has ended, where that comes before `readable` ends: a remote
   * agent's stdout ends when it closes it, but `readable` waits for its exit status too.
   */
  outputEnded?: Promise<void>;
}

export type FrameHandler = (frame: Frame) => void;

/** Frames are batched up to this many bytes per write. */
const BATCH_LIMIT = 64 * 1024;
/**
 * ... and for at most this long: a batch is written at the first send after it has waited this long,
 * even before the event loop comes round to flush it. Work done in one long turn (an agent finishing
 * many small puts in a row, a client reading the next files as replies come in) would otherwise
 * reach the peer all at the end, and the two sides would take turns instead of working at once.
 */
const BATCH_MAX_WAIT_MS = 1;
/** Payloads this large skip the batch (no copy). */
const DIRECT_PAYLOAD = 32 * 1024;

export class FrameSession {
  readonly streams: ByteStreams;
  private readonly decoder = new FrameDecoder();
  private handler: FrameHandler = () => {};
  private closeHandlers: ((error: TransportError | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private closedWith: TransportError | null | undefined = undefined;
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private batchWaiters: (() => void)[] = [];
  private flushScheduled = false;
  /** When the first frame of the current batch was queued (performance.now()). */
  private batchStarted = 0;
  /** Bytes handed to the writable (frames: heads and payloads) and read off the readable, for --stats. */
  bytesWritten = 0;
  bytesRead = 0;

  constructor(streams: ByteStreams) {
    this.streams = streams;
    const { readable, writable } = streams;
    readable.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      this.onData(chunk);
    });
    readable.on('end', () => this.finish(undefined));
    // A transport that could not start its peer says so with a ConnectError (remote-agent.ts), kept as it is.
    readable.on('error', (error) =>
      this.finish(error instanceof ConnectError ? error : new TransportError('IO', `read failed: ${error.message}`, { cause: error.message })),
    );
    writable.on('error', (error) => this.finish(new TransportError('IO', `write failed: ${error.message}`, { cause: error.message })));
    writable.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    });
  }

  onFrame(handler: FrameHandler): void {
    this.handler = handler;
  }

  /** Called once when the session ends: `undefined` for a clean end of input, else the error. */
  onClose(handler: (error: TransportError | undefined) => void): void {
    if (this.closedWith !== undefined) handler(this.closedWith ?? undefined);
    else this.closeHandlers.push(handler);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Sends one frame; resolves when the stream can take more. The payload must not change until then. */
  async send(header: Header, payload?: Uint8Array): Promise<void> {
    if (this.closedWith !== undefined) {
      throw this.closedWith ?? new TransportError('CLOSED', 'session is closed', {});
    }
    const head = encodeFrameHead(header, payload?.length ?? 0);
    if (payload && payload.length >= DIRECT_PAYLOAD) {
      this.flush();
      const { writable } = this.streams;
      this.bytesWritten += head.length + payload.length;
      writable.write(head);
      if (!writable.write(payload)) await this.drained();
      return;
    }
    if (this.batch.length === 0) this.batchStarted = performance.now();
    this.batch.push(head);
    this.batchBytes += head.length;
    if (payload && payload.length > 0) {
      this.batch.push(payload);
      this.batchBytes += payload.length;
    }
    const done = new Promise<void>((resolve) => this.batchWaiters.push(resolve));
    if (this.batchBytes >= BATCH_LIMIT || performance.now() - this.batchStarted >= BATCH_MAX_WAIT_MS) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return done;
  }

  /** Writes what is batched as one chunk; its senders resume when the stream can take more. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const parts = this.batch;
    const waiters = this.batchWaiters;
    this.batch = [];
    this.batchWaiters = [];
    this.batchBytes = 0;
    const release = () => {
      for (const w of waiters) w();
    };
    if (this.closedWith !== undefined) return release();
    const chunk = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.bytesWritten += chunk.length;
    const ok = this.streams.writable.write(chunk);
    if (ok) release();
    else void this.drained().then(release);
  }

  private drained(): Promise<void> {
    if (this.closedWith !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stops reading (backpressure towards the peer) until `resume()`. */
  pause(): void {
    this.streams.readable.pause();
  }

  resume(): void {
    if (this.closedWith === undefined) this.streams.readable.resume();
  }

  /** Ends our side after what is batched; the peer sees end of input. */
  end(): void {
    this.flush();
    if (!this.streams.writable.writableEnded) this.streams.writable.end();
  }

  /** Tears the session down with an error (or cleanly), closing the transport. */
  destroy(error?: TransportError): void {
    this.finish(error);
    this.streams.close?.();
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith !== undefined) return;
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
        this.handler(frame);
        if (this.closedWith !== undefined) return;
      }
    } catch (error) {
      const e = error instanceof TransportError ? error : new ProtocolError('BAD_MESSAGE', (error as Error).message, {});
      this.destroy(e);
    }
  }

  private finish(error: TransportError | undefined): void {
    if (this.closedWith !== undefined) return;
    if (!error && this.decoder.pending > 0) {
      error = new ProtocolError('UNEXPECTED_EOF', `input ended inside a frame (${this.decoder.pending} bytes pending)`, {
        pending: this.decoder.pending,
      });
    }
    this.closedWith = error ?? null;
    const batched = this.batchWaiters;
    this.batch = [];
    this.batchWaiters = [];
    for (const w of batched) w();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of handlers) h(error);
  }
}
