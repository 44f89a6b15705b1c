/**
 * The end of an agent's output, ahead of its exit. Ending `process.stdout` does not close a pipe
 * (Node keeps descriptors 0-2 open for the life of the process), so whoever reads the agent (sshd,
 * or the parent of a child-process agent) sees end-of-file only when the process is gone. And the
 * exit can take long after the session's work is done: it waits for the thread pool, where the last
 * close of a replaced large file frees that file's blocks (~0.7 s for 1 GiB on ext4).
 *
 * `releaseStdio` closes the pipes behind descriptors 1 and 2 and puts /dev/null in their place, so
 * that a late write (a warning at exit) has somewhere harmless to go. Call it only when the session
 * has ended, everything written has been handed to the kernel, and the process is about to exit.
 */
import { closeSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';

/**
 * Replaces descriptors 1 and 2 with /dev/null, closing the pipes they held. Returns false (doing
 * nothing more) where that cannot be done safely: on Windows, when output is still buffered, or when
 * a descriptor number was taken by another open in between (then nothing else is touched).
 */
export function releaseStdio(streams: readonly Writable[] = [process.stdout, process.stderr]): boolean {
  if (process.platform === 'win32') return false;
  // Output still buffered would be lost with its pipe.
  if (streams.some((stream) => stream.writableLength > 0)) return false;
  for (const fd of [1, 2]) {
    try {
      closeSync(fd);
    } catch {
      return false;
    }
    // open(2) returns the lowest free descriptor: the one just closed, unless another thread's open
    // took it in between; then that file keeps it and this one goes.
    const nul = openSync('/dev/null', 'w');
    if (nul !== fd) {
      closeSync(nul);
      return false;
    }
  }
  return true;
}
