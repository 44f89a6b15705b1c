/** `deltacast delta SIG [NEW [DELTA]]`: the delta of NEW against a signature (format from its magic). */
import { createDelta, decodeSignature, indexSignature, loadStrongSums, type DeltaStats, type Signature } from '@deltacast/core/deferred';
import { Command } from 'commander';
import { createOutput, openInput, readAll, withOutput, type MainIO, type OutputMode } from '../io.js';
import { addOutputOptions, checkOneStdin, printStatistics, type OutputFlags } from './common.js';

export interface DeltaReport {
  signature: Signature;
  stats: DeltaStats;
  deltaLength: number;
}

/** Reads the signature whole (it is small), then streams NEW through the delta into the output. */
export async function writeDelta(
  sigPath: string,
  newPath: string | undefined,
  output: string | undefined,
  mode: OutputMode,
  io: MainIO,
): Promise<DeltaReport> {
  checkOneStdin(['SIG', sigPath], ['NEW', newPath]);
  const sigInput = await openInput(sigPath, io);
  let signature: Signature;
  try {
    signature = decodeSignature(await readAll(sigInput));
  } finally {
    sigInput.close();
  }
  await loadStrongSums();
  const builder = createDelta(indexSignature(signature));
  const input = await openInput(newPath, io);
  try {
    const out = await createOutput(output, mode, io);
    return await withOutput(out, async () => {
      for await (const chunk of input.chunks) {
        const bytes = builder.update(chunk);
        if (bytes.length > 0) await out.write(bytes);
      }
      await out.write(builder.final());
      return { signature, stats: builder.stats, deltaLength: out.length };
    });
  } finally {
    input.close();
  }
}

export function deltaCommand(io: MainIO): Command {
  const command = new Command('delta')
    .summary('write the delta from a signature to a new file')
    .description("Write the delta that turns the signature's basis into NEW, in the signature's format (rdiff or native).")
    .argument('<sig>', 'the signature of the basis (- for stdin)')
    .argument('[new]', 'the new file (- or omitted: stdin)')
    .argument('[delta]', 'the delta to write (- or omitted: stdout)');
  addOutputOptions(command);
  return command.action(async (sig: string, newFile: string | undefined, delta: string | undefined, opts: OutputFlags) => {
    const report = await writeDelta(sig, newFile, delta, opts, io);
    if (opts.statistics) {
      const s = report.stats;
      printStatistics(
        io,
        'delta',
        `literal[${s.literalCommands} cmds, ${s.literalBytes} bytes] copy[${s.copyCommands} cmds, ${s.copiedBytes} bytes] ` +
          `new[${s.targetLength} bytes] delta[${report.deltaLength} bytes, ${report.signature.format}]`,
      );
    }
  });
}
