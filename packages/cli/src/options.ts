/** Parsers for option values; a bad value is a usage error (exit code 2). */
import { InvalidArgumentError } from 'commander';

/** An integer in [min, max], written in decimal. */
export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`not an integer: ${value}`);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}

const SUFFIXES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte count: a non-negative integer with an optional K, M or G suffix (powers of 1024). */
export function byteCount(min: number): (value: string) => number {
  return (value) => {
    const match = /^(\d+)([kmg]?)(?:i?b)?$/i.exec(value.trim());
    if (!match) throw new InvalidArgumentError(`not a byte count: ${value} (use e.g. 4096, 512K, 16M)`);
    const n = Number(match[1]) * SUFFIXES[match[2].toLowerCase()];
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`must be at least ${min} bytes`);
    return n;
  };
}

/**
 * A transfer rate as rsync's --bwlimit takes it, in bytes per second: KiB/s without a suffix;
 * K, M, G (or KiB, MiB, GiB) for powers of 1024, KB, MB, GB for powers of 1000, B for bytes;
 * decimals allowed (1.5M). 0 means no limit; any other rate is at least 512 bytes per second.
 */
export function transferRate(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:([kmg])(i?b)?|(b))?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`not a rate: ${value} (KiB per second, or e.g. 500K, 1.5M, 10MB)`);
  const [, number, prefix, unit, bytes] = match;
  let multiplier = 1024; // no suffix: KiB
  if (bytes) multiplier = 1;
  else if (prefix) {
    const power = 'kmg'.indexOf(prefix.toLowerCase()) + 1;
    multiplier = (unit?.toLowerCase() === 'b' ? 1000 : 1024) ** power;
  }
  const rate = Math.round(Number(number) * multiplier);
  if (rate !== 0 && rate < 512) throw new InvalidArgumentError('must be 0 (no limit) or at least 512 bytes per second');
  if (!Number.isSafeInteger(rate)) throw new InvalidArgumentError(`too large: ${value}`);
  return rate;
}

/**
 * A file size as rsync's --max-size and --min-size take it: bytes without a suffix; K, M, G, T (or
 * KiB...) for powers of 1024, KB, MB, GB, TB for powers of 1000; decimals allowed (1.5M); a trailing
 * +1 or -1 adds or takes one byte (10M-1).
 */
export function sizeLimit(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:([kmgt])(i?b)?|(b))?([+-]1)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`not a size: ${value} (bytes, or e.g. 500K, 1.5M, 10MB, 1G-1)`);
  const [, number, prefix, unit, , adjust] = match;
  const multiplier = prefix ? (unit?.toLowerCase() === 'b' ? 1000 : 1024) ** ('kmgt'.indexOf(prefix.toLowerCase()) + 1) : 1;
  const size = Math.floor(Number(number) * multiplier) + (adjust ? Number(adjust) : 0);
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`not a size: ${value}`);
  return size;
}

/** Human-readable size for reports: bytes below 10 KiB, else KiB/MiB/GiB with one decimal. */
export function formatBytes(n: number): string {
  if (n < 10 * 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** A duration in seconds (decimals allowed, as lsyncd's and sleep's), returned in milliseconds. */
export function seconds(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new InvalidArgumentError(`not a number of seconds: ${value}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be from ${min} to ${max} seconds`);
    return Math.round(n * 1000);
  };
}
