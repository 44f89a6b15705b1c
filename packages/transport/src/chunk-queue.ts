/**
 * A queue of byte chunks consumed as an async iterable, with a shared byte budget: producers push
 * frames' payloads, one consumer (a patch) pulls them. When the budget's high-water mark is passed,
 * `onHigh` runs (the agent pauses reading the wire); once consumers bring it under the low mark,
 * `onLow` runs (reading resumes). This is how backpressure crosses from disk writes to the sender.
 */
export class ByteBudget {
  private used = 0;
  private paused = false;

  constructor(
    private readonly high: number,
    private readonly low: number,
    private readonly onHigh: () => void,
    private readonly onLow: () => void,
  ) {}

  add(n: number): void {
    this.used += n;
    if (!this.paused && this.used > this.high) {
      this.paused = true;
      this.onHigh();
    }
  }

  release(n: number): void {
    this.used -= n;
    if (this.paused && this.used <= this.low) {
      this.paused = false;
      this.onLow();
    }
  }
}

export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly items: Uint8Array[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly budget?: ByteBudget) {}

  push(chunk: Uint8Array): void {
    if (this.ended || this.failure) return;
    this.items.push(chunk);
    this.budget?.add(chunk.length);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const item of this.items.splice(0)) this.budget?.release(item.length);
    this.notify();
  }

  /** Drops what is queued and ignores what comes: the consumer has stopped. */
  discard(): void {
    this.fail(new Error('discarded'));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.failure) throw this.failure;
      const item = this.items.shift();
      if (item) {
        this.budget?.release(item.length);
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
