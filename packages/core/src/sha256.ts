/**
 * SHA-256 of bytes held whole, in one call. Node's one-shot `crypto.hash` (Node 20.12 and later)
 * skips the Hash object that `createHash` makes and the garbage it leaves: for the many small files
 * of a tree, whose deltas and patches each hash one piece, that object cost about as much as the
 * hashing. Older Node 20 releases fall back to `createHash`.
 */
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Buffer;

const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export function sha256(data: Uint8Array): Buffer {
  return oneShot !== undefined ? oneShot('sha256', data, 'buffer') : crypto.createHash('sha256').update(data).digest();
}
