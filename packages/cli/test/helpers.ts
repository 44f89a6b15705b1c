/** Shared by the CLI tests: the built CLI run as a child process, temp dirs and deterministic data. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const cliRoot = resolve(import.meta.dirname, '..');
export const bin = join(cliRoot, 'dist/bin.js');

/** The tests drive the built CLI; the root test command builds it first. */
export function requireBuild(): void {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (\`pnpm -r run build\`; \`npm test\` at the root does it)`);
}

export interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `node dist/bin.js ...args` in `cwd`; `input` becomes stdin through a pipe. */
export function deltacast(args: string[], cwd: string, options: { input?: Uint8Array; stdio?: SpawnSyncOptions['stdio'] } = {}): Run {
  requireBuild();
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    input: options.input,
    stdio: options.stdio,
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout ?? Buffer.alloc(0), stderr: result.stderr?.toString('utf8') ?? '' };
}

export function makeTempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `deltacast-cli-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function pseudoRandom(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x >>> 24;
  }
  return out;
}

/** A basis and a new version of it with a replaced range, an insert and a delete. */
export function basisAndNew(length: number): { basis: Uint8Array; next: Uint8Array } {
  const basis = pseudoRandom(length, 7);
  const a = Math.floor(length / 5);
  const b = Math.floor(length / 2);
  const c = Math.floor((length * 4) / 5);
  const next = Buffer.concat([
    basis.subarray(0, a),
    pseudoRandom(300, 11),
    basis.subarray(a + 300, b),
    pseudoRandom(1000, 13),
    basis.subarray(b, c),
    basis.subarray(c + 2000),
  ]);
  return { basis, next: new Uint8Array(next) };
}

/** Files in `dir` other than the expected ones: a failed command must leave no temp file behind. */
export function strayFiles(dir: string, expected: readonly string[]): string[] {
  return readdirSync(dir).filter((name) => !expected.includes(name));
}

/** NDJSON from `--json`: every non-empty line must parse (a line that does not throws, naming it). */
export function parseNdjson(stdout: Buffer | string): Record<string, unknown>[] {
  const text = typeof stdout === 'string' ? stdout : stdout.toString('utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${JSON.stringify(line)}`);
      }
    });
}
