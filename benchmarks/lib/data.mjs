/**
 * Test data for the benchmarks: deterministic random bytes, scattered edits, and the files built
 * from them. Everything derives from a seed string, so two runs (and rdiff and deltacast within a
 * run) see exactly the same bytes.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const KiB = 1024;
const MiB = 1024 * KiB;
export const CHUNK = 4 * MiB;

/**
 * Random bytes from AES-128-CTR over zeros, keyed by the seed: deterministic, and at several GB/s
 * far faster than a JS generator, so making a 1 GiB file is disk-bound.
 */
export function* randomChunks(seed, length, chunkSize = CHUNK) {
  const key = createHash('sha256').update(`deltacast-bench:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkSize);
  for (let done = 0; done < length; done += chunkSize) {
    const n = Math.min(chunkSize, length - done);
    yield new Uint8Array(cipher.update(n === chunkSize ? zeros : zeros.subarray(0, n)));
  }
}

export function randomBytes(seed, length) {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of randomChunks(seed, length)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** mulberry32: a small seeded PRNG for edit positions, kinds and inserted bytes. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Default edit count: ~500, fewer on small files so that most blocks still match. */
export function defaultEditCount(size) {
  return Math.max(1, Math.min(500, Math.floor(size / (16 * KiB))));
}

/**
 * `count` non-overlapping edits spread over [0, size): one per equal segment, each a byte flip run
 * (1-8 bytes inverted), an insert (1-64 random bytes) or a delete (1-64 bytes), in ascending order.
 */
export function makeEdits(size, count, seed = 1) {
  const rand = mulberry32(seed);
  const segment = Math.floor(size / count);
  if (segment < 160) throw new Error(`too many edits (${count}) for ${size} bytes`);
  const edits = [];
  for (let i = 0; i < count; i++) {
    // Stay 80 bytes clear of the segment's end so no edit overlaps the next one.
    const position = i * segment + Math.floor(rand() * (segment - 80));
    const kind = Math.floor(rand() * 3);
    if (kind === 0) edits.push({ type: 'flip', position, length: 1 + Math.floor(rand() * 8) });
    else if (kind === 1) {
      const data = new Uint8Array(1 + Math.floor(rand() * 64));
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(rand() * 256);
      edits.push({ type: 'insert', position, data });
    } else edits.push({ type: 'delete', position, length: 1 + Math.floor(rand() * 64) });
  }
  return edits;
}

/**
 * Applies sorted, non-overlapping edits to a stream of chunks, in one pass: `push(chunk)` returns
 * the output pieces for it. Edits may straddle chunk edges (a flip or delete continues in the next).
 */
export class StreamEditor {
  constructor(edits) {
    this.edits = edits;
    this.next = 0;
    this.offset = 0;
    this.flip = 0;
    this.skip = 0;
  }

  push(chunk) {
    const out = [];
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const d = Math.min(this.skip, n - i);
        i += d;
        this.skip -= d;
        continue;
      }
      if (this.flip > 0) {
        const d = Math.min(this.flip, n - i);
        const flipped = chunk.slice(i, i + d);
        for (let j = 0; j < d; j++) flipped[j] ^= 0xff;
        out.push(flipped);
        i += d;
        this.flip -= d;
        continue;
      }
      const edit = this.edits[this.next];
      if (edit === undefined || edit.position >= this.offset + n) {
        out.push(chunk.subarray(i));
        break;
      }
      const at = edit.position - this.offset;
      if (at > i) out.push(chunk.subarray(i, at));
      i = at;
      this.next++;
      if (edit.type === 'insert') out.push(edit.data);
      else if (edit.type === 'flip') this.flip = edit.length;
      else this.skip = edit.length;
    }
    this.offset += n;
    return out;
  }
}

/** Applies edits to a buffer held in memory. */
export function applyEdits(data, edits) {
  const pieces = new StreamEditor(edits).push(data);
  const out = new Uint8Array(pieces.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

/** A file being written in large sequential writes, with its SHA-256 and length kept on the way. */
class OutputFile {
  constructor(path) {
    this.path = path;
    this.fd = openSync(path, 'w');
    this.hash = createHash('sha256');
    this.length = 0;
  }

  write(data) {
    for (let at = 0; at < data.length; ) at += writeSync(this.fd, data, at, data.length - at);
    this.hash.update(data);
    this.length += data.length;
  }

  close() {
    closeSync(this.fd);
    return { path: this.path, length: this.length, sha256: this.hash.digest('hex') };
  }
}

/**
 * Writes, in one pass over the generator: `basis.bin` (SIZE random bytes), `new.bin` (the basis with
 * scattered edits) and, when asked, `unrelated.bin` (SIZE bytes from another seed: nothing matches).
 */
export function generateFiles(dir, size, { edits = defaultEditCount(size), unrelated = true, seed = 'basis' } = {}) {
  const basis = new OutputFile(join(dir, 'basis.bin'));
  const changed = new OutputFile(join(dir, 'new.bin'));
  const editor = new StreamEditor(makeEdits(size, edits));
  for (const chunk of randomChunks(seed, size)) {
    basis.write(chunk);
    for (const piece of editor.push(chunk)) changed.write(piece);
  }
  const files = { basis: basis.close(), new: changed.close(), edits };
  if (unrelated) {
    const other = new OutputFile(join(dir, 'unrelated.bin'));
    for (const chunk of randomChunks(`${seed}:unrelated`, size)) other.write(chunk);
    files.unrelated = other.close();
  }
  return files;
}

/** Reads a whole file once, in large reads: leaves it in the page cache and returns its SHA-256. */
export function hashFile(path) {
  const fd = openSync(path, 'r');
  const buffer = Buffer.allocUnsafe(CHUNK);
  const hash = createHash('sha256');
  let length = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      length += n;
    }
  } finally {
    closeSync(fd);
  }
  return { length, sha256: hash.digest('hex') };
}
