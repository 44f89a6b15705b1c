/**
 * Keeps an agent's walks and its changes to the tree apart. A walk is synchronous but where it
 * waits: for a full batch of entries to be sent, for a stale temporary file to be removed. A change
 * run in such a gap could replace a directory the walk has just found real with a symlink, and the
 * walk would then list, and vouch for (docs/protocol.md, Paths), what lies outside the root.
 *
 * Any number of walks may run at once, and any number of changes, never both: a walk waits while
 * changes run, a change while walks run. There is no queue across the two kinds: a change that
 * arrives while others run goes in even if a walk waits for them. A change waiting behind a waiting
 * walk would hold its data queued unread, and enough of that pauses the session's input, which the
 * changes that walk waits for may still need: the two would wait for each other. Walks need no input.
 */
type Kind = 'walk' | 'change';

export class WalkGate {
  private readonly running: Record<Kind, number> = { walk: 0, change: 0 };
  private readonly waiting: Record<Kind, (() => void)[]> = { walk: [], change: [] };

  /** Runs `task` as a walk. A walk let in now is counted before this returns. */
  walk<T>(task: () => Promise<T>): Promise<T> {
    return this.run('walk', 'change', task);
  }

  /** Runs `task` as a change to the tree. */
  change<T>(task: () => Promise<T>): Promise<T> {
    return this.run('change', 'walk', task);
  }

  private run<T>(kind: Kind, other: Kind, task: () => Promise<T>): Promise<T> {
    // The executor turns a task that throws at once into a rejection: the count is always undone.
    const go = () => new Promise<T>((resolve) => resolve(task())).finally(() => this.leave(kind, other));
    if (this.running[other] === 0) {
      this.running[kind]++;
      return go();
    }
    return new Promise<void>((start) => this.waiting[kind].push(start)).then(go);
  }

  private leave(kind: Kind, other: Kind): void {
    if (--this.running[kind] > 0) return;
    // The last of its kind: every task of the other kind that waited for it goes in.
    const next = this.waiting[other].splice(0);
    this.running[other] += next.length;
    for (const start of next) start();
  }
}
