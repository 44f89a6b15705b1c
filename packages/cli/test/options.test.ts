/** Option value parsers (src/options.ts). */
import { describe, expect, it } from 'vitest';
import { transferRate } from '../src/options.js';

describe("transferRate, as rsync's --bwlimit reads a rate", () => {
  it.each([
    ['100', 100 * 1024],
    ['0', 0],
    ['1.5', 1536],
    ['500K', 500 * 1024],
    ['500k', 500 * 1024],
    ['2M', 2 * 1024 ** 2],
    ['1.5m', 1.5 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['10MB', 10_000_000],
    ['10MiB', 10 * 1024 ** 2],
    ['64KB', 64_000],
    ['4096b', 4096],
    [' 8K ', 8192],
  ])('%j is %d bytes per second', (text, rate) => {
    expect(transferRate(text)).toBe(rate);
  });

  it.each(['', 'fast', '-1', '1.', '.5', '5X', '5 K', '10bb', '1e3'])('refuses %j', (text) => {
    expect(() => transferRate(text)).toThrow(/not a rate/);
  });

  it('refuses rates under 512 bytes per second, but for 0', () => {
    expect(() => transferRate('511b')).toThrow(/at least 512/);
    expect(() => transferRate('0.4')).toThrow(/at least 512/);
    expect(transferRate('512b')).toBe(512);
    expect(() => transferRate('99999999999999G')).toThrow(/too large/);
  });
});
