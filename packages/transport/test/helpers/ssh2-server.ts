/**
 * An in-process SSH server (ssh2) for tests: listens on 127.0.0.1 with a fresh ed25519 host key and
 * accepts public-key authentication with one fresh client key, whose private half is written to
 * `identityFile`. Exec requests are handed to `onExec` on an accepted channel.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { generateSshKeyPair } from '../../src/ssh/keys.js';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';

export interface Ssh2ServerOptions {
  /** Serves one exec request; the channel is already accepted. Without it, exec requests are refused. */
  onExec?: (command: string, channel: ServerChannel) => void;
}

export interface Ssh2Server {
  host: '127.0.0.1';
  port: number;
  /** The server's public host key in SSH wire format (ed25519, which ssh2 clients prefer). */
  hostKey: Buffer;
  /** Its second host key (ecdsa-sha2-nistp256), for tests of host key type preference. */
  ecdsaHostKey: Buffer;
  /** `[127.0.0.1]:port ssh-ed25519 AAAA...`, a known_hosts line for this server. */
  hostKeyLine: string;
  /** Private key the server accepts (OpenSSH format, mode 600). */
  identityFile: string;
  /** A path in the server's temp dir for a known_hosts file; it does not exist until a test writes it. */
  knownHostsFile: string;
  /** The temp dir holding these files. */
  dir: string;
  /** Commands received by exec requests, in order. */
  commands: string[];
  /** Public keys (base64 wire blobs) offered for authentication, in order, each once per connection attempt. */
  offeredKeys: string[];
  close(): Promise<void>;
}

export async function startSsh2Server(options: Ssh2ServerOptions = {}): Promise<Ssh2Server> {
  const dir = mkdtempSync(join(tmpdir(), 'deltacast-ssh2-'));
  const hostPair = generateSshKeyPair('ed25519');
  const ecdsaPair = generateSshKeyPair('ecdsa', { bits: 256 });
  const clientPair = generateSshKeyPair('ed25519');
  const identityFile = join(dir, 'id_ed25519');
  writeFileSync(identityFile, clientPair.private, { mode: 0o600 });
  const allowed = parsed(clientPair.public);
  const hostKey = parsed(hostPair.public).getPublicSSH();
  const ecdsaHostKey = parsed(ecdsaPair.public).getPublicSSH();

  const commands: string[] = [];
  const offeredKeys: string[] = [];
  const connections = new Set<Connection>();
  const server = new ssh2.Server({ hostKeys: [hostPair.private, ecdsaPair.private] }, (connection) => {
    connections.add(connection);
    connection.on('close', () => connections.delete(connection));
    connection.on('error', () => {}); // clients that refuse our host key hang up mid-handshake
    connection.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && !ctx.signature) offeredKeys.push(ctx.key.data.toString('base64'));
      if (ctx.method !== 'publickey' || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) {
        return ctx.reject(['publickey']);
      }
      // Without a signature the client is only asking whether this key would do.
      if (ctx.signature && !allowed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
      ctx.accept();
    });
    connection.on('ready', () => {
      connection.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, reject, info) => {
          commands.push(info.command);
          if (!options.onExec) return reject();
          options.onExec(info.command, accept());
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    hostKey,
    ecdsaHostKey,
    hostKeyLine: `[127.0.0.1]:${port} ssh-ed25519 ${hostKey.toString('base64')}`,
    identityFile,
    knownHostsFile: join(dir, 'known_hosts'),
    dir,
    commands,
    offeredKeys,
    close: async () => {
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function parsed(publicKey: string) {
  const key = ssh2.utils.parseKey(publicKey);
  if (key instanceof Error) throw key;
  return Array.isArray(key) ? key[0] : key;
}
