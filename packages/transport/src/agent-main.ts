/**
 * Entry point of the single-file agent bundle that is uploaded to hosts without deltacast:
 * `node agent-<hash>.mjs` serves the protocol on stdin/stdout.
 */
import { isMainThread } from 'node:worker_threads';
import { serveAgent } from './agent.js';
import { releaseStdio } from './stdio-release.js';

// The bundle is also loaded on worker threads that sum a large basis (file-signature.ts): they serve nothing.
if (isMainThread) {
  process.stdout.on('error', () => process.exit(1));
  serveAgent({ readable: process.stdin, writable: process.stdout }).then(
    () => {
      // The client takes the end of our output as the end of the session: give it that now, not
      // after the exit has waited for the thread pool (stdio-release.ts).
      releaseStdio();
      process.exit(0);
    },
    (error: Error) => {
      process.stderr.write(`deltacast agent: ${error.message}\n`);
      process.exit(1);
    },
  );
}
