/**
 * The whole-file hash of the deltas a client sends (delta-hash.ts): XXH3-128 to an agent offering
 * `delta-xxh128`, SHA-256 to one that does not; both patch and verify, and the trees end the same.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadFileHashes } from '@deltacast/core/deferred';
import { decodeBatchFiles } from '../src/batch.js';
import { deltaFileHash } from '../src/delta-hash.js';
import { FrameDecoder, type Header } from '../src/frame.js';
import { inProcessAgent } from '../src/local.js';
import { DELTA_XXH128_CAPABILITY } from '../src/messages.js';
import { FrameSession, type ByteStreams } from '../src/wire.js';
import type { AgentClient } from '../src/agent-client.js';
import { BASE_MTIME_MS, diffTrees, file, pseudoRandom, runSync, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';

const tempDir = useTempDirs();
const MiB = 1024 * 1024;

/**
 * An in-process agent seen through a relay: its hello's capabilities pass through `caps`, and the
 * flags byte of every native delta the client sends is recorded (puts: each file of the batch; put:
 * its first data frame).
 */
function tappedAgent(caps: (offered: string[]) => string[]): ByteStreams & { done: Promise<void>; flags: number[] } {
  const agent = inProcessAgent();
  const flags: number[] = [];
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  // Client to agent: bytes pass unchanged; frames are decoded on the side.
  const decoder = new FrameDecoder();
  const started = new Set<number>();
  const puts = new Set<number>();
  toAgent.on('data', (chunk: Buffer) => {
    agent.writable.write(chunk);
    decoder.push(chunk);
    for (let frame = decoder.next(); frame; frame = decoder.next()) {
      const h = frame.header;
      const id = h.id as number;
      if (h.t === 'puts' && frame.payload) {
        let at = 0;
        for (const f of decodeBatchFiles(h)) {
          flags.push(frame.payload[at + 5]);
          at += f.length;
        }
      } else if (h.t === 'put') {
        puts.add(id);
      } else if (h.t === 'data' && puts.has(id) && !started.has(id) && frame.payload) {
        started.add(id);
        flags.push(frame.payload[5]);
      }
    }
  });
  toAgent.on('end', () => agent.writable.end());
  // Agent to client: frames re-sent, the hello's capabilities edited.
  const relay = new FrameSession({ readable: new PassThrough(), writable: fromAgent });
  const fromReal = new FrameSession({ readable: agent.readable, writable: new PassThrough() });
  fromReal.onFrame((frame) => {
    const h: Header = frame.header.t === 'hello' ? { ...frame.header, caps: caps(frame.header.caps as string[]) } : frame.header;
    void relay.send(h, frame.payload);
  });
  fromReal.onClose(() => fromAgent.end());
  return { readable: fromAgent, writable: toAgent, close: () => toAgent.end(), done: agent.done, flags };
}

function spec(version: number): TreeSpec {
  const out: TreeSpec = {
    'big.bin': file(pseudoRandom(3 * MiB, 1)), // alone: a put of its own
    'new-big.bin': file(pseudoRandom(2 * MiB, 2)), // new and large: a put of LITERALs
  };
  for (let i = 0; i < 20; i++) out[`small/${i}.txt`] = file(pseudoRandom(2_000 + i, 100 + i)); // batched
  if (version > 0) {
    const big = pseudoRandom(3 * MiB, 1);
    big.set(pseudoRandom(5_000, 7), MiB);
    const mtimeMs = BASE_MTIME_MS + 60_000; // changed files have a new mtime, as edits give them
    out['big.bin'] = file(big, { mtimeMs });
    for (let i = 0; i < 20; i += 2) out[`small/${i}.txt`] = file(pseudoRandom(2_000 + i, 200 + i), { mtimeMs });
    out['small/new.txt'] = file('a new small file');
  }
  return out;
}

describe('the whole-file hash of the deltas sent', () => {
  it('is XXH3-128 for an agent offering delta-xxh128 and SHA-256 for one that does not; both end identical', async () => {
    await loadFileHashes();
    for (const [offer, flag] of [[true, 0x01], [false, 0x00]] as const) {
      const src = tempDir();
      const dst = tempDir();
      await writeTree(src, spec(0));
      const caps = (offered: string[]) => (offer ? offered : offered.filter((c) => c !== DELTA_XXH128_CAPABILITY));
      const first = tappedAgent(caps);
      await runSync(`${src}/`, dst, {}, first);
      expect(first.flags.length).toBe(22);
      await writeTree(src, spec(1));
      const second = tappedAgent(caps);
      const summary = await runSync(`${src}/`, dst, {}, second);
      expect(summary.updated).toBe(11);
      expect(summary.created).toBe(1);
      expect(summary.matchedBytes).toBeGreaterThan(2 * MiB);
      expect(await diffTrees(src, dst)).toEqual([]);
      expect(second.flags.length).toBe(12);
      for (const f of [...first.flags, ...second.flags]) expect(f).toBe(flag);
    }
  });

  it('is SHA-256 for a shared delta unless every agent offers delta-xxh128', async () => {
    await loadFileHashes();
    const agent = (caps: string[]) => ({ info: { capabilities: caps } }) as unknown as AgentClient;
    const yes = agent(['batch', DELTA_XXH128_CAPABILITY]);
    const no = agent(['batch']);
    expect(deltaFileHash(yes)).toBe('xxh128');
    expect(deltaFileHash(no)).toBe('sha256');
    expect(deltaFileHash([yes, yes])).toBe('xxh128');
    expect(deltaFileHash([yes, no, yes])).toBe('sha256');
    expect(deltaFileHash({ info: undefined } as unknown as AgentClient)).toBe('sha256'); // before its hello
  });
});
