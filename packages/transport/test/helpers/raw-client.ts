/**
 * A client written by hand for agent tests: sends any frame, waits for replies by id, sees how the
 * agent (in process) ends.
 */
import { delta, signature } from '@deltacast/core';
import type { Frame, Header } from '../../src/frame.js';
import type { TransportError } from '../../src/errors.js';
import { inProcessAgent } from '../../src/local.js';
import { PROTOCOL_VERSION } from '../../src/messages.js';
import { FrameSession } from '../../src/wire.js';

export const EMPTY_SIGNATURE = signature(new Uint8Array(0), { format: 'native', seed: 0n });

/** A native delta making `data` from nothing, as a client sends for a new file. */
export function newFileDelta(data: Uint8Array): Uint8Array {
  return delta(EMPTY_SIGNATURE, data);
}

/** A client written by hand: sends any frame, waits for replies by id, sees how the agent ends. */
export class RawClient {
  readonly agent = inProcessAgent();
  readonly session = new FrameSession(this.agent);
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<TransportError | undefined>;
  /** How serveAgent settled: undefined when it resolved, else its error. */
  readonly agentResult: Promise<unknown>;

  constructor() {
    this.session.onFrame((f) => {
      this.frames.push({ header: f.header, payload: f.payload?.slice() });
      const w = this.waiters;
      this.waiters = [];
      for (const wake of w) wake();
    });
    this.closed = new Promise((resolve) => this.session.onClose(resolve));
    this.agentResult = this.agent.done.then(
      () => undefined,
      (error: unknown) => error,
    );
    void this.closed.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(header: Header, payload?: Uint8Array): Promise<void> {
    return this.session.send(header, payload);
  }

  /** Raw bytes straight onto the agent's input. */
  write(bytes: Uint8Array): void {
    this.agent.writable.write(bytes);
  }

  /** The next frame answering `id` that ends a request (not a data or entries frame). */
  async reply(id: number): Promise<Header> {
    for (;;) {
      // The agent's hello carries no id; it answers request 0.
      const i = this.frames.findIndex(
        (f) => (f.header.id === id || (id === 0 && f.header.t === 'hello')) && f.header.t !== 'data' && f.header.t !== 'entries',
      );
      if (i >= 0) return this.frames.splice(i, 1)[0].header;
      if (this.session.closed) throw new Error(`session closed before a reply to ${id}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Every frame for `id`, through the one that ends the request. */
  async exchange(id: number): Promise<Frame[]> {
    const end = await this.reply(id);
    const rest = this.frames.filter((f) => f.header.id === id);
    for (const f of rest) this.frames.splice(this.frames.indexOf(f), 1);
    return [...rest, { header: end, payload: undefined }];
  }

  async hello(root: string, extra: Partial<Header> = {}): Promise<Header> {
    await this.send({ t: 'hello', v: [1, PROTOCOL_VERSION], caps: [], root, owner: false, partial: false, ...extra });
    return this.reply(0);
  }

  async request(header: Header): Promise<Header> {
    await this.send(header);
    return this.reply(header.id as number);
  }

  /** A whole put: header, delta in data frames, end; returns the agent's reply. */
  async put(id: number, path: string, deltaBytes: Uint8Array, size: number, extra: Partial<Header> = {}): Promise<Header> {
    await this.send({ t: 'put', id, path, size, mode: 0o644, mtime: 1_700_000_000_000, uid: null, gid: null, basis: false, ...extra });
    for (let at = 0; at < deltaBytes.length; at += 64 * 1024) await this.send({ t: 'data', id }, deltaBytes.subarray(at, at + 64 * 1024));
    await this.send({ t: 'end', id });
    return this.reply(id);
  }

  async bye(): Promise<unknown> {
    await this.send({ t: 'bye' });
    this.session.end();
    return this.agentResult;
  }
}

