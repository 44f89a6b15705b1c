/**
 * --exclude / --include with gitignore-style patterns (the `ignore` package: `*.log`, `build/`,
 * `/top-only`, `**\/tmp`, negation). Rules apply in the order given and, as in rsync, the first rule
 * that matches a path decides; gitignore decides by the last match, so the list is handed over reversed.
 */
import ignore, { type Ignore } from 'ignore';

export interface FilterRule {
  action: 'exclude' | 'include';
  pattern: string;
}

export class PathFilter {
  private readonly matcher: Ignore | undefined;

  constructor(rules: FilterRule[]) {
    if (rules.length === 0) return;
    const lines: string[] = [];
    for (const rule of [...rules].reverse()) {
      const p = rule.pattern.trim();
      if (p === '') continue;
      // A leading '!' or '#' is part of the name, as rsync reads it; gitignore would take it as
      // negation or a comment, so it is escaped.
      const literal = /^[!#]/.test(p) ? `\\${p}` : p;
      lines.push(rule.action === 'include' ? `!${literal}` : literal);
    }
    this.matcher = ignore({ allowRelativePaths: true }).add(lines);
  }

  /** True when a (wire) path is excluded; directories are tested with a trailing slash. */
  excludes(path: string, isDirectory: boolean): boolean {
    if (!this.matcher || path === '') return false;
    return this.matcher.ignores(isDirectory ? `${path}/` : path);
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
