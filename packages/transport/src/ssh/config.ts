/**
 * The part of OpenSSH's client configuration (ssh_config(5)) that deltacast needs: HostName, User,
 * Port, IdentityFile, UserKnownHostsFile, IdentityAgent, ProxyJump, ProxyCommand, StrictHostKeyChecking,
 * ConnectTimeout, ServerAliveInterval and ServerAliveCountMax for one host. The file is parsed by the
 * ssh-config package; which blocks apply is decided here, the way OpenSSH's readconf.c decides it,
 * because matching is where compatibility matters (`?` is exactly one character, a negated pattern
 * vetoes the block, names are case-insensitive, the first value obtained wins).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname as localHostName, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parse, type Line } from 'ssh-config';
import { ConnectError } from '../errors.js';
import { matchHostPatterns, matchPattern } from './pattern.js';

export interface SshConfigOptions {
  /** A config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config (ssh -F); 'none' reads nothing. */
  configFile?: string;
  /** The user given on the command line; it wins over User and is what %r expands to. */
  user?: string;
  /** The port given on the command line; it wins over Port and is what %p expands to. */
  port?: number;
  /** Home directory for `~` and %d (default: os.homedir()). */
  home?: string;
  /** System-wide file read after the user's when configFile is not set (default /etc/ssh/ssh_config). */
  systemConfigFile?: string;
}

export interface SshHostConfig {
  /** The name or address to connect to (HostName with %h expanded, else the host itself). */
  hostName: string;
  user?: string;
  port?: number;
  /** IdentityFile values in order, with `~` and tokens expanded; empty if none were set. */
  identityFiles: string[];
  /** UserKnownHostsFile values, expanded; empty if not set. */
  userKnownHostsFiles: string[];
  /** IdentityAgent: a socket path, 'none', or undefined when not set. */
  identityAgent?: string;
  /**
   * ProxyJump as written: jump hosts, `[user@]host[:port]` or `ssh://[user@]host[:port]`,
   * comma-separated (proxy.ts parses them). Unset when absent, 'none', or after a ProxyCommand.
   */
  proxyJump?: string;
  /**
   * ProxyCommand with its tokens (%h %p %r %n %%) expanded, quoting as written. Unset when
   * absent, 'none', or after a ProxyJump.
   */
  proxyCommand?: string;
  /**
   * StrictHostKeyChecking, lower-cased: 'yes', 'ask' and 'no' as written, 'off' as 'no', 'accept-new'.
   * Unset when absent.
   */
  strictHostKeyChecking?: 'yes' | 'ask' | 'no' | 'accept-new';
  /** ConnectTimeout in milliseconds (0 for `none` or 0: no limit). Unset when absent. */
  connectTimeoutMs?: number;
  /** ServerAliveInterval in milliseconds (0: no keepalives). Unset when absent. */
  serverAliveIntervalMs?: number;
  /** ServerAliveCountMax. Unset when absent. */
  serverAliveCountMax?: number;
}

/** Include nesting limit, as in OpenSSH (READCONF_MAX_DEPTH). */
const MAX_INCLUDE_DEPTH = 16;

interface Settings {
  [keyword: string]: string[] | undefined;
}

interface Context {
  originalHost: string;
  /** HostName so far: Match host compares against it. */
  host: string;
  user: string | undefined;
  localUser: string;
  home: string;
  /** Directory relative Include paths are resolved against (~/.ssh for user files). */
  includeBase: string;
  settings: Settings;
}

/** Keywords that accumulate instead of first-value-wins. */
const REPEATABLE = new Set(['identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward', 'sendenv', 'setenv']);

/**
 * Resolves the effective settings for `host`. A missing default file means defaults; a missing
 * `configFile` is an error, as with `ssh -F`. Match blocks support all, host, originalhost, user
 * and localuser (optionally negated); `exec`, `canonical`, `final`, `localnetwork` and `tagged`
 * never match here, so no command from a config file is ever run.
 */
export function resolveSshConfig(host: string, options: SshConfigOptions = {}): SshHostConfig {
  const home = options.home ?? homedir();
  const localUser = safeUserName();
  const ctx: Context = {
    originalHost: host,
    host,
    user: options.user,
    localUser,
    home,
    includeBase: join(home, '.ssh'),
    settings: {},
  };
  if (options.configFile !== undefined) {
    if (options.configFile !== 'none') {
      const file = expandTilde(options.configFile, home);
      const text = readConfig(file, true);
      evaluate(parse(text ?? ''), ctx, true, false, 0, file);
    }
  } else {
    const user = join(home, '.ssh', 'config');
    const text = readConfig(user, false);
    if (text !== undefined) evaluate(parse(text), ctx, true, false, 0, user);
    const system = options.systemConfigFile ?? '/etc/ssh/ssh_config';
    const systemText = readConfig(system, false);
    if (systemText !== undefined) {
      evaluate(parse(systemText), { ...ctx, includeBase: '/etc/ssh' }, true, false, 0, system);
    }
  }

  const s = ctx.settings;
  const hostName = s.hostname ? expandTokens(s.hostname[0], { h: host, '%': '%' }, 'HostName') : host;
  const user = options.user ?? s.user?.[0];
  let port = options.port;
  if (port === undefined && s.port) port = parsePort(s.port[0]);
  const tokens: Record<string, string> = {
    '%': '%',
    h: hostName,
    n: host,
    p: String(port ?? 22),
    r: user ?? localUser,
    u: localUser,
    d: home,
    l: shortHostName(),
    L: shortHostName(),
  };
  const paths = (values: string[] | undefined, keyword: string) =>
    (values ?? []).filter((v) => v.toLowerCase() !== 'none').map((v) => expandTilde(expandTokens(v, tokens, keyword), home));

  const result: SshHostConfig = {
    hostName,
    identityFiles: paths(s.identityfile, 'IdentityFile'),
    userKnownHostsFiles: s.userknownhostsfile ? paths(s.userknownhostsfile, 'UserKnownHostsFile') : [],
  };
  if (user !== undefined) result.user = user;
  if (port !== undefined) result.port = port;
  if (s.identityagent) {
    const agent = s.identityagent[0];
    result.identityAgent = agent === 'none' || agent === 'SSH_AUTH_SOCK' ? agent : expandTilde(expandTokens(agent, tokens, 'IdentityAgent'), home);
  }
  const jump = s.proxyjump?.join(',');
  if (jump !== undefined && jump.toLowerCase() !== 'none') result.proxyJump = jump;
  const command = s.proxycommand?.[0];
  if (command !== undefined && command.toLowerCase() !== 'none') {
    // ssh_config(5): ProxyCommand accepts %%, %h, %n, %p and %r.
    const { '%': pct, h, n, p, r } = tokens;
    result.proxyCommand = expandTokens(command, { '%': pct, h, n, p, r }, 'ProxyCommand');
  }
  if (s.stricthostkeychecking) result.strictHostKeyChecking = parseStrictHostKeyChecking(s.stricthostkeychecking[0]);
  if (s.connecttimeout) {
    const text = s.connecttimeout[0];
    result.connectTimeoutMs = text.toLowerCase() === 'none' ? 0 : parseTime(text, 'ConnectTimeout') * 1000;
  }
  if (s.serveraliveinterval) result.serverAliveIntervalMs = parseTime(s.serveraliveinterval[0], 'ServerAliveInterval') * 1000;
  if (s.serveralivecountmax) result.serverAliveCountMax = parseCount(s.serveralivecountmax[0], 'ServerAliveCountMax');
  return result;
}

/** StrictHostKeyChecking's values as OpenSSH's readconf.c takes them (true/false, off too). */
function parseStrictHostKeyChecking(text: string): 'yes' | 'ask' | 'no' | 'accept-new' {
  const value = text.toLowerCase();
  if (value === 'yes' || value === 'true') return 'yes';
  if (value === 'no' || value === 'false' || value === 'off') return 'no';
  if (value === 'ask' || value === 'accept-new') return value;
  throw new ConnectError('CONFIG', `StrictHostKeyChecking ${text} in ssh config: expected yes, accept-new, no, off or ask`, { keyword: 'StrictHostKeyChecking', value: text });
}

const TIME_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * A time as sshd_config(5) TIME FORMATS writes it, in seconds: `90`, `90s`, `1m30s`, `1h` (units
 * s, m, h, d, w, either case).
 */
export function parseTime(text: string, keyword: string): number {
  const parts = text.match(/\d+[smhdw]?/gi) ?? [];
  if (text === '' || parts.join('') !== text) throw new ConnectError('CONFIG', `${keyword} ${text} in ssh config is not a time (seconds, or as 1m30s)`, { keyword, value: text });
  let seconds = 0;
  for (const part of parts) {
    const unit = /[a-z]$/i.test(part) ? part.slice(-1).toLowerCase() : '';
    seconds += Number(unit ? part.slice(0, -1) : part) * TIME_UNITS[unit];
  }
  if (!Number.isSafeInteger(seconds) || seconds > 2_147_483) {
    throw new ConnectError('CONFIG', `${keyword} ${text} in ssh config is too long`, { keyword, value: text });
  }
  return seconds;
}

function parseCount(text: string, keyword: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > 1_000_000) throw new ConnectError('CONFIG', `${keyword} ${text} in ssh config is not a whole number`, { keyword, value: text });
  return value;
}

function evaluate(lines: readonly Line[], ctx: Context, active: boolean, neverMatch: boolean, depth: number, file: string): void {
  for (const line of lines) {
    if (line.type !== 1) continue; // comments and blank lines
    const keyword = line.param.toLowerCase();
    // ProxyCommand is the rest of the line, given to a shell as it stands (quotes included).
    const values = keyword === 'proxycommand' ? [commandLine(line.value)].filter((v) => v !== '') : valueList(line.value);
    if (keyword === 'host' || keyword === 'match') {
      const blockActive = !neverMatch && (keyword === 'host' ? matchHostPatterns(ctx.originalHost, values) : matchCriteria(values, ctx, file));
      evaluate((line as { config?: Line[] }).config ?? [], ctx, blockActive, neverMatch, depth, file);
    } else if (keyword === 'include') {
      if (depth >= MAX_INCLUDE_DEPTH) {
        throw new ConnectError('CONFIG', `${file}: Include nested more than ${MAX_INCLUDE_DEPTH} deep`, { file });
      }
      for (const pattern of values) {
        for (const included of expandInclude(pattern, ctx)) {
          const text = readConfig(included, false);
          // OpenSSH: an Include inside a block that does not apply never activates blocks in the included file.
          if (text !== undefined) evaluate(parse(text), ctx, active, neverMatch || !active, depth + 1, included);
        }
      }
    } else if (active && values.length > 0) {
      set(ctx, keyword, values);
    }
  }
}

function set(ctx: Context, keyword: string, values: string[]): void {
  const s = ctx.settings;
  if (REPEATABLE.has(keyword)) {
    (s[keyword] ??= []).push(...(keyword === 'identityfile' ? [values.join(' ')] : values));
    return;
  }
  if (s[keyword] !== undefined) return; // first value obtained wins
  // ProxyJump and ProxyCommand are one setting in OpenSSH (readconf.c): the first of either wins.
  if ((keyword === 'proxyjump' && s.proxycommand) || (keyword === 'proxycommand' && s.proxyjump)) return;
  s[keyword] = values;
  if (keyword === 'hostname') ctx.host = expandTokens(values[0], { h: ctx.originalHost, '%': '%' }, 'HostName');
  if (keyword === 'user' && ctx.user === undefined) ctx.user = values[0];
}

function matchCriteria(words: string[], ctx: Context, file: string): boolean {
  if (words.length === 0) throw new ConnectError('CONFIG', `${file}: Match needs criteria`, { file });
  let i = 0;
  let result = true;
  while (i < words.length) {
    let keyword = words[i++].toLowerCase();
    const negate = keyword.startsWith('!');
    if (negate) keyword = keyword.slice(1);
    let matched: boolean;
    if (keyword === 'all' || keyword === 'canonical' || keyword === 'final') {
      // Without canonicalisation there is no second pass; `canonical`/`final` blocks do not apply.
      matched = keyword === 'all';
    } else {
      const arg = words[i++];
      if (arg === undefined) throw new ConnectError('CONFIG', `${file}: Match ${keyword} needs an argument`, { file });
      const patterns = arg.split(',');
      switch (keyword) {
        case 'host':
          matched = matchHostPatterns(ctx.host, patterns);
          break;
        case 'originalhost':
          matched = matchHostPatterns(ctx.originalHost, patterns);
          break;
        case 'user':
          matched = matchList(ctx.user ?? ctx.localUser, patterns);
          break;
        case 'localuser':
          matched = matchList(ctx.localUser, patterns);
          break;
        case 'exec':
        case 'localnetwork':
        case 'tagged':
          matched = false;
          break;
        default:
          throw new ConnectError('CONFIG', `${file}: unsupported Match criterion "${keyword}"`, { file, keyword });
      }
    }
    if (matched === negate) result = false;
  }
  return result;
}

/** User names match case-sensitively, unlike host names. */
function matchList(text: string, patterns: string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matchPattern(text, p.slice(1))) return false;
    } else if (matchPattern(text, p)) {
      matched = true;
    }
  }
  return matched;
}

function expandInclude(pattern: string, ctx: Context): string[] {
  let path = expandTilde(pattern, ctx.home);
  if (!isAbsolute(path)) path = join(ctx.includeBase, path);
  const dir = dirname(path);
  const name = basename(path);
  if (!/[*?]/.test(name)) return [path];
  // Wildcards are honoured in the last path component, which covers `Include config.d/*`.
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.filter((e) => !e.startsWith('.') && matchPattern(e, name)).sort().map((e) => join(dir, e));
}

function readConfig(file: string, required: boolean): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!required && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
    throw new ConnectError('CONFIG', `cannot read ssh config ${file}: ${(error as Error).message}`, { file, cause: code ?? '' });
  }
}

/**
 * A ProxyCommand's text as the line had it: the parser splits it into words and drops the double
 * quotes around a quoted one, which are put back (a shell runs the command).
 */
function commandLine(value: string | { val: string; separator?: string; quoted?: boolean }[]): string {
  if (typeof value === 'string') return value;
  return value
    .map((w) => (w.quoted ? `"${w.val}"` : w.val) + (w.separator ?? ' '))
    .join('')
    .trim();
}

function valueList(value: string | { val: string }[]): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  return value.map((v) => v.val);
}

/** `%x` tokens as ssh_config(5) TOKENS; an unknown token is an error, as in OpenSSH. */
function expandTokens(text: string, tokens: Record<string, string>, keyword: string): string {
  return text.replace(/%(.?)/g, (whole, key: string) => {
    const value = tokens[key];
    if (value === undefined) {
      throw new ConnectError('CONFIG', `${keyword} ${text}: unknown or unsupported token ${whole}`, { keyword, token: whole });
    }
    return value;
  });
}

function expandTilde(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new ConnectError('CONFIG', `Port ${text} in ssh config is not in 1..65535`, { port: text });
  }
  return port;
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? '';
  }
}

function shortHostName(): string {
  return localHostName().split('.')[0];
}
