/** `deltacast patch BASIS [DELTA [NEW]]`: applies a delta (either format) to BASIS. */
import { fileHandleBasis, patchStream, type PatchResult } from '@deltacast/core/deferred';
import { Command } from 'commander';
import { open } from 'node:fs/promises';
import { OperationError, UsageError } from '../errors.js';
import { createOutput, isStdio, openInput, withOutput, type MainIO, type OutputMode } from '../io.js';
import { byteCount } from '../options.js';
import { addOutputOptions, printStatistics, type OutputFlags } from './common.js';

export interface PatchReport extends PatchResult {
  basisLength: number;
}

/**
 * Streams the delta through `patchStream`, reading the basis at random offsets from an open file
 * handle, and renames the output into place only when the patch (and, for native deltas, the
 * SHA-256 check) succeeded.
 */
export async function writePatch(
  basisPath: string,
  deltaPath: string | undefined,
  output: string | undefined,
  options: OutputMode & { maxOutputLength?: number },
  io: MainIO,
): Promise<PatchReport> {
  if (isStdio(basisPath)) throw new UsageError('BASIS must be a file: it is read at random offsets, so it cannot be stdin');
  const handle = await open(basisPath, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new OperationError('EINVAL', `basis ${basisPath} is not a regular file`);
    const delta = await openInput(deltaPath, io);
    try {
      const out = await createOutput(output, options, io);
      return await withOutput(out, async () => {
        const patch = patchStream(fileHandleBasis(handle, stat.size), delta.chunks, { maxOutputLength: options.maxOutputLength });
        for (;;) {
          const step = await patch.next();
          if (step.done) return { ...step.value, basisLength: stat.size };
          await out.write(step.value);
        }
      });
    } finally {
      delta.close();
    }
  } finally {
    await handle.close();
  }
}

export function patchCommand(io: MainIO): Command {
  const command = new Command('patch')
    .summary('apply a delta to a basis file')
    .description('Apply DELTA to BASIS, writing NEW. A failed patch leaves no NEW file behind.')
    .argument('<basis>', 'the basis file (must be a regular file)')
    .argument('[delta]', 'the delta (- or omitted: stdin)')
    .argument('[new]', 'the file to write (- or omitted: stdout)')
    .option('--max-output <bytes>', 'fail rather than write more than this many bytes (e.g. 100M)', byteCount(0));
  addOutputOptions(command);
  return command.action(async (basis: string, delta: string | undefined, newFile: string | undefined, opts: PatchCommandOptions) => {
    const report = await writePatch(basis, delta, newFile, { force: opts.force, fsync: opts.fsync, maxOutputLength: opts.maxOutput }, io);
    if (opts.statistics) {
      const check = report.verified ? `${report.fileHash} verified` : report.format === 'rdiff' ? 'rdiff deltas carry no hash' : 'not verified';
      printStatistics(
        io,
        'patch',
        `basis[${report.basisLength} bytes] output[${report.outputLength} bytes, ${report.fileHash} ${Buffer.from(report.digest).toString('hex')}] ` +
          `format[${report.format}, ${check}]`,
      );
    }
  });
}

interface PatchCommandOptions extends OutputFlags {
  maxOutput?: number;
}
