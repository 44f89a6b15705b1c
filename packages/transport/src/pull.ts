/**
 * A pull: `deltacast sync host:SRC DEST`, a remote source to a local destination, as rsync pulls.
 * The roles turn around, not the algorithm: the host that has the files runs the sending side
 * (`deltacast sender`, sender.ts), found or uploaded as the agent is (the CLI's bundle then, which
 * runs any command), and this process serves DEST to it with an agent of its own, over the same
 * SSH channel. So the source is read, and deltas computed, where it lies; only deltas cross the
 * network; and DEST gets every guarantee a push destination has (temporary files, whole-file
 * hashes, renames, the lock, paths confined to its root, which the remote side cannot choose).
 * The sender's events come over its stderr (one line each) and are this run's events.
 */
import { ProtocolError, TransportError } from './errors.js';
import { serveAgent } from './agent.js';
import type { EventListener, SyncEvent, SyncSummary } from './events.js';
import { connectShell, type DestinationOptions } from './open-destination.js';
import { encodeSenderRequest, SENDER_EVENT_PREFIX, type SenderRequest } from './sender.js';
import { parseFilterFile } from './filter.js';
import { formatDestination, parseDestination } from './ssh/index.js';
import { startRemoteAgent } from './ssh/remote-agent.js';
import { basisDirs } from './link-dest.js';
import type { TransferOptions } from './sync.js';
import { readFile } from 'node:fs/promises';

export interface PullOptions extends TransferOptions, DestinationOptions {
  /** The remote source: host:path, user@host:path or ssh://user@host:port/path ("dir/" sends the contents of dir). */
  source: string;
  /** The local destination directory (made if missing, as a push makes it). */
  destination: string;
  /** --files-from: the paths to send, relative to the source directory; the sender reports those the source lacks. */
  filesFrom?: string[];
  /** The bundle that runs `deltacast sender` on a host without deltacast: the CLI's single-file bundle. */
  senderBundlePath: string;
  /** What the sender writes to stderr that is no event (its messages), as it comes. */
  onMessage?: (text: string) => void;
}

export interface PullResult {
  /** The run's summary, as the sender reported it; undefined if it ended before its summary. */
  summary: SyncSummary | undefined;
  /** The sender's exit status (the CLI's codes: 0, 23, 25, 1, ...); null when it gave none. */
  exitCode: number | null;
}

/** The end of the sender's messages kept for a failure's message. */
const STDERR_TAIL = 4096;

/** The event lines, and the other text, of the sender's stderr, split as they come. */
class SenderStderr {
  private pending = '';
  summary: SyncSummary | undefined;
  /** The last of the messages (not the events), for the message of a failure. */
  tail = '';
  /**
   * Messages before the first event: a sender that fails before its session is reported with its
   * stderr by the ConnectError, so they are passed on only once the run has begun (or at its end).
   */
  private held: string[] | undefined = [];

  constructor(
    private readonly onEvent: EventListener | undefined,
    private readonly onMessage: ((text: string) => void) | undefined,
  ) {}

  push(chunk: Buffer): void {
    const text = this.pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.pending !== '') this.line(this.pending);
    this.pending = '';
    this.release();
  }

  private message(text: string): void {
    this.tail = (this.tail + text).slice(-STDERR_TAIL);
    if (this.held) this.held.push(text);
    else this.onMessage?.(text);
  }

  private release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const text of held) this.onMessage?.(text);
  }

  /** Drops what was held: the failure that ended the pull says it. */
  discard(): void {
    if (this.held) this.held = [];
    if (this.held) this.pending = '';
  }

  private line(line: string): void {
    if (!line.startsWith(SENDER_EVENT_PREFIX)) {
      // The start script's line is how the agent was found, not a message.
      if (!line.startsWith('deltacast-start: ')) this.message(`${line}\n`);
      return;
    }
    let event: SyncEvent;
    try {
      event = JSON.parse(line.slice(SENDER_EVENT_PREFIX.length)) as SyncEvent;
    } catch {
      this.message(`${line.slice(SENDER_EVENT_PREFIX.length)}\n`);
      return;
    }
    if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') return;
    if (event.type === 'summary') this.summary = event.result;
    this.release();
    this.onEvent?.(event);
  }
}

/**
 * Pulls `source` (on another host) into the local `destination`: see the file's comment. Failing to
 * reach the host or to start the sender throws a ConnectError; what the run itself failed is in the
 * summary, and in the sender's exit code.
 */
export async function pull(options: PullOptions): Promise<PullResult> {
  const source = parseDestination(options.source);
  if (source.kind !== 'ssh') throw new TransportError('INVALID_OPTION', `pull: the source ${options.source} is on this host; sync it as a push`, { source: options.source });
  const target = parseDestination(options.destination);
  if (target.kind !== 'local') {
    throw new TransportError('INVALID_OPTION', `pull: the destination ${options.destination} is on another host; a pull goes to a local directory`, { destination: options.destination });
  }
  // Read here, as rsync reads them on the side that runs the command.
  const filters = [...(options.filters ?? [])];
  for (const file of options.excludeFrom ?? []) filters.push(...parseFilterFile(await readFile(file, 'utf8')));
  const { source: _source, destination: _destination, filesFrom, senderBundlePath, onMessage, onEvent, excludeFrom: _excludeFrom, ssh: sshOptions, localAgent: _localAgent, bwlimit, ...transfer } = options;
  const request: SenderRequest = {
    source: source.path,
    destination: options.destination,
    options: { ...transfer, filters },
    ...(filesFrom !== undefined ? { filesFrom } : {}),
    ...(bwlimit ? { bwlimit } : {}),
  };
  const preamble = encodeSenderRequest(request);

  const ssh = sshOptions ?? {};
  const name = formatDestination(source);
  const remote = await connectShell(source, name, ssh);
  try {
    const streams = await startRemoteAgent(remote.shell, {
      program: { args: ['sender'], bundlePath: senderBundlePath },
      ...(ssh.remoteCommand !== undefined ? { remoteCommand: ssh.remoteCommand } : {}),
      timeoutMs: ssh.connectTimeoutMs,
    });
    const stderr = new SenderStderr(onEvent, onMessage);
    streams.stderrStream.on('data', (chunk: Buffer) => stderr.push(chunk));
    // The request first: the agent answers only the sender's hello, so nothing of its goes before it.
    streams.writable.write(preamble);
    const served = serveAgent({ readable: streams.readable, writable: streams.writable, close: () => streams.writable.end() }, { root: options.destination, linkDestDirs: basisDirs(options)?.dirs });
    let failure: unknown;
    await served.catch((error: unknown) => {
      failure = error;
    });
    streams.writable.end();
    const exit = await streams.exited;
    if (failure !== undefined && stderr.summary === undefined && (exit.code === null || exit.code === 0)) {
      // The session broke (the sender killed, the connection lost, a protocol error): say so, with
      // the sender's own messages (not its events, which were this run's).
      stderr.discard();
      stderr.end();
      const how = exit.signal !== null ? `was killed by signal ${exit.signal}` : exit.code === 0 ? 'ended' : 'closed without an exit status';
      const said = stderr.tail.trim();
      // A protocol fault says what it was; a lost stream says no more than the exit status does.
      const fault = failure instanceof ProtocolError ? ` (${failure.code}: ${failure.message})` : '';
      const code = failure instanceof ProtocolError ? failure.code : 'IO';
      throw new TransportError(code, `the sender \`${streams.command}\` ${how} before the run's end${said ? `: ${said}` : ''}${fault}`, { source: name, exit });
    }
    // The sender ran and gave its verdict, the exit code (a missing source is 23, as rsync's): its
    // messages say why, and go out as they are.
    stderr.end();
    return { summary: stderr.summary, exitCode: exit.code };
  } finally {
    remote.end();
  }
}
