/**
 * Inputs and outputs of the commands. `-` (or an omitted argument) is stdin/stdout, as in rdiff.
 * Files are read in chunks; outputs go to a temporary file beside the target that is renamed into
 * place only once the whole operation has succeeded, so a failure never leaves a partial target.
 */
import { randomBytes } from 'node:crypto';
import { constants, fstatSync, readSync, writeSync } from 'node:fs';
import { link, lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { OperationError } from './errors.js';

/** Where `main()` reads and writes; the process's streams unless a caller (a test) passes others. */
export interface MainIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the user asks the program to stop (SIGINT, SIGTERM); `watch` then stops cleanly. */
  signal?: AbortSignal;
}

export function processIO(signal?: AbortSignal): MainIO {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signal };
}

/** Set while a command that stops cleanly on `signal` runs; bin.ts then aborts instead of exiting. */
export const stoppable = { active: false };

/** Temporary outputs not yet committed or removed, for bin.ts to remove on SIGINT/SIGTERM. */
export const pendingTempFiles = new Set<string>();

/** Bytes read from a file per chunk, and written per write when output comes in small pieces. */
export const CHUNK_LENGTH = 1 << 20;

export function isStdio(path: string | undefined): boolean {
  return path === undefined || path === '-';
}

export interface Input {
  /** What to call the input in messages. */
  readonly name: string;
  /** Length in bytes when the input is a regular file (also stdin redirected from one), else undefined. */
  readonly size: number | undefined;
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Releases the file if the chunks were not read to the end. */
  close(): void;
}

/** Opens an input file, or stdin for `-`/undefined. Opening first surfaces a missing file before any output exists. */
export async function openInput(path: string | undefined, io: MainIO): Promise<Input> {
  if (isStdio(path)) {
    return { name: 'stdin', size: stdinSize(io), chunks: io.stdin, close: () => {} };
  }
  const handle = await open(path as string, 'r');
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new OperationError('EISDIR', `${path} is a directory`);
    let closed = false;
    const close = () => {
      if (!closed) void handle.close().catch(() => {});
      closed = true;
    };
    return { name: path as string, size: stat.isFile() ? stat.size : undefined, chunks: readFd(handle.fd, close), close };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Chunks of a file read synchronously into one reused buffer: each chunk is valid until the next is
 * asked for (the core's builders copy what they keep). A page-cached file reads far faster this way
 * than through a stream, which allocates a new buffer per chunk and hops through the thread pool.
 */
async function* readFd(fd: number, close: () => void): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(CHUNK_LENGTH);
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) return;
      yield buffer.subarray(0, n);
    }
  } finally {
    close();
  }
}

/**
 * rdiff takes the basis size from fstat() even on stdin, so `rdiff signature < file` picks the same
 * block length as `rdiff signature file`; only a pipe has an unknown size.
 */
function stdinSize(io: MainIO): number | undefined {
  if (io.stdin !== process.stdin) return undefined;
  try {
    const stat = fstatSync(0);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a whole input (used for signatures only, which are small next to the files they describe). */
export async function readAll(input: Input): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of input.chunks) {
    chunks.push(chunk.slice()); // file chunks share one buffer
    length += chunk.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

export interface Output {
  /** Bytes written so far. */
  readonly length: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Flushes; for a file, makes it durable and moves it to the target path. */
  commit(): Promise<void>;
  /** Discards a file output (the target is untouched); best effort, never throws. */
  abort(): Promise<void>;
}

/**
 * Opens an output: stdout for `-`/undefined, else a temporary file beside `path`. Without `force`
 * an existing target is refused up front (as rdiff does) and again at commit, atomically.
 */
/** How an output file is written: overwrite an existing target, and flush to disk before the rename. */
export interface OutputMode {
  force: boolean;
  fsync?: boolean;
}

export async function createOutput(path: string | undefined, mode: OutputMode, io: MainIO): Promise<Output> {
  const { force } = mode;
  if (isStdio(path)) return new StreamOutput(io.stdout);
  const target = resolve(path as string);
  const existing = await lstat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing?.isDirectory()) throw new OperationError('EISDIR', `output ${path} is a directory`);
  if (existing && !force) throw outputExists(path as string);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle;
  try {
    // Exclusive create without O_TRUNC (ext4 flushes O_TRUNC-opened files on close).
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
  } catch (error) {
    // Name the output the user asked for, not the temporary file.
    const { code = 'EIO', message } = error as NodeJS.ErrnoException;
    throw new OperationError(code, `cannot create ${path}: ${message.replace(/^[A-Z]+: /, '').replace(/, open .*$/, '')}`);
  }
  pendingTempFiles.add(temp);
  return new FileOutput(handle, temp, target, path as string, force, mode.fsync ?? false);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function outputExists(path: string): OperationError {
  return new OperationError('EEXIST', `output file ${path} exists (use -f to overwrite it)`);
}

/** Gathers small writes into chunks of up to CHUNK_LENGTH bytes. */
abstract class BufferedOutput implements Output {
  length = 0;
  private buffer = Buffer.allocUnsafe(CHUNK_LENGTH);
  private buffered = 0;

  async write(chunk: Uint8Array): Promise<void> {
    this.length += chunk.length;
    if (chunk.length >= CHUNK_LENGTH >>> 1) {
      await this.flush();
      await this.sink(chunk);
      return;
    }
    if (this.buffered + chunk.length > CHUNK_LENGTH) await this.flush();
    this.buffer.set(chunk, this.buffered);
    this.buffered += chunk.length;
  }

  protected async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const data = this.buffer.subarray(0, this.buffered);
    // The sink may keep `data` (a stream's write queue), so start a new buffer rather than reuse it.
    this.buffer = Buffer.allocUnsafe(CHUNK_LENGTH);
    this.buffered = 0;
    await this.sink(data);
  }

  protected abstract sink(data: Uint8Array): Promise<void>;
  abstract commit(): Promise<void>;
  abstract abort(): Promise<void>;
}

/** stdout: writes honour backpressure (wait for 'drain'); a stream error fails the next write. */
class StreamOutput extends BufferedOutput {
  private error: Error | undefined;
  private readonly onError = (error: Error): void => {
    this.error = error;
  };

  constructor(private readonly stream: Writable) {
    super();
    stream.on('error', this.onError);
  }

  protected async sink(data: Uint8Array): Promise<void> {
    if (this.error) throw this.error;
    if (this.stream.destroyed) throw new OperationError('EPIPE', 'output stream closed');
    if (this.stream.write(data)) return;
    await new Promise<void>((resolveDrain, reject) => {
      const done = (error?: Error): void => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        this.stream.off('close', closed);
        if (error) reject(error);
        else resolveDrain();
      };
      const closed = (): void => done(this.error ?? new OperationError('EPIPE', 'output stream closed'));
      this.stream.on('drain', done);
      this.stream.on('error', done);
      this.stream.on('close', closed);
    });
  }

  async commit(): Promise<void> {
    await this.flush();
    this.stream.off('error', this.onError);
    if (this.error) throw this.error;
  }

  async abort(): Promise<void> {
    this.stream.off('error', this.onError);
  }
}

class FileOutput extends BufferedOutput {
  private closed = false;

  constructor(
    private readonly handle: FileHandle,
    private readonly temp: string,
    private readonly target: string,
    private readonly name: string,
    private readonly force: boolean,
    private readonly fsync: boolean,
  ) {
    super();
  }

  /** Synchronous writes: for a local file they cost less than a thread-pool round trip each. */
  protected async sink(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; ) at += writeSync(this.handle.fd, data, at, data.length - at);
  }

  async commit(): Promise<void> {
    try {
      await this.flush();
      // With --fsync, durable before it becomes visible under the target name (rdiff and rsync do not
      // sync by default; the rename alone already keeps a partial file from the target path).
      if (this.fsync) await this.handle.datasync();
      this.closed = true;
      await this.handle.close();
      await this.place();
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Moves the temp file to the target; without force, link() fails if the target appeared meanwhile. */
  private async place(): Promise<void> {
    if (this.force) {
      await rename(this.temp, this.target);
      pendingTempFiles.delete(this.temp);
      return;
    }
    try {
      await link(this.temp, this.target);
      pendingTempFiles.delete(this.temp);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw outputExists(this.name);
      // Filesystems without hard links: check, then rename (not atomic, but the best available).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw error;
      if (await exists(this.target)) throw outputExists(this.name);
      await rename(this.temp, this.target);
      pendingTempFiles.delete(this.temp);
      return;
    }
    await unlink(this.temp);
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => {});
    }
    await unlink(this.temp).catch(() => {});
    pendingTempFiles.delete(this.temp);
  }
}

/** Runs `work` with an output, committing on success and discarding it on failure. */
export async function withOutput<T>(output: Output, work: (output: Output) => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work(output);
  } catch (error) {
    await output.abort();
    throw error;
  }
  await output.commit();
  return result;
}
