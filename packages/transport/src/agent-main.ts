/**
 * Entry point of the single-file agent bundle that is uploaded to hosts without deltacast:
 * `node agent-<hash>.mjs` serves the protocol on stdin/stdout.
 */
import { serveAgent } from './agent.js';

process.stdout.on('error', () => process.exit(1));
serveAgent({ readable: process.stdin, writable: process.stdout }).then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`deltacast agent: ${error.message}\n`);
    process.exit(1);
  },
);
