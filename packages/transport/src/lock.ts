/**
 * One writer per destination: `ROOT/.deltacast-lock`, created exclusively at hello and removed when
 * the session ends. It holds the agent's host name and pid; a lock whose agent is gone (same host,
 * pid not running) is stale and taken over, so a crashed run never blocks the next one. Making and
 * removing the lock file moves the root's mtime; the root's times are put back, so the lock leaves no
 * trace in the tree the sync just made identical to its source.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync, constants } from 'node:fs';
import { RootTimes } from './dir-times.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TransportError } from './errors.js';
import { processAlive } from './tempfile.js';

export const LOCK_NAME = '.deltacast-lock';

export class DestinationLock {
  private released = false;

  private constructor(
    private readonly path: string,
    private readonly times: RootTimes,
  ) {}

  /** Takes the lock or throws TransportError 'LOCKED' naming its holder. */
  static acquire(root: string): DestinationLock {
    const path = join(root, LOCK_NAME);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const times = new RootTimes(root);
        const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        writeSync(fd, `${hostname()} ${process.pid}\n`);
        closeSync(fd);
        times.made();
        return new DestinationLock(path, times);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const [host, pidText] = readFileSync(path, 'utf8').trim().split(/\s+/);
      const pid = Number(pidText);
      if (host === hostname() && Number.isInteger(pid) && !processAlive(pid)) {
        rmSync(path, { force: true }); // stale: its agent is gone
        continue;
      }
      throw new TransportError('LOCKED', `destination is locked by another deltacast run (${host} pid ${pidText}); remove ${path} if that run is gone`, {
        holder: `${host} ${pidText}`,
      });
    }
    throw new TransportError('LOCKED', `could not take ${path}`, {});
  }

  /** Removes the lock and restores the root's mtime (once; later calls do nothing). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.times.removeWith(() => rmSync(this.path, { force: true }));
  }
}
