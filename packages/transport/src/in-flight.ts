/**
 * A budget of file bytes in flight for a transfer's pipeline: many small files can be in flight at
 * once while a few large ones take turns, since each file in flight holds its delta state.
 */
/** A budget of file bytes in flight: a file waits while others would take it past the cap. */
export class InFlightBytes {
  private used = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly cap: number) {}

  async acquire(size: number): Promise<void> {
    // Nothing in flight: any file goes, however large.
    while (this.used > 0 && this.used + size > this.cap) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.used += size;
  }

  release(size: number): void {
    this.used -= size;
    const waiting = this.waiters;
    this.waiters = [];
    for (const wake of waiting) wake();
  }
}
