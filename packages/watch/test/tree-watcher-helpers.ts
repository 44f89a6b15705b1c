import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { TreeWatcher, type TreeWatcherOptions, type WatchSignal } from '../src/tree-watcher.js';

/** Polls a condition; the deadline is generous because the machine is shared, and only bounds a failure. */
export async function waitFor(condition: () => boolean, what: string | (() => string), timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A started watcher on a fresh temporary tree, recording every signal. */
export class Harness {
  readonly signals: WatchSignal[] = [];
  /** The watch count when each signal was sent, to check that a change came after its watches. */
  readonly watchedAt: number[] = [];
  readonly excludeCalls: string[] = [];
  watcher!: TreeWatcher;

  constructor(readonly dir: string) {}

  static tempDir(): string {
    return mkdtempSync(join(tmpdir(), 'deltacast-watch-'));
  }

  path(rel: string): string {
    return rel === '' ? this.dir : join(this.dir, rel);
  }

  async start(options: Partial<TreeWatcherOptions> = {}): Promise<TreeWatcher> {
    const excludes = options.excludes;
    this.watcher = new TreeWatcher(
      {
        ...options,
        root: this.dir,
        excludes: excludes
          ? (path, isDirectory) => {
              this.excludeCalls.push(`${path}${isDirectory ? '/' : ''}`);
              return excludes(path, isDirectory);
            }
          : undefined,
      },
      (signal) => {
        this.signals.push(signal);
        this.watchedAt.push(this.watcher.watchedDirectories);
      },
    );
    await this.watcher.start();
    return this.watcher;
  }

  changes(): string[] {
    return this.signals.flatMap((s) => (s.type === 'change' ? [s.path] : []));
  }

  rescans(): Extract<WatchSignal, { type: 'rescan' }>[] {
    return this.signals.flatMap((s) => (s.type === 'rescan' ? [s] : []));
  }

  changed(rel: string): boolean {
    return this.changes().includes(rel);
  }

  /** Whether the signals so far oblige a consumer to look at `rel`: itself, an ancestor directory, or a rescan. */
  covers(rel: string, since = 0): boolean {
    return this.signals.slice(since).some(
      (s) => s.type === 'rescan' || s.path === '' || s.path === rel || rel.startsWith(`${s.path}/`),
    );
  }

  async waitChange(rel: string): Promise<void> {
    await waitFor(() => this.changed(rel), () => `a change of '${rel}' (${this.received()})`);
  }

  /** Every signal so far, for failure messages: a wrong watch count says little without them. */
  received(): string {
    return `signals received: ${JSON.stringify(this.signals)}`;
  }

  expectWatched(count: number): void {
    expect(this.watcher.watchedDirectories, `watched directories (${this.received()})`).toBe(count);
  }

  async waitWatched(count: number): Promise<void> {
    await waitFor(
      () => this.watcher.watchedDirectories === count,
      () => `${count} watches, have ${this.watcher.watchedDirectories} (${this.received()})`,
    );
  }

  /**
   * Waits until everything before now has been processed: a sentinel file's change is reported after
   * the events raised before it (one inotify queue, read in order).
   */
  async sentinel(name = `sentinel-${Math.random().toString(36).slice(2)}`): Promise<void> {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(this.path(name), 'x');
    await this.waitChange(name);
  }

  close(): void {
    this.watcher?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
