/**
 * Runs a CommonJS bundle from V8's code cache. Compiling the CLI's 1.4 MB bundle, and then each
 * function it calls, took ~60 ms of every start here (Node 20 has no module compile cache); with
 * the cache V8 deserializes the bytecode of what the last run of the same command used instead.
 *
 * One cache file per file layout, bundle build, Node version, architecture and command (the first
 * argument): what a cache holds is what that command compiled, so `sync` gets a cache made by a
 * sync, not by `--version`. A cache is written when there was none (or V8 rejected it), at the end of a run that
 * exited 0, to a temporary name renamed into place (concurrent runs each write a whole file). The
 * bundle's build id (its SHA-256, fixed at build time) names the file, because V8 itself checks only
 * the source's length. V8 checks a cache's header but (in release builds) not its contents, so each
 * file also carries a SHA-256 of what follows it, checked before V8 sees the data: a damaged file
 * counts as rejected, never as code to run. Writing one also removes caches not written for 30 days
 * (other builds and Node versions; a cache in use is never rewritten, so it too is made again once a
 * month). Caching is skipped, never fatal: an unwritable or absent cache directory just means
 * compiling as without it. `DELTACAST_CODE_CACHE=off` turns it off. A run under a profiler or a
 * debugger writes no cache (see `profiled`).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

export type CacheStatus = 'off' | 'hit' | 'miss' | 'rejected';

/**
 * The cache file layout's name, first in every file name: a launcher that writes another layout
 * (with the same bundle) keeps its caches apart instead of each rejecting and rewriting the other's.
 */
const CACHE_FORMAT = 'c1';
/** A cache file: these 8 bytes, the SHA-256 of the rest, then V8's cached data. */
const CACHE_MAGIC = Buffer.from('DCV8C\x00\x00\x01', 'latin1');
const HEADER_BYTES = CACHE_MAGIC.length + 32;

function digest(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** V8's data from a cache file's bytes, or undefined when they are not a whole, unaltered cache file. */
export function unpackCache(file: Buffer): Buffer | undefined {
  if (file.length <= HEADER_BYTES || !file.subarray(0, CACHE_MAGIC.length).equals(CACHE_MAGIC)) return undefined;
  const data = file.subarray(HEADER_BYTES);
  return digest(data).equals(file.subarray(CACHE_MAGIC.length, HEADER_BYTES)) ? data : undefined;
}

/** A cache file's bytes for V8's data. */
export function packCache(data: Buffer): Buffer {
  return Buffer.concat([CACHE_MAGIC, digest(data), data]);
}

export interface RunOptions {
  /** Identifies the bundle's content (its hash); part of the cache file's name. */
  buildId: string;
  /** The command line after the script (process.argv.slice(2)); its first word names the cache. */
  argv: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** Where caches live: $DELTACAST_CODE_CACHE if it is a path, else $XDG_CACHE_HOME/deltacast/v8 or ~/.cache/deltacast/v8. */
export function cacheDirectory(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const setting = env.DELTACAST_CODE_CACHE;
  if (setting === 'off' || setting === '0') return undefined;
  if (setting && setting.startsWith('/')) return setting;
  const base = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache');
  return join(base, 'deltacast', 'v8');
}

/** The cache file for this bundle, Node and command; undefined when caching is off. */
export function cacheFile(options: RunOptions): string | undefined {
  const dir = cacheDirectory(options.env);
  if (dir === undefined) return undefined;
  const word = options.argv[0];
  const command = word !== undefined && /^[a-z]{1,16}$/.test(word) ? word : 'default';
  const id = options.buildId.replace(/[^0-9a-zA-Z]/g, '').slice(0, 32);
  return join(dir, `${CACHE_FORMAT}-${id}-${process.version}-${process.arch}-${command}.bin`);
}

/**
 * Compiles `bundle` (CommonJS source) with the cached data when there is some, runs it as Node runs
 * a CommonJS module, and arranges for the cache to be written at exit when it was missing or
 * rejected. Returns what happened to the cache.
 */
export function runCommonJsBundle(bundle: string, options: RunOptions): CacheStatus {
  const file = cacheFile(options);
  let source = readFileSync(bundle, 'utf8');
  if (source.startsWith('#!')) source = `//${source.slice(2)}`; // a shebang line, as Node's loader skips it
  let cachedData: Buffer | undefined;
  let damaged = false;
  if (file !== undefined) {
    try {
      const bytes = readFileSync(file);
      cachedData = unpackCache(bytes);
      damaged = cachedData === undefined;
    } catch {
      // none yet (or unreadable): compile without
    }
  }
  // Node's own CommonJS wrapper, on the first line, so line numbers in stack traces stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
    filename: bundle,
    cachedData,
  });
  const status: CacheStatus =
    file === undefined ? 'off' : damaged || script.cachedDataRejected ? 'rejected' : cachedData === undefined ? 'miss' : 'hit';
  if (file !== undefined && status !== 'hit' && !profiled()) {
    process.once('exit', (code) => {
      if (code === 0) writeCache(file, script);
    });
  }
  const module = { exports: {} as unknown, filename: bundle, id: '.', loaded: false };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return status;
}

/** Node options that profile or debug the process. */
const PROFILING_OPTION = /^--(cpu-prof|heap-prof|prof|inspect|debug)/;

/**
 * Whether this process runs under a profiler or debugger (its Node options, or NODE_OPTIONS): a cache
 * written by such a run was accepted by later runs yet saved them nothing (measured: a sync reached
 * its connection as late as with no cache at all), so such a run uses a cache but writes none.
 */
export function profiled(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((option) => PROFILING_OPTION.test(option));
}

/** Caches (and temporary files left by a run killed while writing one) older than this are removed. */
export const CACHE_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

function writeCache(file: string, script: Script): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const data = script.createCachedData();
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(temp, packCache(data));
    renameSync(temp, file);
    pruneCaches(dirname(file), Date.now() - CACHE_MAX_AGE_MS);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // never written
    }
  }
}

/** Removes the cache directory's files last written before `before`. */
export function pruneCaches(dir: string, before: number): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.bin') && !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    try {
      if (statSync(path).mtimeMs < before) unlinkSync(path);
    } catch {
      // gone already, or not ours to remove
    }
  }
}
