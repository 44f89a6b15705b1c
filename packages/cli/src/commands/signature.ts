/** `deltacast signature [options] [BASIS [SIG]]`: rdiff signature, or the native format. */
import {
  createSignature,
  encodeSignature,
  loadStrongSums,
  MAX_BLOCK_LENGTH,
  nativeBlockLength,
  rdiffBlockLength,
  rdiffMinStrongLength,
  strongSumMaxLength,
  type Signature,
  type SignatureFormat,
  type StrongSumKind,
  type WeakSumKind,
} from '@deltacast/core/deferred';
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { createOutput, openInput, withOutput, type MainIO, type OutputMode } from '../io.js';
import { integer } from '../options.js';
import { addOutputOptions, choice, printStatistics, type OutputFlags } from './common.js';

/** librsync RS_DEFAULT_MIN_STRONG_LEN: what `-S -1` gives when the basis size is unknown (a pipe). */
const RDIFF_DEFAULT_MIN_STRONG_LENGTH = 12;

export interface SignatureParameters {
  format: SignatureFormat;
  /** 0: chosen from the basis size (rdiff's rule for rdiff, rsync's for native). */
  blockLength: number;
  /** 0: full length; -1: the minimum for the basis size (rdiff -S -1). */
  strongLength: number;
  weakSum: WeakSumKind;
  strongSum?: StrongSumKind;
}

export interface SignatureReport {
  signature: Signature;
  basisLength: number;
  signatureLength: number;
}

/** Checks the combination of options; each option's own range was checked when parsed. */
function resolveStrongSum(params: SignatureParameters): StrongSumKind {
  if (params.format === 'native') {
    if (params.strongSum !== undefined && params.strongSum !== 'xxh64') {
      throw new UsageError(`-H ${params.strongSum} is not available with --format native (its block sums are xxh64)`);
    }
    return 'xxh64';
  }
  if (params.strongSum === 'xxh64') throw new UsageError('-H xxh64 needs --format native (rdiff has blake2 and md4)');
  return params.strongSum ?? 'blake2';
}

function resolveStrongLength(params: SignatureParameters, max: number, basisSize: number | undefined, blockLength: number): number {
  if (params.strongLength === 0) return max;
  if (params.strongLength === -1) {
    // librsync rs_sig_args(): the minimum from the basis size, a fixed 12 when the size is unknown.
    return basisSize === undefined ? Math.min(RDIFF_DEFAULT_MIN_STRONG_LENGTH, max) : rdiffMinStrongLength(basisSize, blockLength, max);
  }
  return params.strongLength;
}

/** Writes the signature of `basis` (a path, or stdin for `-`/undefined) to `output` (stdout for `-`/undefined). */
export async function writeSignature(
  basis: string | undefined,
  output: string | undefined,
  params: SignatureParameters,
  mode: OutputMode,
  io: MainIO,
): Promise<SignatureReport> {
  const strongSum = resolveStrongSum(params);
  const max = strongSumMaxLength(strongSum);
  // Usage errors before any file is opened.
  if (params.strongLength > max) throw new UsageError(`-S ${params.strongLength} is longer than a ${strongSum} sum (at most ${max})`);
  await loadStrongSums();
  const input = await openInput(basis, io);
  try {
    const blockLength =
      params.blockLength !== 0
        ? params.blockLength
        : params.format === 'native'
          ? nativeBlockLength(input.size)
          : rdiffBlockLength(input.size);
    const strongLength = resolveStrongLength(params, max, input.size, blockLength);
    const sum = createSignature({
      format: params.format,
      blockLength,
      strongLength,
      weakSum: params.weakSum,
      strongSum,
      basisLength: input.size,
    });
    const out = await createOutput(output, mode, io);
    return await withOutput(out, async () => {
      let basisLength = 0;
      for await (const chunk of input.chunks) {
        sum.update(chunk);
        basisLength += chunk.length;
      }
      const signature = sum.digest();
      const bytes = encodeSignature(signature);
      await out.write(bytes);
      return { signature, basisLength, signatureLength: bytes.length };
    });
  } finally {
    input.close();
  }
}

export function signatureCommand(io: MainIO): Command {
  const command = new Command('signature')
    .summary('write the signature of a basis file')
    .description("Write the signature of BASIS: by default byte for byte what `rdiff signature` writes.")
    .argument('[basis]', 'the basis file (- or omitted: stdin)')
    .argument('[sig]', 'the signature to write (- or omitted: stdout)')
    .option('-b, --block-size <bytes>', 'block length; 0 chooses it from the basis size as rdiff does', integer(0, MAX_BLOCK_LENGTH), 0)
    .option('-S, --sum-size <bytes>', 'strong sum length; 0 for the full length, -1 for the minimum', integer(-1, 64), 0)
    .addOption(choice('-H, --hash <alg>', 'strong sum: blake2 (default) or md4; xxh64 for --format native', ['blake2', 'md4', 'xxh64']))
    .addOption(choice('-R, --rollsum <alg>', 'weak rolling sum', ['rabinkarp', 'rollsum']).default('rabinkarp'))
    .addOption(choice('--format <format>', "rdiff (librsync's format) or native (seeded xxh64 sums)", ['rdiff', 'native']).default('rdiff'));
  addOutputOptions(command);
  return command.action(async (basis: string | undefined, sig: string | undefined, opts: SignatureCommandOptions) => {
    const report = await writeSignature(
      basis,
      sig,
      { format: opts.format, blockLength: opts.blockSize, strongLength: opts.sumSize, weakSum: opts.rollsum, strongSum: opts.hash },
      opts,
      io,
    );
    if (opts.statistics) {
      const s = report.signature;
      printStatistics(
        io,
        'signature',
        `signature[${s.blockCount} blocks, ${s.blockLength} bytes per block, ${s.strongLength}-byte ${s.strongSum} sums, ${s.weakSum}] ` +
          `basis[${report.basisLength} bytes] output[${report.signatureLength} bytes]`,
      );
    }
  });
}

interface SignatureCommandOptions extends OutputFlags {
  blockSize: number;
  sumSize: number;
  hash?: StrongSumKind;
  rollsum: WeakSumKind;
  format: SignatureFormat;
}
