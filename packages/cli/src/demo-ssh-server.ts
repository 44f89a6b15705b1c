/**
 * An SSH server in this process, on 127.0.0.1, for the demo: it accepts one generated client key and
 * serves the deltacast agent on every exec channel. The client side still does everything a real
 * sync does: it verifies the host key against a known_hosts file and authenticates with a key.
 */
import { generateSshKeyPair, serveAgent } from '@deltacast/transport';
import { timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const { Server, utils } = ssh2;

export interface DemoSshServer {
  port: number;
  identityFile: string;
  knownHostsFile: string;
  close(): Promise<void>;
}

/** Starts the server; keys and known_hosts are written into `dir`. */
export async function startDemoSshServer(dir: string): Promise<DemoSshServer> {
  const hostKey = generateSshKeyPair('ed25519');
  const clientKey = generateSshKeyPair('ed25519');
  const clientPublic = utils.parseKey(clientKey.public);
  if (clientPublic instanceof Error) throw clientPublic;
  const identityFile = join(dir, 'id_ed25519');
  await writeFile(identityFile, clientKey.private, { mode: 0o600 });

  const server = new Server({ hostKeys: [hostKey.private] }, (connection) => {
    (connection as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    connection.on('authentication', (ctx) => {
      const key = ctx.method === 'publickey' ? ctx.key : undefined;
      const matches =
        key !== undefined &&
        key.algo === clientPublic.type &&
        key.data.length === clientPublic.getPublicSSH().length &&
        timingSafeEqual(key.data, clientPublic.getPublicSSH());
      if (!matches || ctx.method !== 'publickey') return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob && !clientPublic.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
      ctx.accept();
    });
    connection.on('ready', () => {
      connection.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec) => {
          const channel = acceptExec();
          serveAgent({ readable: channel, writable: channel }).then(
            () => {
              channel.exit(0);
              channel.end();
            },
            () => {
              channel.exit(1);
              channel.end();
            },
          );
        });
      });
    });
    connection.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const [type, data] = hostKey.public.trim().split(/\s+/);
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${type} ${data}\n`);
  return {
    port,
    identityFile,
    knownHostsFile,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
