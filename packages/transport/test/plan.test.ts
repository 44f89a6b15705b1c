import { describe, expect, it } from 'vitest';
import type { RemoteEntry } from '../src/agent-client.js';
import { PathFilter, type FilterRule } from '../src/filter.js';
import { comparePaths, depth, limitDeletes, planChanges, type Plan, type PlanOptions } from '../src/plan.js';
import type { SourceEntry, SourceTree } from '../src/tree.js';

const T = 1_700_000_000_000;

type Attrs = { size?: number; mtimeMs?: number; mode?: number; linkTarget?: string };

function src(path: string, type: 'f' | 'd' | 'l', a: Attrs = {}): SourceEntry {
  return {
    path,
    local: `/source/${path}`,
    type,
    size: type === 'f' ? (a.size ?? 10) : 0,
    mtimeMs: a.mtimeMs ?? T,
    mode: a.mode ?? (type === 'd' ? 0o755 : 0o644),
    uid: 0,
    gid: 0,
    linkTarget: type === 'l' ? (a.linkTarget ?? 'target') : undefined,
  };
}

function rem(path: string, type: 'f' | 'd' | 'l', a: Attrs = {}): RemoteEntry {
  const { local: _local, ...entry } = src(path, type, a);
  return entry;
}

/** A "dir/" source: contents map to the destination root, whose own attributes are synced. */
function contents(entries: SourceEntry[]): SourceTree {
  return { base: '/source', root: src('', 'd'), entries, skipped: [] };
}

/** A "dir" source: the directory itself (entries under `dir/`), no root attributes. */
function itself(entries: SourceEntry[]): SourceTree {
  return { base: '/source', root: undefined, entries, skipped: [] };
}

function plan(tree: SourceTree, remote: RemoteEntry[], options: Partial<PlanOptions> = {}, rules: FilterRule[] = []): Plan {
  return planChanges(tree, remote, new PathFilter(rules), { delete: false, ...options });
}

const kinds = (changes: { kind: string; path: string }[]) => changes.map((c) => `${c.kind} ${c.path}`);

describe('planChanges', () => {
  it('creates what is missing: dirs parents first, files, symlinks', () => {
    const p = plan(contents([src('a', 'd'), src('a/b', 'd'), src('a/b/f', 'f'), src('l', 'l'), src('g', 'f')]), []);
    expect(kinds(p.mkdirs)).toEqual(['mkdir a', 'mkdir a/b']);
    expect(kinds(p.files)).toEqual(['create a/b/f', 'create g']);
    expect(kinds(p.symlinks)).toEqual(['symlink l']);
    expect(p.deletes).toEqual([]);
    expect(p.attrs).toEqual([]);
    expect(p.unchanged).toBe(0);
  });

  it('leaves an entry of the same size and mtime (to the millisecond) alone', () => {
    const p = plan(contents([src('f', 'f', { mtimeMs: T + 0.2 }), src('l', 'l')]), [rem('f', 'f', { mtimeMs: T + 0.9 }), rem('l', 'l')]);
    expect(p.files).toEqual([]);
    expect(p.symlinks).toEqual([]);
    expect(p.unchanged).toBe(2);
    expect(p.dirAttrs).toEqual([]);
  });

  it('updates a file whose size or mtime differ', () => {
    const p = plan(contents([src('size', 'f', { size: 11 }), src('time', 'f', { mtimeMs: T + 1 }), src('same', 'f')]), [
      rem('size', 'f'),
      rem('time', 'f'),
      rem('same', 'f'),
    ]);
    expect(kinds(p.files)).toEqual(['update size', 'update time']);
    expect(p.files[0].remote?.path).toBe('size');
    expect(p.unchanged).toBe(1);
    expect(kinds(p.dirAttrs)).toEqual(['attrs ']);
  });

  it('changes only attributes when a file differs in mode alone', () => {
    const p = plan(contents([src('f', 'f', { mode: 0o600 })]), [rem('f', 'f')]);
    expect(p.files).toEqual([]);
    expect(kinds(p.attrs)).toEqual(['attrs f']);
  });

  it('with checksum, compares content instead of mtime; same content with a new mtime is an attribute change', () => {
    const tree = contents([src('same', 'f', { mtimeMs: T + 5000 }), src('differs', 'f'), src('resized', 'f', { size: 3 })]);
    const remote = [rem('same', 'f'), rem('differs', 'f'), rem('resized', 'f')];
    const asked: string[] = [];
    const p = plan(tree, remote, {
      sameContent: (s) => {
        asked.push(s.path);
        return s.path === 'same';
      },
    });
    expect(kinds(p.files)).toEqual(['update differs', 'update resized']);
    expect(kinds(p.attrs)).toEqual(['attrs same']);
    expect(asked).not.toContain('resized'); // a size difference decides without hashing
  });

  it('replaces a symlink whose target changed', () => {
    const p = plan(contents([src('l', 'l', { linkTarget: 'new' })]), [rem('l', 'l', { linkTarget: 'old' })]);
    expect(kinds(p.symlinks)).toEqual(['symlink l']);
    expect(p.symlinks[0].remote?.linkTarget).toBe('old');
  });

  it('deletes then creates an entry whose type changed, even without delete', () => {
    const p = plan(contents([src('was-dir', 'f'), src('was-file', 'd'), src('was-file/x', 'f'), src('was-link', 'f'), src('now-link', 'l')]), [
      rem('was-dir', 'd'),
      rem('was-dir/child', 'f'),
      rem('was-file', 'f'),
      rem('was-link', 'l'),
      rem('now-link', 'd'),
    ]);
    expect(kinds(p.deletes)).toEqual(['delete was-dir', 'delete was-file', 'delete was-link', 'delete now-link']);
    expect(kinds(p.files)).toEqual(['create was-dir', 'create was-file/x', 'create was-link']);
    expect(kinds(p.mkdirs)).toEqual(['mkdir was-file']);
    expect(kinds(p.symlinks)).toEqual(['symlink now-link']);
  });

  it('deletes only the topmost extraneous entry, with delete', () => {
    const remote = [rem('keep', 'f'), rem('old', 'd'), rem('old/a', 'f'), rem('old/b', 'd'), rem('old/b/c', 'f'), rem('x', 'l')];
    expect(plan(contents([src('keep', 'f')]), remote).deletes).toEqual([]);
    const p = plan(contents([src('keep', 'f')]), remote, { delete: true });
    expect(kinds(p.deletes)).toEqual(['delete old', 'delete x']);
    expect(kinds(p.dirAttrs)).toEqual(['attrs ']);
  });

  it('does not delete inside a directory that is deleted for a type change', () => {
    const p = plan(contents([src('d', 'f')]), [rem('d', 'd'), rem('d/a', 'f'), rem('d/b', 'd'), rem('d/b/c', 'f')], { delete: true });
    expect(kinds(p.deletes)).toEqual(['delete d']);
  });

  it('scopes delete to dir/ for a "dir" source and to the whole root for "dir/"', () => {
    const remote = [rem('other', 'f'), rem('dir', 'd'), rem('dir/extra', 'f'), rem('dir/keep', 'f'), rem('dir2', 'd'), rem('dir2/x', 'f')];
    const entries = [src('dir', 'd'), src('dir/keep', 'f')];
    expect(kinds(plan(itself(entries), remote, { delete: true }).deletes)).toEqual(['delete dir/extra']);
    const asContents = plan(contents([src('keep', 'f')]), [rem('keep', 'f'), rem('extra', 'f'), rem('sub', 'd'), rem('sub/x', 'f')], { delete: true });
    expect(kinds(asContents.deletes)).toEqual(['delete extra', 'delete sub']);
  });

  it('deletes nothing for a single-file source', () => {
    expect(plan(itself([src('file', 'f')]), [rem('file', 'f'), rem('other', 'f')], { delete: true }).deletes).toEqual([]);
  });

  it('never deletes excluded paths (nor what is under an excluded directory)', () => {
    const remote = [rem('a.log', 'f'), rem('sub', 'd'), rem('sub/b.log', 'f'), rem('cache', 'd'), rem('cache/x', 'f'), rem('gone', 'f')];
    const p = plan(contents([src('sub', 'd')]), remote, { delete: true }, [{ action: 'exclude', pattern: '*.log' }, { action: 'exclude', pattern: 'cache/' }]);
    expect(kinds(p.deletes)).toEqual(['delete gone']);
  });

  it('sets directory attributes deepest first, for directories whose contents or attributes change', () => {
    const tree = contents([
      src('a', 'd'),
      src('a/b', 'd'),
      src('a/b/c', 'd', { mode: 0o700 }),
      src('a/b/c/new', 'f'),
      src('a/b/d', 'd'),
      src('z', 'd', { mtimeMs: T + 2000 }),
      src('y', 'd'),
    ]);
    const remote = [rem('a', 'd'), rem('a/b', 'd'), rem('a/b/c', 'd'), rem('a/b/d', 'd'), rem('z', 'd'), rem('y', 'd')];
    const p = plan(tree, remote);
    const paths = p.dirAttrs.map((c) => c.path);
    expect(new Set(paths)).toEqual(new Set(['a/b/c', 'z']));
    const created = plan(tree, [], {});
    const depths = created.dirAttrs.map((c) => depth(c.path));
    expect(depths).toEqual([...depths].sort((x, y) => y - x));
    expect(created.dirAttrs.map((c) => c.path)).toEqual(expect.arrayContaining(['a/b/c', 'a/b/d', 'a/b', 'a', 'z', 'y', '']));
    expect(created.dirAttrs.at(-1)?.path).toBe('');
    expect(created.dirAttrs.at(-1)?.source).toBe(tree.root);
  });

  it('gives a "dir" source no root attributes', () => {
    const p = plan(itself([src('dir', 'd'), src('dir/f', 'f')]), []);
    expect(p.dirAttrs.map((c) => c.path)).toEqual(['dir']);
  });
});

describe('depth', () => {
  it('counts path components', () => {
    expect([depth(''), depth('a'), depth('a/b'), depth('a/b/c')]).toEqual([0, 1, 2, 3]);
  });
});

describe('comparePaths', () => {
  it('orders as a depth-first walk with sorted names: a directory, what it holds, then the names after it', () => {
    const paths = ['b', 'a-b', 'a/z', 'a', 'a/b/c', 'A', 'a/b', 'ab', 'a.txt'];
    // Sorting whole paths by code unit would put "a-b" and "a.txt" ('-' and '.' < '/') before "a/b".
    expect([...paths].sort(comparePaths)).toEqual(['A', 'a', 'a/b', 'a/b/c', 'a/z', 'a-b', 'a.txt', 'ab', 'b']);
    expect(comparePaths('x', 'x')).toBe(0);
  });
});

describe('limitDeletes (--max-delete)', () => {
  const tree = contents([src('keep', 'f'), src('turned', 'f')]);
  const remote = [
    rem('keep', 'f'),
    rem('turned', 'd'),
    rem('turned/in', 'f'),
    rem('z-old', 'f'),
    rem('old', 'd'),
    rem('old/a', 'f'),
    rem('old/b', 'd'),
    rem('old/b/c', 'f'),
    rem('m', 'l'),
  ];

  it('lists extraneous entries in comparePaths order whatever the listing order, after type changes', () => {
    const p = plan(tree, remote, { delete: true });
    expect(kinds(p.deletes)).toEqual(['delete turned', 'delete m', 'delete old', 'delete z-old']);
    expect(p.deletes.map((c) => c.extraneous ?? false)).toEqual([false, true, true, true]);
    expect(kinds(plan(tree, [...remote].reverse(), { delete: true }).deletes)).toEqual(kinds(p.deletes));
  });

  it('keeps the first `max` extraneous deletes (a directory and its contents are one) and every type change', () => {
    const { deletes } = plan(tree, remote, { delete: true });
    expect(limitDeletes(deletes, undefined)).toEqual({ deletes, skipped: 0 });
    const at = (max: number) => {
      const limited = limitDeletes(deletes, max);
      return [kinds(limited.deletes), limited.skipped];
    };
    expect(at(0)).toEqual([['delete turned'], 3]);
    expect(at(2)).toEqual([['delete turned', 'delete m', 'delete old'], 1]);
    expect(at(3)).toEqual([kinds(deletes), 0]);
    expect(at(100)).toEqual([kinds(deletes), 0]);
  });
});

describe('planChanges with a compared listing', () => {
  // The entries an agent holds unchanged come as bits (eight to a byte): a plan from the bits and the
  // rest must decide as a plan from the whole listing, whole bytes held or not, the last one partial.
  it('decides as the whole listing for any bitmap, counting held files and links, not directories', () => {
    const entries: SourceEntry[] = [];
    for (let d = 0; d < 9; d++) {
      entries.push(src(`d${d}`, 'd'));
      for (let f = 0; f < 10; f++) entries.push(src(`d${d}/f${f}`, f === 9 ? 'l' : 'f', { size: 10 + f }));
    }
    const tree = contents(entries);
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (const density of [0, 0.3, 0.9, 0.98, 1]) {
      const held = new Uint8Array(Math.ceil(entries.length / 8));
      entries.forEach((_, i) => {
        if (random() < density) held[i >> 3] |= 1 << (i & 7);
      });
      const isHeld = (i: number) => (held[i >> 3] & (1 << (i & 7))) !== 0;
      // Whole: every held entry listed as it is at the source; the others missing.
      const whole = entries.flatMap((e, i) => (isHeld(i) ? [rem(e.path, e.type, { size: e.size, linkTarget: e.linkTarget })] : []));
      const fromWhole = plan(tree, whole);
      const fromBits = plan(tree, [], { unchanged: held });
      expect({ ...fromBits, dirAttrs: kinds(fromBits.dirAttrs) }).toEqual({ ...fromWhole, dirAttrs: kinds(fromWhole.dirAttrs) });
      expect(fromBits.unchanged).toBe(entries.filter((e, i) => isHeld(i) && e.type !== 'd').length);
    }
  });
});

