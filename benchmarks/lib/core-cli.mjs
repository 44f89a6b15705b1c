#!/usr/bin/env node
/**
 * Stand-in for `deltacast signature|delta|patch` built directly on @deltacast/core, used by the
 * benchmarks only when packages/cli/dist/deltacast.mjs is not built. Same arguments as the CLI:
 *   signature [--format native|rdiff] [-f] BASIS SIG     (rdiff format by default, like rdiff)
 *   delta [-f] SIG NEW DELTA
 *   patch [-f] BASIS DELTA OUT
 * Streams every file in 1 MiB pieces, so memory stays bounded like the real CLI's.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createDelta, createSignature, decodeSignature, encodeSignature, fileHandleBasis, patchStream } from '@deltacast/core';

const PIECE = 1 << 20;

function usage(message) {
  process.stderr.write(`core-cli: ${message}\nusage: signature [--format native|rdiff] BASIS SIG | delta SIG NEW DELTA | patch BASIS DELTA OUT\n`);
  process.exit(2);
}

async function openOutput(path, force) {
  if (!force && existsSync(path)) usage(`${path} exists (use -f to overwrite)`);
  return open(path, 'w');
}

async function writeAll(handle, data) {
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await handle.write(data, at, data.length - at);
    at += bytesWritten;
  }
}

const args = process.argv.slice(2);
const command = args.shift();
let force = false;
let format = 'rdiff';
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-f' || args[i] === '--force') force = true;
  else if (args[i] === '--format') format = args[++i];
  else files.push(args[i]);
}

if (command === 'signature') {
  if (files.length !== 2) usage('signature takes BASIS SIG');
  const [basisPath, sigPath] = files;
  const builder = createSignature({ format, basisLength: statSync(basisPath).size });
  for await (const chunk of createReadStream(basisPath, { highWaterMark: PIECE })) builder.update(chunk);
  const out = await openOutput(sigPath, force);
  await writeAll(out, encodeSignature(builder.digest()));
  await out.close();
} else if (command === 'delta') {
  if (files.length !== 3) usage('delta takes SIG NEW DELTA');
  const [sigPath, newPath, deltaPath] = files;
  const builder = createDelta(decodeSignature(await readFile(sigPath)));
  const out = await openOutput(deltaPath, force);
  for await (const chunk of createReadStream(newPath, { highWaterMark: PIECE })) {
    const piece = builder.update(chunk);
    if (piece.length > 0) await writeAll(out, piece);
  }
  await writeAll(out, builder.final());
  await out.close();
} else if (command === 'patch') {
  if (files.length !== 3) usage('patch takes BASIS DELTA OUT');
  const [basisPath, deltaPath, outPath] = files;
  const basis = await open(basisPath, 'r');
  const out = await openOutput(outPath, force);
  const chunks = patchStream(fileHandleBasis(basis, (await basis.stat()).size), createReadStream(deltaPath, { highWaterMark: PIECE }));
  for (;;) {
    const step = await chunks.next();
    if (step.done) break;
    await writeAll(out, step.value);
  }
  await out.close();
  await basis.close();
} else {
  usage(`unknown command ${JSON.stringify(command)}`);
}
