/**
 * --bwlimit's pacing (src/rate-limit.ts). Times are checked from below only: pacing may never be
 * faster than the rate, while a busy machine may always make it slower.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openDestination } from '../src/open-destination.js';
import { limitRate, RateLimitedWritable } from '../src/rate-limit.js';
import { sync } from '../src/sync.js';
import { pseudoRandom, useTempDirs, writeTree, file } from './helpers/tree.js';

const temp = useTempDirs('deltacast-rate-');

/** A sink that keeps what it is given, taking `delayMs` over each chunk (0: at once). */
function sink(delayMs = 0, highWaterMark = 16 * 1024): Writable & { got: Buffer[] } {
  const got: Buffer[] = [];
  const stream = new Writable({
    highWaterMark,
    write(chunk: Buffer, _encoding, callback) {
      got.push(Buffer.from(chunk));
      if (delayMs > 0) setTimeout(callback, delayMs);
      else callback();
    },
  });
  return Object.assign(stream, { got });
}

function finished(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', reject);
  });
}

describe('RateLimitedWritable', () => {
  it('passes every byte on, in order, no faster than the rate', async () => {
    const inner = sink();
    const paced = new RateLimitedWritable(inner, 600 * 1024);
    const data = pseudoRandom(300 * 1024, 3);
    const started = performance.now();
    // In uneven writes, as frames come: headers, payloads, one larger than a piece.
    for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 13) % 90_000) paced.write(data.subarray(at, at + n));
    paced.end();
    await finished(inner);
    const elapsed = performance.now() - started;
    expect(Buffer.concat(inner.got).equals(Buffer.from(data))).toBe(true);
    // 300 KiB at 600 KiB/s is 500 ms; the first piece (30 KiB, 50 ms) goes at once.
    expect(elapsed).toBeGreaterThanOrEqual(440);
  });

  it('keeps to the transport backpressure: a slow transport still gets everything', async () => {
    const inner = sink(5, 1024);
    const paced = new RateLimitedWritable(inner, 10 * 1024 * 1024);
    const data = pseudoRandom(200 * 1024, 4);
    let refused = 0;
    for (let at = 0; at < data.length; at += 8192) if (!paced.write(data.subarray(at, at + 8192))) refused++;
    paced.end();
    await finished(inner);
    expect(Buffer.concat(inner.got).equals(Buffer.from(data))).toBe(true);
    expect(refused).toBeGreaterThan(0); // the writer was told to wait, as FrameSession waits for 'drain'
  });

  it("fails a write waiting on its pause when the transport closes, and passes the transport's error on", async () => {
    const inner = new PassThrough();
    inner.resume();
    const paced = new RateLimitedWritable(inner, 1024);
    const errors: Error[] = [];
    paced.on('error', (e) => errors.push(e));
    const second = new Promise<Error | null | undefined>((resolve) => {
      paced.write(Buffer.alloc(4096));
      paced.write(Buffer.alloc(4096), (error) => resolve(error));
    });
    setTimeout(() => inner.destroy(), 50);
    const error = await second;
    expect(error?.message).toMatch(/transport closed/);

    const failing = new PassThrough();
    const paced2 = new RateLimitedWritable(failing, 1024 * 1024);
    const got = new Promise<Error>((resolve) => paced2.on('error', resolve));
    failing.destroy(new Error('EPIPE on the channel'));
    expect((await got).message).toBe('EPIPE on the channel');
  });

  it('refuses a rate that is not positive; limitRate leaves streams alone for 0 or undefined', () => {
    for (const rate of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new RateLimitedWritable(new PassThrough(), rate)).toThrow(RangeError);
    const streams = { readable: new PassThrough(), writable: new PassThrough() };
    expect(limitRate(streams, 0)).toBe(streams);
    expect(limitRate(streams, undefined)).toBe(streams);
    const limited = limitRate(streams, 4096);
    expect(limited.readable).toBe(streams.readable);
    expect(limited.writable).toBeInstanceOf(RateLimitedWritable);
  });
});

describe('sync with bwlimit', () => {
  it('sends a file no faster than the limit, and it arrives whole', async () => {
    const dir = temp();
    const src = join(dir, 'src');
    const content = pseudoRandom(768 * 1024, 9);
    await writeTree(src, { 'big.bin': file(content), 'small.txt': file('small\n') });
    const started = performance.now();
    const summary = await sync({ source: `${src}/`, destination: join(dir, 'dst'), localAgent: 'in-process', bwlimit: 1024 * 1024 });
    const elapsed = performance.now() - started;
    expect(summary.ok).toBe(true);
    expect(summary.created).toBe(2);
    expect(Buffer.from(await readFile(join(dir, 'dst', 'big.bin'))).equals(Buffer.from(content))).toBe(true);
    // 768 KiB at 1 MiB/s: 750 ms, less the first piece that goes at once (50 ms).
    expect(elapsed).toBeGreaterThanOrEqual(680);
  });

  it('refuses a negative or non-numeric limit before connecting', async () => {
    for (const bwlimit of [-5, Number.NaN]) {
      await expect(openDestination(join(temp(), 'never'), { bwlimit })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
  });
});
