/** The SSH connection's socket: the writes of one tick leave in one system call, in order, none lost. */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectCoalescing } from '../src/ssh/coalescing-socket.js';

interface Spied {
  socket: Socket;
  /** One entry per call into the stream's lower layer: the number of chunks it was handed. */
  calls: number[];
}

let server: Server;
let received: Promise<Buffer>;
let port = 0;
const open: Socket[] = [];

beforeEach(async () => {
  server = createServer();
  received = new Promise((resolve) => {
    server.once('connection', (peer) => {
      open.push(peer);
      const chunks: Buffer[] = [];
      peer.on('data', (chunk: Buffer) => chunks.push(chunk));
      peer.on('end', () => {
        resolve(Buffer.concat(chunks));
        peer.end();
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});
afterEach(async () => {
  for (const socket of open.splice(0)) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function connected(): Promise<Spied> {
  const socket = connectCoalescing({ host: '127.0.0.1', port });
  open.push(socket);
  expect(socket.connecting).toBe(true);
  await once(socket, 'connect');
  socket.setNoDelay(true);
  const calls: number[] = [];
  const internals = socket as unknown as {
    _write: (chunk: unknown, encoding: unknown, callback: unknown) => void;
    _writev: (chunks: unknown[], callback: unknown) => void;
  };
  const write = internals._write.bind(socket);
  const writev = internals._writev.bind(socket);
  internals._write = (chunk, encoding, callback) => {
    calls.push(1);
    write(chunk, encoding, callback);
  };
  internals._writev = (chunks, callback) => {
    calls.push(chunks.length);
    writev(chunks, callback);
  };
  return { socket, calls };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('connectCoalescing', () => {
  it('hands the writes of one tick to the system in one call', async () => {
    const { socket, calls } = await connected();
    socket.write(Buffer.from('len-'));
    socket.write(Buffer.from('ciphertext-'));
    socket.write(Buffer.from('tag.'));
    expect(calls).toEqual([]); // held until the current synchronous work is done
    await tick();
    expect(calls).toEqual([3]);
    socket.end();
    expect((await received).toString()).toBe('len-ciphertext-tag.');
  });

  it('flushes each tick on its own, keeps their order and calls every callback', async () => {
    const { socket, calls } = await connected();
    const done: string[] = [];
    socket.write('a', () => done.push('a'));
    socket.write('b', () => done.push('b'));
    await tick();
    socket.write('c', () => done.push('c'));
    await tick();
    socket.write('d', () => done.push('d'));
    socket.write('e', () => done.push('e'));
    socket.write('f', () => done.push('f'));
    socket.end();
    expect((await received).toString()).toBe('abcdef');
    expect(calls).toEqual([2, 1, 3]);
    expect(done).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('hands held writes over at once when they reach 64 KiB, without waiting for the tick to end', async () => {
    const { socket, calls } = await connected();
    const piece = Buffer.alloc(40 * 1024, 7);
    socket.write(piece);
    expect(calls).toEqual([]);
    socket.write(piece); // 80 KiB held: out now
    expect(calls).toEqual([2]);
    socket.write(Buffer.from('tail'));
    expect(calls).toEqual([2]);
    await tick();
    expect(calls).toEqual([2, 1]);
    socket.end();
    expect((await received).length).toBe(80 * 1024 + 4);
  });

  it('sends what was written before the connection was up', async () => {
    const socket = connectCoalescing({ host: '127.0.0.1', port });
    open.push(socket);
    socket.write('SSH-2.0-early\r\n');
    socket.end();
    expect((await received).toString()).toBe('SSH-2.0-early\r\n');
  });

  it('reports a refused connection as an error event, as a plain socket does', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const unused = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const socket = connectCoalescing({ host: '127.0.0.1', port: unused });
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNREFUSED');
    expect(() => socket.write('late')).not.toThrow();
  });
});
