/**
 * known_hosts files as OpenSSH reads and writes them (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT";
 * hostfile.c). A line is `[marker] hostpatterns keytype base64-key [comment]`; host patterns are a
 * comma list with wildcards and negation, `[host]:port` for ports other than 22, or one hashed
 * name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. `@revoked` lines name keys that must never
 * be accepted; `@cert-authority` lines are for certificates, which deltacast does not use.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { matchHostPatterns } from './pattern.js';

export type HostKeyStatus = 'known' | 'unknown' | 'mismatch';

export interface HostKeyQuery {
  host: string;
  /** Default 22. Other ports are looked up as `[host]:port`, as OpenSSH does. */
  port?: number;
  /** The server's public key in SSH wire format (string type, then the key fields). */
  key: Uint8Array;
  files: readonly string[];
}

export interface KnownHostEntry {
  marker: 'revoked' | undefined;
  keyType: string;
  key: Buffer;
  file: string;
  line: number;
}

/** The name a host is filed under: `host` on port 22, else `[host]:port`; lowercased like OpenSSH. */
export function knownHostName(host: string, port = 22): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** Entries that apply to `host`/`port` in the given files, in file order. Missing files are skipped. */
export async function lookupHostKeys(host: string, port: number | undefined, files: readonly string[]): Promise<KnownHostEntry[]> {
  const name = knownHostName(host, port);
  const found: KnownHostEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const entry = parseLine(lines[i]);
      if (entry && hostMatches(name, entry.hosts)) {
        found.push({ marker: entry.marker, keyType: entry.keyType, key: entry.key, file, line: i + 1 });
      }
    }
  }
  return found;
}

/**
 * 'known' when a non-revoked entry for the host holds exactly this key; 'mismatch' when the key is
 * revoked or the host has entries but none with this key (of any type: deltacast prefers the known
 * key types during key exchange, so another type showing up is treated as a change); else 'unknown'.
 */
export async function checkHostKey(query: HostKeyQuery): Promise<HostKeyStatus> {
  const key = Buffer.from(query.key);
  const entries = await lookupHostKeys(query.host, query.port, query.files);
  if (entries.some((e) => e.marker === 'revoked' && e.key.equals(key))) return 'mismatch';
  const keys = entries.filter((e) => e.marker === undefined);
  if (keys.some((e) => e.key.equals(key))) return 'known';
  return keys.length > 0 ? 'mismatch' : 'unknown';
}

/**
 * Appends the key for `host`/`port` to `file` as a hashed entry, like `ssh-keygen -H` writes it.
 * Creates the directory (mode 700) and the file (mode 600) when they are missing.
 */
export async function addHostKey(file: string, host: string, port: number | undefined, key: Uint8Array): Promise<void> {
  const blob = Buffer.from(key);
  const keyType = keyTypeOf(blob);
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(knownHostName(host, port)).digest();
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const info = await stat(file);
    if (info.size > 0) {
      const text = await readFile(file);
      if (text[text.length - 1] !== 0x0a) prefix = '\n';
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const line = `${prefix}|1|${salt.toString('base64')}|${hash.toString('base64')} ${keyType} ${blob.toString('base64')}\n`;
  await appendFile(file, line, { mode: 0o600 });
}

/** The key type string at the start of an SSH wire key blob (e.g. 'ssh-ed25519'). */
export function keyTypeOf(blob: Uint8Array): string {
  if (blob.length < 4) throw new Error('host key blob is shorter than its type length');
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.getUint32(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) throw new Error(`host key blob has a bad type length ${length}`);
  return Buffer.from(blob.subarray(4, 4 + length)).toString('latin1');
}

interface ParsedLine {
  marker: 'revoked' | undefined;
  hosts: string;
  keyType: string;
  key: Buffer;
}

function parseLine(raw: string): ParsedLine | undefined {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return undefined;
  const fields = line.split(/\s+/);
  let marker: 'revoked' | undefined;
  if (fields[0].startsWith('@')) {
    if (fields[0] !== '@revoked') return undefined; // @cert-authority and unknown markers
    marker = 'revoked';
    fields.shift();
  }
  if (fields.length < 3) return undefined;
  const [hosts, keyType, b64] = fields;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const key = Buffer.from(b64, 'base64');
  // The blob names its own type; a line whose type field disagrees is malformed, so ignore it.
  try {
    if (keyTypeOf(key) !== keyType) return undefined;
  } catch {
    return undefined;
  }
  return { marker, hosts, keyType, key };
}

function hostMatches(name: string, hosts: string): boolean {
  if (hosts.startsWith('|1|')) {
    const parts = hosts.split('|');
    if (parts.length !== 4) return false;
    const salt = Buffer.from(parts[2], 'base64');
    const expected = Buffer.from(parts[3], 'base64');
    const actual = createHmac('sha1', salt).update(name).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  return matchHostPatterns(name, hosts.split(','));
}
