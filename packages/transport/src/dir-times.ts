/**
 * Our own bookkeeping entries in a destination root (the lock file, a staging directory) move the
 * root's mtime when they are made and removed. This keeps that from showing: note the mtime before
 * making the entry and after, and on removal put back what the mtime would be without us — the
 * original if nothing else changed it meanwhile, else the value just before the removal.
 */
import { lstatSync, utimesSync } from 'node:fs';

export class RootTimes {
  private readonly before: number;
  private after = Number.NaN;

  constructor(private readonly dir: string) {
    this.before = lstatSync(dir).mtimeMs;
  }

  /** Call right after making the entry. */
  made(): void {
    this.after = lstatSync(this.dir).mtimeMs;
  }

  /** Removes the entry with `remove` and restores the directory's mtime. */
  removeWith(remove: () => void): void {
    const st = lstatSync(this.dir);
    remove();
    // Times go through floating-point seconds: compare within 10 µs (as the sync's quick check does).
    const untouched = Math.abs(st.mtimeMs - this.after) < 0.01;
    utimesSync(this.dir, st.atimeMs / 1000, (untouched ? this.before : st.mtimeMs) / 1000);
  }
}
