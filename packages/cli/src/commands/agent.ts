/** `deltacast agent`: the destination side of `sync`, speaking the wire protocol on stdin/stdout. */
import { releaseStdio, serveAgent } from '@deltacast/transport';
import { Command } from 'commander';
import type { MainIO } from '../io.js';

export function agentCommand(io: MainIO, version: string): Command {
  return new Command('agent')
    .summary('serve a destination for sync (run by sync itself, locally or over ssh)')
    .description(
      'Speak the deltacast protocol on stdin/stdout, serving the destination root the client names. ' +
        'With --root, refuse roots outside DIR (e.g. in an authorized_keys command=).',
    )
    .option('--root <dir>', 'only serve roots inside this directory')
    .action(async (opts: { root?: string }) => {
      await serveAgent({ readable: io.stdin, writable: io.stdout }, { allowedRoot: opts.root, version });
      // The client takes the end of our output as the end of the session: give it that before the
      // process's exit, which waits for the thread pool (stdio-release.ts).
      if (io.stdout === process.stdout) releaseStdio();
    });
}
