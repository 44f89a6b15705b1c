/**
 * Where each destination stands. An `up` destination receives every batch. One that fails a batch (or
 * cannot be reached) goes `down` and is retried with exponential backoff; a retry is a catch-up: one
 * full sync of the current state, never a replay of old events. Batches that ran while it was away or
 * catching up are remembered as paths (`missed`), so a change made during its catch-up scan is synced
 * to it once it is back up.
 */

export type DestinationState = 'up' | 'down' | 'catching-up';

export interface DestinationStatus {
  destination: string;
  state: DestinationState;
  /** Failed attempts in a row. */
  failures: number;
  /** With `down`: when the next catch-up is due (ms since the epoch). */
  retryAt?: number;
  /** The last error that took it down. */
  lastError?: { code: string; message: string };
  /** When it last finished a batch or catch-up successfully. */
  lastSyncAt?: number;
}

/** Paths remembered for a destination beyond this are replaced by one full resync. */
const MAX_MISSED = 10_000;

export class DestinationTracker {
  private readonly states = new Map<string, DestinationStatus>();
  private readonly missed = new Map<string, Set<string> | 'all'>();

  constructor(
    destinations: string[],
    private readonly retryMinMs: number,
    private readonly retryMaxMs: number,
  ) {
    for (const destination of destinations) {
      this.states.set(destination, { destination, state: 'catching-up', failures: 0 });
      this.missed.set(destination, new Set());
    }
  }

  get names(): string[] {
    return [...this.states.keys()];
  }

  status(): DestinationStatus[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  inState(state: DestinationState): string[] {
    return this.names.filter((name) => this.states.get(name)!.state === state);
  }

  /** Down destinations whose retry is due at `now`. */
  due(now: number): string[] {
    return this.names.filter((name) => {
      const s = this.states.get(name)!;
      return s.state === 'down' && (s.retryAt ?? 0) <= now;
    });
  }

  /** The earliest pending retry, if any destination is down. */
  nextRetry(): number | undefined {
    let at: number | undefined;
    for (const s of this.states.values()) if (s.state === 'down' && s.retryAt !== undefined) at = at === undefined ? s.retryAt : Math.min(at, s.retryAt);
    return at;
  }

  /** A batch over `paths` ran without these destinations (paths undefined: a full sync). */
  noteMissed(destinations: string[], paths: string[] | undefined): void {
    for (const name of destinations) {
      const set = this.missed.get(name)!;
      if (set === 'all') continue;
      if (paths === undefined || set.size + paths.length > MAX_MISSED) {
        this.missed.set(name, 'all');
        continue;
      }
      for (const p of paths) set.add(p);
    }
  }

  /** A catch-up starts: it syncs everything, so what was missed before it is covered. */
  startCatchUp(destinations: string[]): void {
    for (const name of destinations) {
      this.states.get(name)!.state = 'catching-up';
      this.missed.set(name, new Set());
    }
  }

  /** Back up after a successful catch-up; returns the paths changed meanwhile ('all' for a full resync). */
  up(name: string, now: number): Set<string> | 'all' {
    const s = this.states.get(name)!;
    s.state = 'up';
    s.failures = 0;
    s.retryAt = undefined;
    s.lastError = undefined;
    s.lastSyncAt = now;
    const missed = this.missed.get(name)!;
    this.missed.set(name, new Set());
    return missed;
  }

  synced(name: string, now: number): void {
    this.states.get(name)!.lastSyncAt = now;
  }

  /** A catch-up that was fine but not committed (another destination failed): tried again at once. */
  retrySoon(name: string, now: number): void {
    const s = this.states.get(name)!;
    s.state = 'down';
    s.retryAt = now;
  }

  /** Takes a destination down; returns the delay before its catch-up. */
  down(name: string, now: number, error: { code: string; message: string }): number {
    const s = this.states.get(name)!;
    s.failures++;
    const delay = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(30, s.failures - 1));
    s.state = 'down';
    s.retryAt = now + delay;
    s.lastError = error;
    return delay;
  }
}
