import { describe, expect, it } from 'vitest';
import { coveringScopes, covers, parentOf, SourceLayout } from '../src/scopes.js';
import { exactPattern } from '../src/settle.js';
import { PathFilter } from '@deltacast/transport';

describe('SourceLayout', () => {
  it('maps "dir/" (contents) to the root', () => {
    const layout = new SourceLayout('/src/site/');
    expect(layout.directory).toBe('/src/site');
    expect(layout.top).toBe('');
    expect(layout.wireOf('a/b')).toBe('a/b');
    expect(layout.wireOf('')).toBe('');
    expect(layout.localOf('a/b')).toBe('/src/site/a/b');
    expect(layout.localOf('')).toBe('/src/site');
  });

  it('maps "dir" (the directory itself) under its name', () => {
    const layout = new SourceLayout('/src/site');
    expect(layout.top).toBe('site');
    expect(layout.wireOf('a/b')).toBe('site/a/b');
    expect(layout.wireOf('')).toBe('site');
    expect(layout.localOf('site/a/b')).toBe('/src/site/a/b');
    expect(layout.localOf('site')).toBe('/src/site');
    expect(layout.localOf('sites/a')).toBeUndefined();
    expect(layout.localOf('other')).toBeUndefined();
  });
});

describe('coveringScopes', () => {
  it('drops duplicates and paths below a kept one, whatever the order', () => {
    expect(coveringScopes(['a/b/c', 'a', 'a-b', 'a/b', 'b/x', 'b/x', 'a.txt', 'b/xy'])).toEqual(['a', 'a-b', 'a.txt', 'b/x', 'b/xy']);
  });

  it('a whole-tree change covers everything', () => {
    expect(coveringScopes(['x/y', '', 'z'])).toEqual(['']);
    expect(coveringScopes([])).toEqual([]);
  });

  it('covers() is about path components, not string prefixes', () => {
    expect(covers('a', 'a/b')).toBe(true);
    expect(covers('a', 'a')).toBe(true);
    expect(covers('a', 'ab')).toBe(false);
    expect(covers('a', 'a-b/c')).toBe(false);
    expect(covers('', 'anything')).toBe(true);
    expect(parentOf('a/b/c')).toBe('a/b');
    expect(parentOf('a')).toBe('');
  });
});

describe('exactPattern', () => {
  it('excludes exactly one path, special characters and all', () => {
    const names = ['a*b.txt', 'x?y', '[ab]', '!bang', '#hash', ' leading space', 'dir/b*/c', 'back\\slash', 'plain'];
    for (const name of names) {
      const filter = new PathFilter([{ action: 'exclude', pattern: exactPattern(name)! }]);
      expect(filter.excludes(name, false), name).toBe(true);
      expect(filter.excludes(`other/${name}`, false), name).toBe(false);
      expect(filter.excludes(name.replace(/[*?]/g, 'Z'), false) && name !== name.replace(/[*?]/g, 'Z'), name).toBe(false);
    }
    expect(new PathFilter([{ action: 'exclude', pattern: exactPattern('[ab]')! }]).excludes('a', false)).toBe(false);
    // No rule can name these; such a file is sent as it is rather than held back.
    expect(exactPattern('trailing space ')).toBeUndefined();
    expect(exactPattern('line\nbreak')).toBeUndefined();
  });
});
