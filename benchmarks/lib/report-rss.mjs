// Preloaded with `node --import` when GNU time is missing: writes this process's peak RSS (KiB) on exit.
import { writeFileSync } from 'node:fs';

const file = process.env.DELTACAST_BENCH_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
