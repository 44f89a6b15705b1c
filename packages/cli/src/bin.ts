#!/usr/bin/env node
import { unlinkSync } from 'node:fs';
import { pendingTempFiles } from './io.js';
import { main } from './main.js';

// A closed stdout (`deltacast --help | head`) must not crash the process; commands writing data
// to stdout see the error through their own listener and fail with exit code 1.
process.stdout.on('error', () => {});

// Interrupted: remove half-written temporary outputs (targets are never touched before commit).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
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

process.exitCode = await main(process.argv.slice(2));
