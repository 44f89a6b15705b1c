#!/usr/bin/env node
import { unlinkSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { pendingTempFiles, processIO, stoppable } from './io.js';
import { main } from './main.js';

// A closed stdout (`deltacast --help | head`) must not crash the process; commands writing data
// to stdout see the error through their own listener and fail with exit code 1.
process.stdout.on('error', () => {});

// Interrupted: a command that stops cleanly (watch) is asked to, and a second signal ends it at once;
// otherwise half-written temporary outputs are removed (targets are never touched before commit).
const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stoppable.active && !interrupt.signal.aborted) {
      interrupt.abort();
      process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
      return;
    }
    for (const temp of pendingTempFiles) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

// The bundle is also loaded on worker threads that sum a large basis (the transport's
// file-signature.ts, for an agent run in this process): they run no command.
if (isMainThread) {
  void main(process.argv.slice(2), processIO(interrupt.signal)).then((code) => {
    process.exitCode = code;
  });
}
