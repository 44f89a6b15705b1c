/**
 * Agent sessions kept open across fan-out runs (watch mode runs one every few seconds): connecting
 * and starting an agent costs more than a small batch itself. A session that failed or was closed
 * by its peer while idle is replaced on the next run. A kept session holds its destination's lock,
 * so no other run can write that destination while the pool has it.
 */
import type { AgentClient, OpenedDestination } from '@deltacast/transport';

export interface PooledSession {
  client: AgentClient;
  destination: OpenedDestination;
}

export class SessionPool {
  private readonly sessions = new Map<string, PooledSession>();
  private closed = false;

  /** The open session for `name`, or a new one from `open` (kept for later runs). */
  async acquire(name: string, open: () => Promise<PooledSession>): Promise<PooledSession> {
    if (this.closed) throw new Error('session pool is closed');
    const existing = this.sessions.get(name);
    if (existing && !existing.client.closed) return existing;
    if (existing) this.drop(name);
    const session = await open();
    if (this.closed) {
      await end(session);
      throw new Error('session pool is closed');
    }
    this.sessions.set(name, session);
    return session;
  }

  /** Forgets and tears down `name`'s session (after a failure). */
  drop(name: string): void {
    const session = this.sessions.get(name);
    if (!session) return;
    this.sessions.delete(name);
    session.client.abort();
    void session.destination.close();
  }

  /** Ends every session politely (releasing the destinations' locks). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(end));
  }

  get size(): number {
    return this.sessions.size;
  }
}

async function end(session: PooledSession): Promise<void> {
  await session.client.close().catch(() => {});
  await session.destination.close();
}
