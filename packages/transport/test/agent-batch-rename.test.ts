/**
 * In a batch, files with a basis are renamed over it on the thread pool (agent.ts, placeFromDelta):
 * a rename that fails fails that file alone, removes its temporary file, and the reply still waits
 * for every rename.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDelta, decodeSignature, indexSignature } from '@deltacast/core';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { leftovers, pseudoRandom, sha256, useTempDirs } from './helpers/tree.js';
import { RawClient } from './helpers/raw-client.js';

const refuse = new Set<string>();

vi.mock('node:fs/promises', async (importOriginal) => {
  const fsp = await importOriginal<typeof import('node:fs/promises')>();
  const rename = (async (from: string, to: string) => {
    if (refuse.has(String(to))) throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
    return fsp.rename(from, to);
  }) as typeof fsp.rename;
  return { ...fsp, default: { ...fsp, rename }, rename };
});

const tempDir = useTempDirs();
let root: string;

beforeEach(async () => {
  root = join(tempDir(), 'root');
  await mkdir(root);
  refuse.clear();
});

describe('a batch whose rename fails', () => {
  it('fails that file alone, leaves its target and no temporary file, and places the others', async () => {
    const old = new Map([
      ['a', pseudoRandom(20_000, 1)],
      ['b', pseudoRandom(20_000, 2)],
      ['c', pseudoRandom(20_000, 3)],
    ]);
    for (const [name, data] of old) await writeFile(join(root, name), data);
    refuse.add(join(root, 'b'));
    const c = new RawClient();
    await c.hello(root);
    const frames = await c.send({ t: 'sigs', id: 1, paths: [...old.keys()], seed: '9', block: null }).then(() => c.exchange(1));
    const sizes = frames.at(-1)!.header.r as number[];
    const payload = Buffer.concat(frames.filter((f) => f.header.t === 'data').map((f) => f.payload!));
    const next = new Map<string, Uint8Array>();
    const deltas: Uint8Array[] = [];
    let at = 0;
    [...old].forEach(([name, data], i) => {
      const sig = decodeSignature(payload.subarray(at, (at += sizes[i])));
      const edited = Uint8Array.from(data);
      edited.set(pseudoRandom(50, 10 + i), 5000);
      next.set(name, edited);
      const builder = createDelta(indexSignature(sig));
      deltas.push(Buffer.concat([builder.update(edited), builder.final()]));
    });
    const f = [...next].map(([name, data], i) => [name, data.length, 0o644, 1_600_000_000_000, null, null, true, deltas[i].length]);
    await c.send({ t: 'puts', id: 2, f }, Buffer.concat(deltas));
    const r = (await c.reply(2)).r as unknown[];
    expect(r[0]).toBe(20_000);
    expect(r[1]).toEqual(['EIO', expect.stringContaining('rename')]);
    expect(r[2]).toBe(20_000);
    expect(sha256(await readFile(join(root, 'a')))).toBe(sha256(next.get('a')!));
    expect(sha256(await readFile(join(root, 'b')))).toBe(sha256(old.get('b')!));
    expect(sha256(await readFile(join(root, 'c')))).toBe(sha256(next.get('c')!));
    expect(await leftovers(root)).toEqual([]);
    expect(await c.bye()).toBeUndefined();
  });
});
