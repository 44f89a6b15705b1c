/**
 * User and group names to ids on the destination's host, for --chown USER:GROUP: the agent resolves
 * them where the files are, since ids differ between hosts. A number is taken as the id itself. A
 * name is looked up in /etc/passwd or /etc/group, then through `getent` (which asks NSS: LDAP, sssd)
 * where that exists; undefined when neither knows it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The id of user (`passwd`) or group (`group`) `name` on this host, or undefined. */
export function resolveOwnerName(name: string, database: 'passwd' | 'group', files = { passwd: '/etc/passwd', group: '/etc/group' }): number | undefined {
  if (/^\d+$/.test(name)) {
    const id = Number(name);
    return id <= 0xffffffff ? id : undefined;
  }
  const fromFile = lookup(readText(files[database]), name);
  if (fromFile !== undefined) return fromFile;
  const run = spawnSync('getent', [database, name], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 ? lookup(run.stdout, name) : undefined;
}

/** The id (third field) of the line for `name` in passwd or group format. */
function lookup(text: string | undefined, name: string): number | undefined {
  if (!text) return undefined;
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3 && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  return undefined;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
