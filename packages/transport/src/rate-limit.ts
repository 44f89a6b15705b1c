/**
 * --bwlimit: what a session writes to its destination, paced to a rate (bytes per second), as
 * rsync's --bwlimit paces what it sends. A Writable in front of the transport's own: each piece
 * (at most PIECE_SECONDS of the rate, so the pace is smooth) goes out when the bytes before it have
 * had their time, and the transport's backpressure still holds (a full SSH window is waited for as
 * before). Pauses of under MIN_SLEEP_MS are not slept but carried, so a high rate costs no timer per
 * piece. A session idle for a while starts afresh: idle time is not saved up as a burst.
 */
import { Writable } from 'node:stream';
import type { ByteStreams } from './wire.js';

/** A piece is at most this much of a second's allowance (and at least MIN_PIECE bytes). */
const PIECE_SECONDS = 0.05;
const MIN_PIECE = 4096;
const MAX_PIECE = 256 * 1024;
/** Shorter pauses are carried into the next piece rather than slept. */
const MIN_SLEEP_MS = 2;
/** Behind the pace by more than this (the session was idle): start counting afresh. */
const IDLE_RESET_MS = 1000;

export class RateLimitedWritable extends Writable {
  /** When the current run of sending began (performance.now()), and what it has sent since. */
  private since = 0;
  private sent = 0;
  private readonly piece: number;
  /** Set once the transport has closed: nothing more will go out. */
  private transportClosed = false;
  /** Fails the current wait (a pause or a drain), if one is under way. */
  private abortWait: ((error: Error) => void) | undefined;

  constructor(
    private readonly inner: Writable,
    /** Bytes per second; positive. */
    readonly bytesPerSecond: number,
  ) {
    super({ highWaterMark: 64 * 1024 });
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new RangeError(`bytesPerSecond must be positive, not ${bytesPerSecond}`);
    this.piece = Math.max(MIN_PIECE, Math.min(MAX_PIECE, Math.floor(bytesPerSecond * PIECE_SECONDS)));
    // The transport failing or closing ends this stream too, and any wait on it.
    inner.on('error', (error) => this.destroy(error));
    inner.once('close', () => {
      this.transportClosed = true;
      this.abortWait?.(closedError());
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pace(chunk).then(() => callback(), callback);
  }

  private async pace(chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.length; at += this.piece) {
      const piece = chunk.subarray(at, Math.min(chunk.length, at + this.piece));
      const now = performance.now();
      const due = this.since + ((this.sent + piece.length) / this.bytesPerSecond) * 1000;
      if (this.sent === 0 || now - (this.since + (this.sent / this.bytesPerSecond) * 1000) > IDLE_RESET_MS) {
        // A fresh run: this piece goes at once, and the pace counts from here.
        this.since = now;
        this.sent = piece.length;
      } else {
        this.sent += piece.length;
        if (due - now >= MIN_SLEEP_MS) await this.sleep(due - now);
      }
      if (!this.inner.write(piece)) await this.drained();
    }
  }

  private sleep(ms: number): Promise<void> {
    return this.wait((done) => {
      const timer = setTimeout(done, ms);
      return () => clearTimeout(timer);
    });
  }

  private drained(): Promise<void> {
    return this.wait((done) => {
      this.inner.once('drain', done);
      return () => this.inner.off('drain', done);
    });
  }

  /** Waits for what `start` sets up (it returns how to undo it), or fails when the transport closes. */
  private wait(start: (done: () => void) => () => void): Promise<void> {
    if (this.transportClosed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const undo = start(() => {
        this.abortWait = undefined;
        undo();
        resolve();
      });
      this.abortWait = (error) => {
        this.abortWait = undefined;
        undo();
        reject(error);
      };
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error && !this.inner.destroyed) this.inner.destroy(error);
    callback(error);
  }
}

function closedError(): Error {
  return new Error('the transport closed while paced data waited');
}

/** `streams` with what is written to them paced to `bytesPerSecond`; as they are for 0 or undefined. */
export function limitRate(streams: ByteStreams, bytesPerSecond: number | undefined): ByteStreams {
  if (!bytesPerSecond) return streams;
  return { ...streams, writable: new RateLimitedWritable(streams.writable, bytesPerSecond) };
}
