/**
 * The TCP socket an SSH connection runs over, with the writes of one turn of the event loop joined
 * into one system call. ssh2 writes every packet it sends in pieces (with AES-GCM: the length, the
 * ciphertext and the tag, three writes), and a channel write of 64 KiB is two packets: six writes.
 * With TCP_NODELAY on (the handshake needs it) each write was its own system call and its own TCP
 * segment, and the server read each piece on its own. Corked until the current synchronous work is
 * done, they leave as one writev: one segment train, one wake-up of the server. Bulk leaves at once:
 * when what is held reaches FLUSH_BYTES it is written without waiting for the tick to end (a burst
 * of work that writes as it goes, such as many small files sent one after another in one tick, must
 * not hold it all back until the end).
 */
import { Socket } from 'node:net';

/** Held writes are flushed at once when they reach this many bytes. */
export const FLUSH_BYTES = 64 * 1024;

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
    const ok = (write as (...a: unknown[]) => boolean).apply(this, args);
    if (corked && this.writableLength >= FLUSH_BYTES) {
      // Written now; the pending flush then finds nothing corked (uncork is a no-op when not corked).
      corked = false;
      this.uncork();
    }
    return ok;
  } as Socket['write'];
  return socket;
}
