/**
 * The remote end of a pull (pull.ts): `deltacast sender` runs on the host that has the files and
 * syncs them to the puller's agent exactly as a push does, over its own stdin and stdout: the
 * source is scanned and read where it lies, and only deltas cross the network. Its stdin begins
 * with the run (a preamble: a 4-byte big-endian length, then that many bytes of JSON, a
 * SenderRequest), then carries the agent's frames; its stdout carries the sender's frames. Each
 * event of the run goes to stderr as one line, SENDER_EVENT_PREFIX then the event as JSON, for the
 * puller to print as its own (docs/protocol.md, Pull).
 */
import { lstat } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { PathError, ProtocolError } from './errors.js';
import { limitRate } from './rate-limit.js';
import type { ByteStreams } from './wire.js';
import type { SyncEvent, SyncSummary } from './events.js';
import { encodeAhead } from './listing.js';
import { buildFilter, nextTurn, scanOptions, scanSource, syncTree, type TransferOptions } from './sync.js';

/** The start of an event line on the sender's stderr (a record separator, then a name). */
export const SENDER_EVENT_PREFIX = '\u001edeltacast-event ';
/** The largest preamble accepted: --files-from lists and filter rules live in it. */
export const MAX_SENDER_REQUEST_BYTES = 64 * 1024 * 1024;

/** What a puller asks of its sender: the run, as JSON. */
export interface SenderRequest {
  /** The source as the remote sees it (the path after `host:`; relative to the remote home). */
  source: string;
  /** The destination as the user wrote it, for events. */
  destination: string;
  /** The transfer options (no functions: `onEvent` is the puller's; exclude-from files already read into `filters`). */
  options: Omit<TransferOptions, 'onEvent' | 'excludeFrom'>;
  /** --files-from: the listed paths; those the source lacks are reported by the sender (`missing`) and left out. */
  filesFrom?: string[];
  /** --bwlimit: what the sender sends is paced to this many bytes per second. */
  bwlimit?: number;
}

/** The preamble for `request`: its bytes, to write before anything else to the sender's stdin. */
export function encodeSenderRequest(request: SenderRequest): Buffer {
  const json = Buffer.from(JSON.stringify(request), 'utf8');
  if (json.length > MAX_SENDER_REQUEST_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `the pull's request is ${json.length} bytes, more than ${MAX_SENDER_REQUEST_BYTES}`, { size: json.length });
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json]);
}

/**
 * Reads the preamble off `input` and puts back what follows it (the agent's first frames may have
 * come in the same chunk). A short or oversized preamble, or one that is no SenderRequest, is a
 * ProtocolError.
 */
export async function readSenderRequest(input: Readable): Promise<SenderRequest> {
  const parts: Buffer[] = [];
  let have = 0;
  let need = 4;
  let length: number | undefined;
  for await (const chunk of input.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    parts.push(chunk);
    have += chunk.length;
    if (length === undefined && have >= 4) {
      length = Buffer.concat(parts).readUInt32BE(0);
      if (length > MAX_SENDER_REQUEST_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `a pull's request of ${length} bytes, more than ${MAX_SENDER_REQUEST_BYTES}`, { size: length });
      need = 4 + length;
    }
    if (length !== undefined && have >= need) break;
  }
  if (length === undefined || have < need) throw new ProtocolError('UNEXPECTED_EOF', `the pull's request ended after ${have} bytes`, { have });
  const all = Buffer.concat(parts);
  if (all.length > need) input.unshift(all.subarray(need));
  let request: SenderRequest;
  try {
    request = JSON.parse(all.subarray(4, need).toString('utf8')) as SenderRequest;
  } catch (error) {
    throw new ProtocolError('BAD_MESSAGE', `the pull's request is no JSON: ${(error as Error).message}`, {});
  }
  if (typeof request?.source !== 'string' || typeof request.destination !== 'string' || typeof request.options !== 'object' || request.options === null) {
    throw new ProtocolError('BAD_MESSAGE', "the pull's request lacks its source, destination or options", {});
  }
  if (request.bwlimit !== undefined && !(typeof request.bwlimit === 'number' && Number.isFinite(request.bwlimit) && request.bwlimit >= 0)) {
    throw new ProtocolError('BAD_MESSAGE', "the pull's bwlimit is no number of bytes per second", {});
  }
  if (request.filesFrom !== undefined && !(Array.isArray(request.filesFrom) && request.filesFrom.every((p) => typeof p === 'string'))) {
    throw new ProtocolError('BAD_MESSAGE', "the pull's --files-from list is not a list of paths", {});
  }
  return request;
}

export interface SenderResult {
  summary: SyncSummary;
  /** --files-from paths the source lacks (left out; the run is partial). */
  missing: string[];
}

/**
 * Runs a pull's sending side: reads the request off `input`, scans its source and syncs it to the
 * agent on the other end of `input`/`output`, passing each event to `onEvent`. `missingFromSource`
 * sorts out --files-from paths the source lacks (the CLI's rule, files-from.ts).
 */
export async function serveSender(
  input: Readable,
  output: Writable,
  onEvent: (event: SyncEvent) => void,
  missingFromSource: (source: string, listed: string[]) => string[],
): Promise<SenderResult> {
  const request = await readSenderRequest(input);
  let source = request.source === '' ? '.' : request.source;
  const options: TransferOptions = { ...request.options, onEvent };
  let missing: string[] = [];
  if (request.filesFrom !== undefined) {
    if (!source.endsWith('/')) source = `${source}/`;
    missing = missingFromSource(source, request.filesFrom);
    options.paths = request.filesFrom.filter((p) => !missing.includes(p));
  }
  const filter = await buildFilter(options);
  // A missing source ends the sender before its session: the puller reports its message and code.
  const found = await lstat(source).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (!found) throw new SourceMissingError(source);
  const scanned = scanSource(source, filter, scanOptions(options)).then(async (tree) => {
    await nextTurn();
    encodeAhead(tree, options);
    return tree;
  });
  scanned.catch(() => {}); // awaited by syncTree
  // The agent is the puller's own, local there: changes are itemized as received (`>`).
  const direct: ByteStreams = { readable: input, writable: output };
  const streams = request.bwlimit ? limitRate(direct, request.bwlimit) : direct;
  const summary = await syncTree(scanned, { name: request.destination, streams, root: '.', remote: false }, filter, options);
  return { summary, missing };
}

/** The source of a pull is not there (the sender exits 23, as rsync does for a missing source). */
export class SourceMissingError extends PathError {
  constructor(source: string) {
    super('NO_SUCH_FILE', 'the source does not exist', { source });
  }
}

/** An event as its line on the sender's stderr. */
export function senderEventLine(event: SyncEvent): string {
  return `${SENDER_EVENT_PREFIX}${JSON.stringify(event)}\n`;
}
