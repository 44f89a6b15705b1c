import { describe, expect, it } from 'vitest';
import { parseFilterFile, parseFilterRule, PathFilter, type FilterRule } from '../src/filter.js';

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

describe('dir-merge rules (per-directory filter files)', () => {
  /** A filter whose per-directory files are `files` (wire directory -> text), entered as a scan would. */
  function withFiles(rules: FilterRule[], files: Record<string, string>): PathFilter {
    const filter = new PathFilter(rules);
    for (const dir of ['', 'site', 'site/sub', 'other']) filter.enterDirectory(dir, `/src/${dir}`, (path) => files[path.slice('/src/'.length).replace(/\/?\.gitignore$/, '')]);
    return filter;
  }
  const gitignore: FilterRule = { action: 'dir-merge', pattern: '.gitignore', modifier: '-' };

  it("applies each directory's file under it, relative to it, the deeper file first", () => {
    const filter = withFiles([gitignore], { '': '*.log\n/top-only\n', site: '/build/\n!keep.log\n', 'site/sub': 'cache\n' });
    const judged = (path: string, dir = false) => filter.excludes(path, dir);
    expect(judged('a.log')).toBe(true);
    expect(judged('other/b.log')).toBe(true);
    expect(judged('top-only')).toBe(true);
    expect(judged('site/top-only')).toBe(false); // anchored to the root's file
    expect(judged('site/build', true)).toBe(true); // anchored to site/
    expect(judged('build', true)).toBe(false);
    expect(judged('site/sub/build', true)).toBe(false);
    expect(judged('site/keep.log')).toBe(false); // site's `!keep.log` decides before the root's `*.log`
    expect(judged('site/sub/keep.log')).toBe(false);
    expect(judged('other/keep.log')).toBe(true);
    expect(judged('site/sub/cache', true)).toBe(true);
    expect(judged('site/cache', true)).toBe(false);
  });

  it('takes its place in the order of the rules: an include before it wins, an exclude after it loses', () => {
    const files = { '': '*.log\n' };
    expect(withFiles([include('a.log'), gitignore], files).excludes('a.log', false)).toBe(false);
    expect(withFiles([gitignore, include('a.log')], files).excludes('a.log', false)).toBe(true);
    expect(withFiles([gitignore, exclude('*.txt')], files).excludes('x.txt', false)).toBe(true);
  });

  it("without a modifier reads rsync's '+ ' and '- ' lines; with '+' every line includes", () => {
    const rsyncStyle = withFiles([{ action: 'dir-merge', pattern: '.gitignore' }, exclude('*')], { '': '+ *.c\n- *.o\n' });
    expect(rsyncStyle.excludes('a.c', false)).toBe(false);
    expect(rsyncStyle.excludes('a.o', false)).toBe(true);
    const including = withFiles([{ action: 'dir-merge', pattern: '.gitignore', modifier: '+' }, exclude('*')], { '': 'a.c\n' });
    expect(including.excludes('a.c', false)).toBe(false);
    expect(including.excludes('b.c', false)).toBe(true);
  });

  it('forgets a file a directory no longer has when the scan enters it again', () => {
    const files: Record<string, string> = { '': '*.log\n' };
    const filter = new PathFilter([gitignore]);
    const read = (path: string) => files[path.slice('/src/'.length).replace(/\/?\.gitignore$/, '')];
    filter.enterDirectory('', '/src/', read);
    expect(filter.excludes('a.log', false)).toBe(true);
    delete files[''];
    filter.enterDirectory('', '/src/', read);
    expect(filter.excludes('a.log', false)).toBe(false);
  });
});

describe('parseFilterRule', () => {
  it("reads rsync's rule syntax", () => {
    expect(parseFilterRule('- *.log')).toEqual([exclude('*.log')]);
    expect(parseFilterRule('+ keep')).toEqual([include('keep')]);
    expect(parseFilterRule('exclude tmp/')).toEqual([exclude('tmp/')]);
    expect(parseFilterRule(':- .gitignore')).toEqual([{ action: 'dir-merge', pattern: '.gitignore', modifier: '-' }]);
    expect(parseFilterRule('dir-merge,- .gitignore')).toEqual([{ action: 'dir-merge', pattern: '.gitignore', modifier: '-' }]);
    expect(parseFilterRule(': .rsync-filter')).toEqual([{ action: 'dir-merge', pattern: '.rsync-filter' }]);
    expect(parseFilterRule('. rules', () => '- *.o\n+ *.c\n')).toEqual([exclude('*.o'), include('*.c')]);
  });

  it('refuses what it does not take', () => {
    expect(() => parseFilterRule('P protect')).toThrow(/expected "- PATTERN"/);
    expect(() => parseFilterRule('*.log')).toThrow(/expected/);
    expect(() => parseFilterRule(': sub/.gitignore')).toThrow(/a name, without "\/"/);
  });
});
