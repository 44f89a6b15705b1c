import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startByteCounter } from '../lib/sshd.mjs';

/** A TCP echo server on 127.0.0.1. */
async function echoServer(): Promise<Server> {
  const server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * Sends `payload` through the relay and returns what came back (once it all has, the connection is
 * closed: the relay, like an SSH connection, is not used half-closed) and how long the first byte took.
 */
async function echoThrough(port: number, payload: Buffer): Promise<{ back: Buffer; firstMs: number }> {
  const socket = connect(port, '127.0.0.1');
  const start = performance.now();
  let firstMs = -1;
  const chunks: Buffer[] = [];
  let received = 0;
  socket.on('data', (c: Buffer) => {
    if (firstMs < 0) firstMs = performance.now() - start;
    chunks.push(c);
    received += c.length;
    if (received >= payload.length) socket.end();
  });
  socket.write(payload);
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { back: Buffer.concat(chunks), firstMs };
}

describe('startByteCounter', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('counts the bytes each way and passes them on unchanged', async () => {
    server = await echoServer();
    const counter = await startByteCounter((server.address() as AddressInfo).port);
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    const { back } = await echoThrough(counter.port, payload);
    expect(back.equals(payload)).toBe(true);
    expect(await counter.take()).toEqual({ up: payload.length, down: payload.length });
    counter.close();
  });

  it('with delayMs, adds that much each way and passes every byte on, in order', async () => {
    server = await echoServer();
    const counter = await startByteCounter((server.address() as AddressInfo).port, { delayMs: 60 });
    const payload = Buffer.from(Array.from({ length: 4_000_000 }, (_, i) => (i * 13) & 0xff));
    const { back, firstMs } = await echoThrough(counter.port, payload);
    expect(back.equals(payload)).toBe(true);
    // There and back: at least two delays before the first byte returns.
    expect(firstMs).toBeGreaterThanOrEqual(115);
    expect(await counter.take()).toEqual({ up: payload.length, down: payload.length });
    counter.close();
  });
});
