/**
 * The command line every comparison script shares: its options plus -h/--help (prints the usage, exit
 * 0), and usage errors that name the script and exit 2.
 */
import { parseArgs } from 'node:util';

export function benchArgs(name, usage, options) {
  const { values: opts } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } });
  if (opts.help) {
    console.log(usage);
    process.exit(0);
  }
  const fail = (message) => {
    console.error(`${name}: ${message}`);
    process.exit(2);
  };
  /** The value of --key as a positive integer, or a usage error. */
  const positive = (key) => {
    const n = Number(opts[key]);
    if (!Number.isInteger(n) || n < 1) fail(`--${key} must be a positive integer, not ${opts[key]}`);
    return n;
  };
  return { opts, fail, positive };
}
