/**
 * An in-process agent behind a relay that rewrites frame headers each way: an older agent (a
 * capability hidden, a field ignored), or a record of what the client sent.
 */
import { PassThrough } from 'node:stream';
import { encodeFrameHead, FrameDecoder, type Frame, type Header } from '../../src/frame.js';
import { inProcessAgent } from '../../src/local.js';
import type { ByteStreams } from '../../src/wire.js';

export type Rewrite = (header: Header) => Header;

/** The agent's streams with `toAgent` applied to every header the client sends, `fromAgent` to every one it gets. */
export function relayedAgent(toAgent: Rewrite, fromAgent: Rewrite): ByteStreams & { done: Promise<void> } {
  const agent = inProcessAgent();
  const relay = (from: NodeJS.ReadableStream, to: NodeJS.WritableStream, rewrite: Rewrite) => {
    const decoder = new FrameDecoder();
    from.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let frame: Frame | undefined; (frame = decoder.next()); ) {
        const header = rewrite(frame.header);
        to.write(encodeFrameHead(header, frame.payload?.length ?? 0));
        if (frame.payload) to.write(frame.payload.slice());
      }
    });
    from.on('end', () => to.end());
  };
  const client = new PassThrough();
  const back = new PassThrough();
  relay(client, agent.writable, toAgent);
  relay(agent.readable, back, fromAgent);
  return { readable: back, writable: client, close: () => client.end(), done: agent.done };
}

/** A rewrite of the agent's hello that hides `capability` from the client. */
export function hideCapability(capability: string): Rewrite {
  return (h) => (h.t === 'hello' && Array.isArray(h.caps) ? { ...h, caps: h.caps.filter((c) => c !== capability) } : h);
}

/** An agent whose requests are recorded in order, each as `describe` gives it (its type by default). */
export function recordingAgent(
  describe: (header: Header) => string = (h) => String(h.t),
  fromAgent: Rewrite = (h) => h,
): ByteStreams & { requests: string[]; done: Promise<void> } {
  const requests: string[] = [];
  const streams = relayedAgent((h) => {
    requests.push(describe(h));
    return h;
  }, fromAgent);
  return { ...streams, requests };
}
