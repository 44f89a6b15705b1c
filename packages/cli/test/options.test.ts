/** Option value parsers (src/options.ts). */
import { describe, expect, it } from 'vitest';
import { sizeLimit, transferRate } from '../src/options.js';
import { chownValue } from '../src/commands/transfer-options.js';

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

describe("sizeLimit, as rsync's --max-size and --min-size read a size", () => {
  it.each([
    ['0', 0],
    ['100', 100],
    ['1.5K', 1536],
    ['10M', 10 * 1024 ** 2],
    ['10MB', 10_000_000],
    ['2GiB', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
    ['1G-1', 1024 ** 3 - 1],
    ['1k+1', 1025],
    ['512b', 512],
  ])('%j is %d bytes', (text, size) => {
    expect(sizeLimit(text)).toBe(size);
  });

  it.each(['', 'big', '-1', '1.5.5', '10X', '1e6', '0-1'])('refuses %j', (text) => {
    expect(() => sizeLimit(text)).toThrow(/not a size/);
  });
});

describe("chownValue, as rsync's --chown reads USER:GROUP", () => {
  it.each([
    ['www-data:www-data', { user: 'www-data', group: 'www-data' }],
    ['deploy', { user: 'deploy' }],
    ['deploy:', { user: 'deploy' }],
    [':www', { group: 'www' }],
    ['33:33', { user: '33', group: '33' }],
  ])('%j', (text, value) => {
    expect(chownValue(text)).toEqual(value);
  });

  it.each(['', ':', 'a:b:c', 'a b'])('refuses %j', (text) => {
    expect(() => chownValue(text)).toThrow(/not USER, USER:GROUP or :GROUP/);
  });
});
