/**
 * A framed, bidirectional session over any pair of byte streams (child stdio, an SSH exec channel,
 * an in-process pipe). Sending honours backpressure: a frame's head and payload are written back to
 * back (frames never interleave), then `send` waits for 'drain' if the stream asked for it.
 */
import type { Readable, Writable } from 'node:stream';
import { encodeFrameHead, FrameDecoder, type Frame, type Header } from './frame.js';
import { ProtocolError, TransportError } from './errors.js';

/** The two directions of a connection to a peer. */
export interface ByteStreams {
  readable: Readable;
  writable: Writable;
  /** Ends the underlying transport (kills a child, closes a channel). */
  close?: () => void;
}

export type FrameHandler = (frame: Frame) => void;

export class FrameSession {
  readonly streams: ByteStreams;
  private readonly decoder = new FrameDecoder();
  private handler: FrameHandler = () => {};
  private closeHandlers: ((error: TransportError | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private closedWith: TransportError | null | undefined = undefined;

  constructor(streams: ByteStreams) {
    this.streams = streams;
    const { readable, writable } = streams;
    readable.on('data', (chunk: Buffer) => this.onData(chunk));
    readable.on('end', () => this.finish(undefined));
    readable.on('error', (error) => this.finish(new TransportError('IO', `read failed: ${error.message}`, { cause: error.message })));
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

  /** Sends one frame; resolves when the stream can take more. */
  async send(header: Header, payload?: Uint8Array): Promise<void> {
    if (this.closedWith !== undefined) {
      throw this.closedWith ?? new TransportError('CLOSED', 'session is closed', {});
    }
    const head = encodeFrameHead(header, payload?.length ?? 0);
    const { writable } = this.streams;
    let ok = writable.write(head);
    if (payload && payload.length > 0) ok = writable.write(payload);
    if (!ok && this.closedWith === undefined) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  /** Stops reading (backpressure towards the peer) until `resume()`. */
  pause(): void {
    this.streams.readable.pause();
  }

  resume(): void {
    if (this.closedWith === undefined) this.streams.readable.resume();
  }

  /** Ends our side; the peer sees end of input. */
  end(): void {
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
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of handlers) h(error);
  }
}
