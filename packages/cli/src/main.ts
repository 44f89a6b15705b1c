/** The `deltacast` program: wires the commands into commander and turns every outcome into an exit code. */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { deltaCommand } from './commands/delta.js';
import { demoCommand } from './commands/demo.js';
import { patchCommand } from './commands/patch.js';
import { signatureCommand } from './commands/signature.js';
import { agentCommand } from './commands/agent.js';
import { senderCommand } from './commands/sender.js';
import { syncCommand } from './commands/sync.js';
import { rollbackCommand } from './commands/rollback.js';
import { watchCommand } from './commands/watch.js';
import { describeError, EXIT_OK, EXIT_USAGE, exitCodeOf } from './errors.js';
import { processIO, type MainIO } from './io.js';

declare const __DELTACAST_VERSION__: string | undefined;
/** Set by build-bundle.mjs in the single-file bundle, which runs without package.json beside it (a pull's sender on another host). */
const version = typeof __DELTACAST_VERSION__ === 'string' ? __DELTACAST_VERSION__ : (createRequire(import.meta.url)('../package.json') as { version: string }).version;

const COMMANDS = ['signature', 'delta', 'patch', 'sync', 'watch', 'rollback', 'agent', 'demo', 'help'];
/** Commands run by deltacast itself on a remote host, left out of the help. */
const HIDDEN_COMMANDS = ['sender'];

const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  the operation failed (bad input data, I/O error, output exists without -f)
  2  usage error (unknown command or option, bad option value)

Files: - or an omitted trailing argument means stdin/stdout. Outputs are written to a temporary
file beside the target and renamed into place only on success.`;

/**
 * rdiff takes its options before the action (`rdiff -f -b 1024 signature a s`); commander wants
 * them after the command, so the first command name is moved to the front.
 */
function commandFirst(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const at = argv.findIndex((arg, i) => (end === -1 || i < end) && (COMMANDS.includes(arg) || HIDDEN_COMMANDS.includes(arg)));
  if (at <= 0) return [...argv];
  return [argv[at], ...argv.slice(0, at), ...argv.slice(at + 1)];
}

/**
 * Runs the CLI with the given arguments (without `node` and the script, i.e. `process.argv.slice(2)`)
 * and resolves to the exit code; it never calls process.exit, so tests can run it in-process.
 */
export async function main(argv: readonly string[], io: MainIO = processIO()): Promise<number> {
  let commandName = '';
  let exitCode = EXIT_OK;
  const program = new Command('deltacast')
    .description("rsync's delta algorithm: rdiff-compatible signature, delta and patch, and sync over ssh")
    .version(version, '-V, --version', 'print the version')
    .addHelpText('after', EXIT_CODES_HELP)
    .showSuggestionAfterError(true)
    .hook('preAction', (_program, action) => {
      commandName = action.name();
    });
  const commands = [
    signatureCommand(io),
    deltaCommand(io),
    patchCommand(io),
    syncCommand(io, (code) => (exitCode = code)),
    watchCommand(io),
    rollbackCommand(io, (code) => (exitCode = code)),
    agentCommand(io, version),
    demoCommand(io),
  ];
  for (const command of commands) {
    if (command.name() !== 'sync') command.addHelpText('after', EXIT_CODES_HELP);
    program.addCommand(command);
  }
  program.addCommand(senderCommand(io, (code) => (exitCode = code)), { hidden: true });
  configure(program, io);
  if (argv.length === 0) {
    // commander would print the whole help to stderr; rdiff says what is missing in one line.
    io.stderr.write(`deltacast: missing command: ${COMMANDS.slice(0, -1).join(', ')} (see deltacast --help)\n`);
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(commandFirst(argv), { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    io.stderr.write(`deltacast: ${commandName ? `${commandName}: ` : ''}${describeError(error)}\n`);
    return exitCodeOf(error);
  }
}

/** Help and usage errors go to io's streams, and errors throw instead of exiting the process. */
function configure(command: Command, io: MainIO, prefix = 'deltacast: '): void {
  command
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`${prefix}${text.replace(/^error: /, '')}`),
    });
  for (const sub of command.commands) configure(sub, io, `${prefix}${sub.name()}: `);
}
