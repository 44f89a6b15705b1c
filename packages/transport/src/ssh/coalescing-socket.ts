/**
 * The TCP socket an SSH connection runs over, with the writes of one turn of the event loop joined
 * into one system call. ssh2 writes every packet it sends in pieces (with AES-GCM: the length, the
 * ciphertext and the tag, three writes), and a channel write of 64 KiB is two packets: six writes.
 * With TCP_NODELAY on (the handshake needs it) each write was its own system call and its own TCP
 * segment, and the server read each piece on its own. Corked until the current synchronous work is
 * done, they leave as one writev: one segment train, one wake-up of the server.
 */
import { Socket } from 'node:net';

/**
 * A TCP connection (connecting when this returns) whose writes are flushed together at the end of
 * each tick. Patched after `connect()`, which resets an instance's `write` to the prototype's.
 */
export function connectCoalescing(options: { host: string; port: number }): Socket {
  const socket = new Socket();
  socket.setMaxListeners(0); // as ssh2 does for the sockets it makes: a listener per channel is normal
  socket.connect(options);
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: unknown[]): boolean {
    if (!corked && !this.destroyed) {
      corked = true;
      this.cork();
      process.nextTick(flush);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  return socket;
}
