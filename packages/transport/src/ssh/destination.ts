/**
 * Destinations as users type them, with rsync's rule for telling remote from local: a colon before
 * any slash makes `host:path` remote (rsync main.c: check_for_hostspec), so `./a:b` and `/x/y:z` stay
 * local. `ssh://[user@]host[:port][/path]` is the URL form, the only one that can carry a port.
 */
import { PathError } from '../errors.js';

export type Destination =
  | { kind: 'local'; path: string }
  | { kind: 'ssh'; host: string; user?: string; port?: number; path: string };

/**
 * Parses `host:path`, `user@host:path`, `[::1]:path`, `user@[::1]:path`, `ssh://user@host:port/path`,
 * or a local path. An empty remote path means the remote home directory ('.').
 * In the URL form the path is absolute (`ssh://h/srv/site` is /srv/site); `ssh://h/~/site` is
 * relative to the home directory, as in git's ssh URLs.
 * Throws PathError('PATH_INVALID') for an empty spec, an empty or malformed host, or a bad port.
 */
export function parseDestination(spec: string): Destination {
  if (spec === '') throw new PathError('PATH_INVALID', 'empty destination', { spec });
  if (/^ssh:\/\//i.test(spec)) return parseSshUrl(spec);

  // `[v6addr]:path`, optionally after `user@`: the brackets hide the address's own colons.
  const bracketed = /^(?:([^@/]*)@)?\[([^\]/]*)\]:(.*)$/s.exec(spec);
  if (bracketed) {
    const [, user, host, path] = bracketed;
    return remote(spec, host, user, undefined, path);
  }

  const colon = spec.indexOf(':');
  const slash = spec.indexOf('/');
  if (colon <= 0 || (slash !== -1 && slash < colon)) return { kind: 'local', path: spec };
  if (spec[colon + 1] === ':') {
    throw new PathError('PATH_INVALID', `${spec}: host::module is rsync daemon syntax, which deltacast does not speak; use host:path`, { spec });
  }
  const hostPart = spec.slice(0, colon);
  const at = hostPart.lastIndexOf('@');
  const user = at === -1 ? undefined : hostPart.slice(0, at);
  const host = at === -1 ? hostPart : hostPart.slice(at + 1);
  return remote(spec, host, user, undefined, spec.slice(colon + 1));
}

/** `user@host:path` (or `ssh://...` when a port is set) for messages and logs. */
export function formatDestination(destination: Destination): string {
  if (destination.kind === 'local') return destination.path;
  const host = destination.host.includes(':') ? `[${destination.host}]` : destination.host;
  const user = destination.user === undefined ? '' : `${destination.user}@`;
  if (destination.port !== undefined) {
    const path = destination.path.startsWith('/') ? destination.path : `/~/${destination.path === '.' ? '' : destination.path}`;
    return `ssh://${user}${host}:${destination.port}${path}`;
  }
  return `${user}${host}:${destination.path}`;
}

function parseSshUrl(spec: string): Destination {
  const rest = spec.slice('ssh://'.length);
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  let path = slash === -1 ? '' : decode(spec, rest.slice(slash));
  if (path === '/~' || path.startsWith('/~/')) path = path.slice(3);

  const at = authority.lastIndexOf('@');
  const user = at === -1 ? undefined : decode(spec, authority.slice(0, at));
  const hostPort = at === -1 ? authority : authority.slice(at + 1);
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d*))?$/.exec(hostPort);
  if (!m) throw new PathError('PATH_INVALID', `${spec}: malformed host in ssh URL`, { spec });
  const host = m[1] ?? m[2];
  let port: number | undefined;
  if (m[3] !== undefined && m[3] !== '') {
    port = Number(m[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new PathError('PATH_INVALID', `${spec}: port ${m[3]} is not in 1..65535`, { spec, port: m[3] });
    }
  }
  return remote(spec, host, user, port, path);
}

function remote(spec: string, host: string, user: string | undefined, port: number | undefined, path: string): Destination {
  if (host === '') throw new PathError('PATH_INVALID', `${spec}: empty host name`, { spec });
  if (user === '') throw new PathError('PATH_INVALID', `${spec}: empty user name before @`, { spec });
  const d: Destination = { kind: 'ssh', host, path: path === '' ? '.' : path };
  if (user !== undefined) d.user = user;
  if (port !== undefined) d.port = port;
  return d;
}

function decode(spec: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new PathError('PATH_INVALID', `${spec}: bad percent-encoding in ssh URL`, { spec });
  }
}
