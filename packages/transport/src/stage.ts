/**
 * Staging for whole-tree commits. With a stage, the agent applies nothing to the live tree while the
 * client sends: files and symlinks are written (and verified) into a staging directory inside the
 * root, and deletes, new directories and attribute changes are recorded. `commit` then applies it all
 * in one quick phase of renames; `abort` (or the session ending first) removes the staging directory
 * and leaves the tree exactly as it was. A staging directory left by a dead agent (its pid is in the
 * name) is removed by the next listing.
 */
import { closeSync, constants, lstatSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { chmod, chown, lchown, lutimes, lstat, mkdir, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { RootTimes } from './dir-times.js';
import { PathError } from './errors.js';
import { resolveInRoot } from './paths.js';

const STAGE_PREFIX = '.deltacast-stage-';
const STAGE_PATTERN = /^\.deltacast-stage-([0-9a-z]+)-[0-9a-z-]{1,64}$/;

/** A stage id from the wire: short, lowercase letters, digits and dashes. */
export function checkStageId(id: string): string {
  if (!/^[0-9a-z-]{1,64}$/.test(id)) throw new PathError('PATH_INVALID', `invalid stage id ${JSON.stringify(id)}`, { stage: id });
  return id;
}

/** The pid of the agent that made a staging directory, if `name` is one. */
export function parseStageName(name: string): number | undefined {
  const m = STAGE_PATTERN.exec(name);
  return m ? parseInt(m[1], 36) : undefined;
}

interface Attributes {
  mode?: number;
  mtime?: number;
  uid?: number;
  gid?: number;
}

type StagedOp =
  | { kind: 'delete'; path: string }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'place'; path: string; staged: string }
  | { kind: 'setattr'; path: string; attributes: Attributes };

const ORDER = { delete: 0, mkdir: 1, place: 2, setattr: 3 } as const;

export class Stage {
  readonly dir: string;
  private readonly ops: StagedOp[] = [];
  private count = 0;
  private made = false;
  private times: RootTimes | undefined;

  constructor(
    private readonly root: string,
    id: string,
    /** The owner and group a setattr gives (agent.ts ownership), or undefined for none. */
    private readonly owner: (uid: number | undefined, gid: number | undefined) => { uid: number; gid: number } | undefined,
  ) {
    this.dir = join(root, `${STAGE_PREFIX}${process.pid.toString(36)}-${checkStageId(id)}`);
  }

  /** A fresh path inside the staging directory for a file or link to be placed later. */
  nextPath(): string {
    if (!this.made) {
      this.times = new RootTimes(this.root);
      mkdirSync(this.dir, { mode: 0o700 });
      this.times.made();
      this.made = true;
    }
    return join(this.dir, String(this.count++));
  }

  /**
   * Records a change for the commit. For changes that add or remove an entry, the directory that will
   * hold it (or its nearest existing ancestor) is checked now to accept changes, so a read-only or
   * immutable directory fails the staging (and the destination is left as it was) rather than the
   * commit half way.
   */
  record(op: StagedOp): void {
    if (op.kind !== 'setattr') this.checkWritable(dirname(join(this.root, op.path)));
    this.ops.push(op);
  }

  private readonly writable = new Set<string>();

  /** Makes and removes a probe entry (the directory's mtime put back), once per directory. */
  private checkWritable(dir: string): void {
    let existing = dir;
    while (!lstatSync(existing, { throwIfNoEntry: false }) && existing.startsWith(`${this.root}/`)) existing = dirname(existing);
    if (this.writable.has(existing)) return;
    const probe = join(existing, `.dcprobe-${process.pid.toString(36)}-${this.count++}`);
    const times = new RootTimes(existing);
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
    times.made();
    times.removeWith(() => rmSync(probe, { force: true }));
    this.writable.add(existing);
  }

  /**
   * Applies the recorded changes: deletes (moved into the staging directory, removed afterwards),
   * directories parents first, renames of staged files and links into place, then attributes.
   * Paths are checked against the root again: the tree may have changed since they were sent.
   */
  async commit(): Promise<void> {
    const ops = this.ops.map((op, i) => ({ op, i })).sort((a, b) => ORDER[a.op.kind] - ORDER[b.op.kind] || a.i - b.i);
    for (const { op } of ops) {
      const target = await resolveInRoot(this.root, op.path);
      switch (op.kind) {
        case 'delete':
          if (lstatSync(target, { throwIfNoEntry: false })) renameSync(target, this.nextPath());
          break;
        case 'mkdir':
          await mkdir(target, { mode: op.mode | 0o700 }).catch(async (error: NodeJS.ErrnoException) => {
            if (error.code !== 'EEXIST' || !(await lstat(target)).isDirectory()) throw error;
          });
          break;
        case 'place':
          renameSync(op.staged, target);
          break;
        case 'setattr': {
          const { mode, mtime, uid, gid } = op.attributes;
          const st = await lstat(target);
          const own = this.owner(uid, gid);
          if (st.isSymbolicLink()) {
            if (own) await lchown(target, own.uid, own.gid);
            if (mtime !== undefined) await lutimes(target, Date.now() / 1000, mtime / 1000);
          } else {
            if (mode !== undefined) await chmod(target, mode);
            if (own) await chown(target, own.uid, own.gid);
            if (mtime !== undefined) await utimes(target, Date.now() / 1000, mtime / 1000);
          }
          break;
        }
      }
    }
    this.abort();
  }

  /** Removes the staging directory; the live tree is untouched. */
  abort(): void {
    // The root's mtime is put back: the staging directory's coming and going leave no trace.
    if (this.made) this.times!.removeWith(() => rmSync(this.dir, { recursive: true, force: true }));
    this.made = false;
  }
}
