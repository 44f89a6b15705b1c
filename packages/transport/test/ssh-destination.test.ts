import { describe, expect, it } from 'vitest';
import { PathError } from '../src/errors.js';
import { formatDestination, parseDestination, type Destination } from '../src/ssh/destination.js';

describe('parseDestination', () => {
  const table: [string, Destination][] = [
    ['web1:/srv/site', { kind: 'ssh', host: 'web1', path: '/srv/site' }],
    ['web1:site', { kind: 'ssh', host: 'web1', path: 'site' }],
    ['web1:', { kind: 'ssh', host: 'web1', path: '.' }],
    ['deploy@web1:/srv/site', { kind: 'ssh', host: 'web1', user: 'deploy', path: '/srv/site' }],
    ['a@b.example@web1:x', { kind: 'ssh', host: 'web1', user: 'a@b.example', path: 'x' }],
    ['web1:dir/with:colon', { kind: 'ssh', host: 'web1', path: 'dir/with:colon' }],
    ['[::1]:/srv', { kind: 'ssh', host: '::1', path: '/srv' }],
    ['root@[fe80::1%eth0]:', { kind: 'ssh', host: 'fe80::1%eth0', user: 'root', path: '.' }],
    ['ssh://web1/srv/site', { kind: 'ssh', host: 'web1', path: '/srv/site' }],
    ['ssh://deploy@web1:2222/srv/site', { kind: 'ssh', host: 'web1', user: 'deploy', port: 2222, path: '/srv/site' }],
    ['ssh://web1:2222', { kind: 'ssh', host: 'web1', port: 2222, path: '.' }],
    ['ssh://web1/~/site', { kind: 'ssh', host: 'web1', path: 'site' }],
    ['ssh://web1/~', { kind: 'ssh', host: 'web1', path: '.' }],
    ['ssh://[::1]:22/srv', { kind: 'ssh', host: '::1', port: 22, path: '/srv' }],
    ['ssh://web1/my%20site', { kind: 'ssh', host: 'web1', path: '/my site' }],
    ['./a:b', { kind: 'local', path: './a:b' }],
    ['/abs/x:y', { kind: 'local', path: '/abs/x:y' }],
    ['dir/a:b', { kind: 'local', path: 'dir/a:b' }],
    ['plain', { kind: 'local', path: 'plain' }],
    ['.', { kind: 'local', path: '.' }],
    [':leading-colon', { kind: 'local', path: ':leading-colon' }],
  ];
  it.each(table)('%s', (spec, expected) => {
    expect(parseDestination(spec)).toEqual(expected);
  });

  it.each([
    ['', 'empty destination'],
    ['@web1:x', 'empty user'],
    ['ssh://web1:0/x', 'not in 1..65535'],
    ['ssh://web1:70000/x', 'not in 1..65535'],
    ['ssh:///x', 'empty host'],
    ['ssh://[::1/x', 'malformed host'],
    ['web1::module', 'rsync daemon syntax'],
  ])('rejects %j', (spec, message) => {
    let caught: unknown;
    try {
      parseDestination(spec);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PathError);
    expect((caught as PathError).code).toBe('PATH_INVALID');
    expect((caught as PathError).message).toContain(message);
  });

  it.each(['web1:/srv/site', 'deploy@web1:site', 'ssh://deploy@web1:2222/srv', 'ssh://web1:2222/~/site', '[::1]:x', './a:b'])(
    'formatDestination round-trips %s',
    (spec) => {
      const parsed = parseDestination(spec);
      expect(parseDestination(formatDestination(parsed))).toEqual(parsed);
    },
  );
});
