#!/usr/bin/env node
import { main } from './main.js';

// A closed stdout (`deltacast --help | head`) must not crash the process; commands writing data
// to stdout see the error through their own listener and fail with exit code 1.
process.stdout.on('error', () => {});
process.exitCode = await main(process.argv.slice(2));
