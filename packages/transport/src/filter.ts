/**
 * --exclude / --include with gitignore-style patterns (the `ignore` package: `*.log`, `build/`,
 * `/top-only`, `**\/tmp`, negation). Rules apply in the order given and, as in rsync, the first rule
 * that matches a path decides; gitignore decides by the last match, so each run of rules is handed
 * over reversed.
 *
 * A `dir-merge` rule (rsync's `--filter=': FILE'`, `':- .gitignore'`) names a file that any
 * directory of the source may hold: its patterns apply, in the rule's place in the order, to what
 * lies under that directory, relative to it (so `/build` in `site/.gitignore` means `site/build`),
 * a deeper directory's file before a shallower one's, and within one file as git reads it (the last
 * match decides, `!` re-includes). The scan reads each directory's file as it enters it
 * (`enterDirectory`); a path is judged by the files of the directories entered above it.
 */
import ignore, { type Ignore } from 'ignore';
import { readFileSync } from 'node:fs';

export interface FilterRule {
  action: 'exclude' | 'include' | 'dir-merge';
  /** The pattern; for dir-merge, the name of the per-directory file. */
  pattern: string;
  /**
   * dir-merge only: '-' reads every line of the files as an exclude pattern (git's own syntax, `!`
   * included), '+' as an include pattern; none reads rsync's `- ` / `+ ` prefixes (as --exclude-from).
   */
  modifier?: '-' | '+';
}

/** One run of plain rules, or the slot of a dir-merge rule. */
type Segment = { kind: 'rules'; matcher: Ignore } | { kind: 'dir-merge'; rule: FilterRule; index: number };

/** Reads a per-directory file: its text, or undefined when the directory has none. */
export type MergeFileReader = (localPath: string) => string | undefined;

export class PathFilter {
  private readonly segments: Segment[] = [];
  /** Per dir-merge rule (by its index), the directories (wire paths) entered that hold its file, and their matchers. */
  private readonly merged: Map<string, Ignore>[] = [];

  constructor(rules: FilterRule[]) {
    let run: FilterRule[] = [];
    const close = () => {
      if (run.length > 0) this.segments.push({ kind: 'rules', matcher: matcherOf(run) });
      run = [];
    };
    for (const rule of rules) {
      if (rule.action !== 'dir-merge') {
        if (rule.pattern.trim() !== '') run.push(rule);
        continue;
      }
      close();
      this.segments.push({ kind: 'dir-merge', rule, index: this.merged.length });
      this.merged.push(new Map());
    }
    close();
  }

  /** Whether any dir-merge rule is among the rules (the scan then reads each directory's files). */
  get mergesPerDirectory(): boolean {
    return this.merged.length > 0;
  }

  /**
   * The scan entered the directory at wire path `wire` (local path `local`): reads its per-directory
   * files, whose rules then apply under it (forgetting what an earlier scan read there). A file
   * that cannot be read as text counts as absent.
   */
  enterDirectory(wire: string, local: string, read: MergeFileReader = readIfFile): void {
    for (const segment of this.segments) {
      if (segment.kind !== 'dir-merge') continue;
      const text = read(`${local.endsWith('/') ? local : `${local}/`}${segment.rule.pattern}`);
      const map = this.merged[segment.index];
      if (text === undefined) {
        map.delete(wire);
        continue;
      }
      // With '-' or '+', git's own syntax: a line is a pattern, `!` and all, and the last match decides.
      const modifier = segment.rule.modifier;
      map.set(wire, modifier ? ignore({ allowRelativePaths: true }).add(modifier === '+' ? linesOf(text).map((line) => `!${line}`) : linesOf(text)) : matcherOf(parseFilterFile(text)));
    }
  }

  /** True when a (wire) path is excluded; directories are tested with a trailing slash. */
  excludes(path: string, isDirectory: boolean): boolean {
    if (this.segments.length === 0 || path === '') return false;
    const tested = isDirectory ? `${path}/` : path;
    for (const segment of this.segments) {
      if (segment.kind === 'rules') {
        const r = segment.matcher.test(tested);
        if (r.ignored) return true;
        if (r.unignored) return false;
        continue;
      }
      const map = this.merged[segment.index];
      if (map.size === 0) continue;
      // The deepest directory above the path first; the root's ('') last.
      for (let end = path.lastIndexOf('/'); ; end = path.lastIndexOf('/', end - 1)) {
        const dir = end < 0 ? '' : path.slice(0, end);
        const matcher = map.get(dir);
        if (matcher) {
          const r = matcher.test(dir === '' ? tested : tested.slice(dir.length + 1));
          if (r.ignored) return true;
          if (r.unignored) return false;
        }
        if (end < 0) break;
      }
    }
    return false;
  }
}

/** A matcher for plain rules in rsync's order (first match decides): gitignore's lines, reversed. */
function matcherOf(rules: FilterRule[]): Ignore {
  const lines: string[] = [];
  for (const rule of [...rules].reverse()) {
    const p = rule.pattern.trim();
    if (p === '') continue;
    // A leading '!' or '#' is part of the name, as rsync reads it; gitignore would take it as
    // negation or a comment, so it is escaped.
    const literal = /^[!#]/.test(p) ? `\\${p}` : p;
    lines.push(rule.action === 'include' ? `!${literal}` : literal);
  }
  return ignore({ allowRelativePaths: true }).add(lines);
}

function linesOf(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('#'));
}

function readIfFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Rules from an --exclude-from file: one pattern a line, '#' comments; '+ ' and '- ' prefixes as rsync. */
export function parseFilterFile(text: string): FilterRule[] {
  const rules: FilterRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('+ ')) rules.push({ action: 'include', pattern: line.slice(2) });
    else if (line.startsWith('- ')) rules.push({ action: 'exclude', pattern: line.slice(2) });
    else rules.push({ action: 'exclude', pattern: line });
  }
  return rules;
}

/**
 * One --filter rule in rsync's syntax: `- PATTERN`, `+ PATTERN`, `exclude PATTERN`,
 * `include PATTERN`, `: FILE` or `dir-merge FILE` (with `-` or `+` after the rule, as `:- .gitignore`
 * or `dir-merge,- .gitignore`). Merge (`. FILE`) reads a file's rules at once. Throws for anything
 * else, saying what it takes.
 */
export function parseFilterRule(text: string, readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')): FilterRule[] {
  const m = /^(\+|-|:|\.|exclude|include|dir-merge|merge)(?:,?([-+]))?(?: |_)(.+)$/.exec(text.trim());
  if (!m) throw new Error(`filter rule ${JSON.stringify(text)}: expected "- PATTERN", "+ PATTERN", ": FILE" (dir-merge, e.g. ":- .gitignore") or ". FILE" (merge)`);
  const [, rule, modifier, arg] = m;
  switch (rule) {
    case '-':
    case 'exclude':
      return [{ action: 'exclude', pattern: arg }];
    case '+':
    case 'include':
      return [{ action: 'include', pattern: arg }];
    case ':':
    case 'dir-merge':
      if (arg.includes('/')) throw new Error(`filter rule ${JSON.stringify(text)}: a per-directory file is a name, without "/"`);
      return [{ action: 'dir-merge', pattern: arg, ...(modifier ? { modifier: modifier as '-' | '+' } : {}) }];
    default: {
      const content = readFile(arg);
      if (!modifier) return parseFilterFile(content);
      return linesOf(content).map((pattern) => ({ action: modifier === '+' ? 'include' : 'exclude', pattern }));
    }
  }
}

