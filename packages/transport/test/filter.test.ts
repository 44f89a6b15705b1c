import { describe, expect, it } from 'vitest';
import { parseFilterFile, PathFilter, type FilterRule } from '../src/filter.js';

const exclude = (pattern: string): FilterRule => ({ action: 'exclude', pattern });
const include = (pattern: string): FilterRule => ({ action: 'include', pattern });

/** The paths of `paths` the filter excludes; a trailing '/' marks a directory. */
function excluded(rules: FilterRule[], paths: string[]): string[] {
  const filter = new PathFilter(rules);
  return paths.filter((p) => (p.endsWith('/') ? filter.excludes(p.slice(0, -1), true) : filter.excludes(p, false)));
}

describe('PathFilter', () => {
  it('excludes nothing without rules, and never the root', () => {
    expect(excluded([], ['a', 'b/', 'b/c'])).toEqual([]);
    expect(new PathFilter([exclude('*')]).excludes('', true)).toBe(false);
  });

  it('matches a pattern without a slash against the name at any depth', () => {
    expect(excluded([exclude('*.log')], ['a.log', 'x/y/b.log', 'a.log.txt', 'log'])).toEqual(['a.log', 'x/y/b.log']);
  });

  it('lets the first matching rule decide, as rsync does', () => {
    const paths = ['keep.log', 'drop.log', 'other.txt'];
    expect(excluded([include('keep.log'), exclude('*.log')], paths)).toEqual(['drop.log']);
    // The other order: the exclude matches keep.log first.
    expect(excluded([exclude('*.log'), include('keep.log')], paths)).toEqual(['keep.log', 'drop.log']);
  });

  it('supports the include-directories, include-some, exclude-the-rest idiom', () => {
    const rules = [include('*/'), include('*.txt'), exclude('*')];
    expect(excluded(rules, ['a.txt', 'a.bin', 'sub/', 'sub/b.txt', 'sub/b.bin', 'sub/deep/', 'sub/deep/c.txt'])).toEqual(['a.bin', 'sub/b.bin']);
  });

  it('applies a trailing-slash pattern to directories only, and to their contents', () => {
    const rules = [exclude('build/')];
    expect(excluded(rules, ['build/', 'build/out.js', 'src/build/', 'src/build/x', 'build', 'src/build'])).toEqual([
      'build/',
      'build/out.js',
      'src/build/',
      'src/build/x',
    ]);
  });

  it('anchors a leading-slash pattern at the transfer root', () => {
    expect(excluded([exclude('/top')], ['top', 'top/', 'top/x', 'sub/top', 'sub/top/'])).toEqual(['top', 'top/', 'top/x']);
  });

  it('anchors a pattern with an inner slash (gitignore), and matches ** across directories', () => {
    expect(excluded([exclude('a/b')], ['a/b', 'a/b/c', 'x/a/b'])).toEqual(['a/b', 'a/b/c']);
    expect(excluded([exclude('**/tmp')], ['tmp', 'a/tmp', 'a/b/tmp/', 'a/tmpx'])).toEqual(['tmp', 'a/tmp', 'a/b/tmp/']);
    expect(excluded([exclude('a/**/z')], ['a/z', 'a/b/z', 'a/b/c/z', 'b/a/z'])).toEqual(['a/z', 'a/b/z', 'a/b/c/z']);
  });

  it('matches character classes and single-character wildcards', () => {
    expect(excluded([exclude('file[0-9].?')], ['file1.c', 'file12.c', 'filex.c', 'file2.cc'])).toEqual(['file1.c']);
  });

  it('ignores blank patterns', () => {
    expect(excluded([exclude(''), exclude('  ')], ['a.txt', ' '])).toEqual([]);
  });

  // rsync --exclude='!draft' --exclude='#notes' excludes files with those very names (comments exist
  // only in filter files); here '!' turns the rule into an include and '#' drops it.
  it('takes a leading "!" or "#" in a command-line pattern literally, as rsync does', () => {
    expect(excluded([exclude('!draft'), exclude('#notes')], ['!draft', '#notes', 'draft'])).toEqual(['!draft', '#notes']);
  });
});

describe('parseFilterFile', () => {
  it('reads one exclude per line, with + and - prefixes, comments and CRLF', () => {
    const text = ['# comment', '; also a comment', '', '*.tmp', '+ keep.tmp', '- cache/', 'trailing   ', 'x'].join('\r\n');
    expect(parseFilterFile(text)).toEqual([exclude('*.tmp'), include('keep.tmp'), exclude('cache/'), exclude('trailing'), exclude('x')]);
  });

  it('gives rules that keep their file order (first match wins)', () => {
    const rules = parseFilterFile('+ important.log\n*.log\n');
    expect(excluded(rules, ['important.log', 'debug.log'])).toEqual(['debug.log']);
  });
});
