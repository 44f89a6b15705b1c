import { describe, expect, it } from 'vitest';
import { parseTempName, partialPathFor, tempPathFor } from '../src/tempfile.js';

describe('temp file names', () => {
  it('sit beside their target and name it, the agent pid and a counter', () => {
    const a = tempPathFor('/srv/site/dir/index.html');
    const b = tempPathFor('/srv/site/dir/index.html');
    expect(a).toMatch(/^\/srv\/site\/dir\/\.index\.html\.dctmp-[0-9a-z]+-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    const name = a.slice(a.lastIndexOf('/') + 1);
    expect(parseTempName(name)).toEqual({ target: 'index.html', pid: process.pid });
  });

  it('keep a relative target relative', () => {
    expect(tempPathFor('f')).toMatch(/^\.f\.dctmp-/);
  });

  it('stay within 255 bytes for a long name, marked dctmpx, and never name a partial', () => {
    for (const long of ['x'.repeat(255), 'é'.repeat(127), '😀'.repeat(63)]) {
      const temp = tempPathFor(`/r/${long}`);
      const name = temp.slice(3);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      expect(name).toContain('.dctmpx-');
      expect(parseTempName(name)).toMatchObject({ target: undefined, pid: process.pid });
    }
    // A name that fits whole after all.
    const fits = tempPathFor(`/r/${'é'.repeat(100)}`);
    expect(parseTempName(fits.slice(3))).toMatchObject({ target: 'é'.repeat(100) });
    expect(partialPathFor(`/r/${'x'.repeat(250)}`)).toBeUndefined();
  });
});
