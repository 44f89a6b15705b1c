/** `deltacast rollback DEST...`: switch every destination back to the same earlier release. */
import { rollback } from '@deltacast/fanout';
import { Command } from 'commander';
import type { MainIO } from '../io.js';
import { printable } from '../sync-output.js';
import { EXIT_CONNECT, EXIT_PARTIAL } from './sync.js';
import { addSshOptions, sshOptions, type SshFlags } from './transfer-options.js';

interface RollbackCommandOptions extends SshFlags {
  to?: string;
  bestEffort: boolean;
  json: boolean;
}

export function rollbackCommand(io: MainIO, setExitCode: (code: number) => void): Command {
  const command = new Command('rollback')
    .summary('switch destinations made with sync --release back to an earlier release')
    .description(
      "Point every destination's `current` at the release before it (or --to ID), the same release everywhere. " +
        'If a destination cannot be reached or lacks that release, none is switched (unless --best-effort); each is reported.',
    )
    .argument('<dest...>', 'destinations, as for sync')
    .option('--to <id>', 'the release to switch to')
    .option('--best-effort', 'switch the destinations that can be switched even if others cannot', false)
    .option('--json', 'write the result as one JSON line', false);
  return addSshOptions(command).action(async (destinations: string[], opts: RollbackCommandOptions) => {
      const result = await rollback({
        destinations,
        to: opts.to,
        bestEffort: opts.bestEffort,
        idleTimeoutMs: opts.timeout,
        ssh: sshOptions(opts),
      });
      if (opts.json) io.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        for (const d of result.destinations) {
          const what = d.switched ? `switched ${d.from ?? '?'} -> ${result.release}` : `NOT switched (${d.summary.errors.map((e) => `${e.code}: ${e.message}`).join('; ')})`;
          io.stdout.write(`${printable(d.destination)}: ${what}\n`);
        }
      }
      if (result.ok) return;
      const unreachable = result.destinations.every((d) => d.summary.errors.some((e) => ['CONNECT', 'AUTH', 'HOST_KEY_UNKNOWN', 'HOST_KEY_MISMATCH'].includes(e.code)));
      setExitCode(unreachable ? EXIT_CONNECT : EXIT_PARTIAL);
    });
}
