/** One writer per destination: the lock at hello, stale locks, and no trace left in the root. */
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { PathFilter } from '../src/filter.js';
import { LOCK_NAME } from '../src/lock.js';
import { inProcessAgent } from '../src/local.js';
import { syncTree } from '../src/sync.js';
import { scanSource } from '../src/tree.js';
import { spawnAgent } from './helpers/tree.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'deltacast-lock-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('the destination lock', () => {
  it('refuses a second session while the first holds it, and frees it at bye', async () => {
    const first = await AgentClient.connect(inProcessAgent(), { root, lock: true });
    const second = AgentClient.connect(inProcessAgent(), { root, lock: true });
    await expect(second).rejects.toMatchObject({ code: 'LOCKED' });
    await first.close();
    const third = await AgentClient.connect(inProcessAgent(), { root, lock: true });
    await third.close();
    expect(readdirSync(root)).toEqual([]);
  });

  it('ends a refused session cleanly when a request was sent right behind the hello', async () => {
    const first = await AgentClient.connect(inProcessAgent(), { root, lock: true });
    // A process of its own: in-process, the client's end always arrives before a reply could be written.
    const { child, exited } = spawnAgent();
    const { client, ready } = AgentClient.open({ readable: child.stdout, writable: child.stdin }, { root, lock: true });
    const listing = client.list();
    await expect(ready).rejects.toMatchObject({ code: 'LOCKED' });
    await expect(listing).rejects.toMatchObject({ code: 'CLOSED' });
    // Give a wrong agent time to answer the request after it ended its output (it then exits 1).
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 300))]);
    child.stdin.end();
    expect(await exited).toBe(0);
    await first.close();
  });

  it('fails a sync to a locked destination with LOCKED, changing nothing', async () => {
    const source = mkdtempSync(join(tmpdir(), 'deltacast-lock-src-'));
    try {
      writeFileSync(join(source, 'a'), 'new');
      const first = await AgentClient.connect(inProcessAgent(), { root, lock: true });
      const target = { name: 'locked', streams: inProcessAgent(), root };
      await expect(syncTree(() => scanSource(`${source}/`), target, new PathFilter([]))).rejects.toMatchObject({ code: 'LOCKED' });
      await first.close();
      expect(readdirSync(root)).toEqual([]);
    } finally {
      rmSync(source, { recursive: true, force: true });
    }
  });

  it('takes over a lock whose agent is gone', async () => {
    // 2^23 is above Linux's pid_max: no process has it.
    writeFileSync(join(root, LOCK_NAME), `${hostname()} ${2 ** 23}\n`);
    const client = await AgentClient.connect(inProcessAgent(), { root, lock: true });
    expect(await client.list()).toEqual([]);
    await client.close();
    expect(readdirSync(root)).toEqual([]);
  });

  it('does not take over a lock held on another host', async () => {
    writeFileSync(join(root, LOCK_NAME), `some-other-host 1\n`);
    await expect(AgentClient.connect(inProcessAgent(), { root, lock: true })).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it('leaves the root mtime as it was', async () => {
    utimesSync(root, 1_700_000_000, 1_700_000_000);
    const client = await AgentClient.connect(inProcessAgent(), { root, lock: true });
    await client.close();
    expect(statSync(root).mtimeMs).toBe(1_700_000_000_000);
  });
});
