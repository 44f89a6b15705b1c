/**
 * `deltacast sender`: the sending side of a pull (`deltacast sync host:SRC DEST`), run on the host
 * that has the files by the puller, never by hand. It speaks the protocol as a sync client on
 * stdin/stdout to the puller's agent; the run comes first on stdin, and events go to stderr
 * (@deltacast/transport sender.ts, docs/protocol.md, Pull). Its exit code is sync's.
 */
import { releaseStdio, senderEventLine, serveSender, SourceMissingError } from '@deltacast/transport';
import { Command } from 'commander';
import type { MainIO } from '../io.js';
import { missingFromSource } from '../files-from.js';
import { printable } from '../sync-output.js';
import { EXIT_PARTIAL, failureExit } from './sync.js';

export function senderCommand(io: MainIO, setExitCode: (code: number) => void): Command {
  return new Command('sender')
    .summary('the sending side of a pull, run on the source host by `deltacast sync host:SRC DEST`')
    .description('Read a run from stdin, then sync its source to the agent on stdin/stdout; events go to stderr. Run by sync, not by hand.')
    .action(async () => {
      try {
        setExitCode(await send(io));
      } finally {
        // Done with the puller's agent whatever happened: its side may still be open (a sender that
        // failed before its session), and an open stdin would keep this process from exiting.
        if (io.stdin === process.stdin) process.stdin.destroy();
      }
    });
}

/** Runs the sender; its exit code. */
async function send(io: MainIO): Promise<number> {
  let result;
  try {
    result = await serveSender(io.stdin, io.stdout, (event) => io.stderr.write(senderEventLine(event)), missingFromSource);
  } catch (error) {
    // rsync's code for a source that is not there: a partial transfer (of nothing).
    if (!(error instanceof SourceMissingError)) throw error;
    io.stderr.write(`deltacast: sync: ${printable(String(error.details.source))}: ${error.code}: ${error.message}\n`);
    return EXIT_PARTIAL;
  }
  const { summary, missing } = result;
  for (const path of missing) io.stderr.write(`deltacast: sync: ${printable(path)}: NO_SUCH_FILE: listed in --files-from, not in the source\n`);
  const code = summary.ok ? 0 : failureExit([summary]);
  // The puller's agent takes the end of our output as the end of the session (stdio-release.ts).
  if (io.stdout === process.stdout) releaseStdio();
  return missing.length > 0 && code === 0 ? EXIT_PARTIAL : code;
}
