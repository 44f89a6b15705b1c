/** FrameSession's batching: small frames of one turn share a write, but none waits long behind a busy turn. */
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../src/frame.js';
import { FrameSession } from '../src/wire.js';

/** A writable that records each write it is handed (frames decoded per write). */
function recorder() {
  const writes: string[][] = [];
  const writable = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const decoder = new FrameDecoder();
      decoder.push(chunk);
      const types: string[] = [];
      for (let frame = decoder.next(); frame; frame = decoder.next()) types.push(String(frame.header.t));
      writes.push(types);
      callback();
    },
  });
  return { writes, writable };
}

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a turn of the event loop that does work for a while
  }
}

describe('FrameSession batching', () => {
  it('writes the small frames of one short turn together, at the end of the turn', async () => {
    const { writes, writable } = recorder();
    const session = new FrameSession({ readable: new PassThrough(), writable });
    const sent = ['a', 'b', 'c'].map((t) => session.send({ t }));
    expect(writes).toEqual([]);
    await Promise.all(sent);
    expect(writes).toEqual([['a', 'b', 'c']]);
  });

  it('writes a batch that has waited over a millisecond at the next send, inside the same turn', async () => {
    const { writes, writable } = recorder();
    const session = new FrameSession({ readable: new PassThrough(), writable });
    const sent = [session.send({ t: 'first' })];
    busy(3);
    sent.push(session.send({ t: 'second' }));
    expect(writes).toEqual([['first', 'second']]); // out before the turn ended
    sent.push(session.send({ t: 'third' }));
    await Promise.all(sent);
    expect(writes).toEqual([['first', 'second'], ['third']]);
  });
});
