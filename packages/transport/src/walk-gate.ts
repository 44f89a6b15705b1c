/**
 * Keeps an agent's walks and its changes to the tree apart. A walk is synchronous but where it
 * waits: for a full batch of entries to be sent, for a stale temporary file to be removed. A change
 * run in such a gap could replace a directory the walk has just found real with a symlink, and the
 * walk would then list, and vouch for (docs/protocol.md, Paths), what lies outside the root. Any
 * number of walks may run at once, and any number of changes, never both: a task waits while the
 * other kind runs or waits before it (first come, first served).
 */
type Kind = 'walk' | 'change';

export class WalkGate {
  private active: Kind | undefined;
  private running = 0;
  private readonly waiting: { kind: Kind; start: () => void }[] = [];

  /** Runs `task` as a walk. A walk let in now is counted before this returns. */
  walk<T>(task: () => Promise<T>): Promise<T> {
    return this.run('walk', task);
  }

  /** Runs `task` as a change to the tree. */
  change<T>(task: () => Promise<T>): Promise<T> {
    return this.run('change', task);
  }

  private run<T>(kind: Kind, task: () => Promise<T>): Promise<T> {
    // The executor turns a task that throws at once into a rejection: the count is always undone.
    const go = () => new Promise<T>((resolve) => resolve(task())).finally(() => this.leave());
    if ((this.active === undefined || this.active === kind) && this.waiting.length === 0) {
      this.active = kind;
      this.running++;
      return go();
    }
    return new Promise<void>((start) => this.waiting.push({ kind, start })).then(go);
  }

  private leave(): void {
    if (--this.running > 0) return;
    this.active = undefined;
    // The first waiter goes in, with every one of its kind right behind it.
    while (this.waiting.length > 0 && (this.active === undefined || this.waiting[0].kind === this.active)) {
      const next = this.waiting.shift()!;
      this.active = next.kind;
      this.running++;
      next.start();
    }
  }
}
