/** One writer per destination: the lock at hello, stale locks, and no trace left in the root. */
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../src/agent-client.js';
import { LOCK_NAME } from '../src/lock.js';
import { inProcessAgent } from '../src/local.js';

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
