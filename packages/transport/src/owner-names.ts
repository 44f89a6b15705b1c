/**
 * User and group names and ids on this host. For --chown USER:GROUP and for --owner's mapping by
 * name (rsync's default, unless --numeric-ids), the agent resolves names where the files are, since
 * ids differ between hosts; the client names the ids its source tree uses. A name or id is looked up
 * in /etc/passwd or /etc/group, then through `getent` (which asks NSS: LDAP, sssd) where that exists,
 * once for all that the files lack.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export type OwnerDatabase = 'passwd' | 'group';

/** Where the user and group databases are read from (then `getent`). */
export interface OwnerDatabaseFiles {
  passwd: string;
  group: string;
}

export const SYSTEM_OWNER_FILES: OwnerDatabaseFiles = { passwd: '/etc/passwd', group: '/etc/group' };

/** The id of user (`passwd`) or group (`group`) `name` on this host, or undefined. A number is the id itself. */
export function resolveOwnerName(name: string, database: OwnerDatabase, files = SYSTEM_OWNER_FILES): number | undefined {
  if (/^\d+$/.test(name)) {
    const id = Number(name);
    return id <= 0xffffffff ? id : undefined;
  }
  return resolveOwnerNames([name], database, files).get(name);
}

/** The ids of `names` on this host (those it knows). */
export function resolveOwnerNames(names: readonly string[], database: OwnerDatabase, files = SYSTEM_OWNER_FILES): Map<string, number> {
  const wanted = new Set(names);
  const found = new Map<string, number>();
  const take = (text: string | undefined) => {
    for (const [id, name] of parseDatabase(text)) if (wanted.has(name) && !found.has(name)) found.set(name, id);
  };
  take(readText(files[database]));
  const missing = [...wanted].filter((n) => !found.has(n) && n !== '' && !n.startsWith('-'));
  if (missing.length > 0) take(getent(database, missing));
  return found;
}

/** The names of `ids` on this host (those that have one). */
export function ownerNamesOf(ids: Iterable<number>, database: OwnerDatabase, files = SYSTEM_OWNER_FILES): Map<number, string> {
  const wanted = new Set(ids);
  const found = new Map<number, string>();
  const take = (text: string | undefined) => {
    for (const [id, name] of parseDatabase(text)) if (wanted.has(id) && !found.has(id)) found.set(id, name);
  };
  take(readText(files[database]));
  const missing = [...wanted].filter((id) => !found.has(id));
  if (missing.length > 0) take(getent(database, missing.map(String)));
  return found;
}

/** [id, name] for each well-formed line of a passwd or group file (name, password, id, ...). */
function* parseDatabase(text: string | undefined): Generator<[number, string]> {
  if (!text) return;
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 3 && fields[0] !== '' && /^\d+$/.test(fields[2])) yield [Number(fields[2]), fields[0]];
  }
}

/** `getent DATABASE KEY...`: the lines of those it knows (exit 2 when some are unknown), or undefined. */
function getent(database: OwnerDatabase, keys: string[]): string | undefined {
  const run = spawnSync('getent', [database, ...keys], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 || run.status === 2 ? run.stdout : undefined;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
