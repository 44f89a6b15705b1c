/**
 * OpenSSH's host patterns (match.c): `*` matches any run of characters, `?` exactly one, a leading
 * `!` negates. Host names are compared case-insensitively, as OpenSSH lowercases both sides.
 */

/** True when `text` matches the single glob `pattern` (no negation). */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative glob with one backtrack point: linear in practice, no regex built from user text.
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = p++;
      starT = t;
    } else if (p < pattern.length && (c === '?' || c === text[t])) {
      p++;
      t++;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * Matches a list of patterns the way OpenSSH does for `Host` lines and known_hosts entries: any
 * matching negated pattern rejects the whole list; otherwise at least one positive pattern must match.
 */
export function matchHostPatterns(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase();
  let matched = false;
  for (const raw of patterns) {
    const pattern = raw.toLowerCase();
    if (pattern.startsWith('!')) {
      if (matchPattern(name, pattern.slice(1))) return false;
    } else if (matchPattern(name, pattern)) {
      matched = true;
    }
  }
  return matched;
}
