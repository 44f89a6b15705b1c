/** `deltacast watch` as a process: NDJSON events, text lines, a clean stop on SIGTERM/SIGINT, usage errors. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { main } from '../src/main.js';
import { afterEach, describe, expect, it } from 'vitest';
import { bin, deltacast, makeTempDir, requireBuild } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tree() {
  const { dir, cleanup } = makeTempDir('watch');
  cleanups.push(cleanup);
  mkdirSync(join(dir, 'src/sub'), { recursive: true });
  writeFileSync(join(dir, 'src/a.txt'), 'a');
  return dir;
}

/** Starts `deltacast watch ...` and collects its output as it comes. */
function startWatch(args: string[], cwd: string) {
  requireBuild();
  const child = spawn(process.execPath, [bin, 'watch', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const until = async (condition: () => boolean, what: string) => {
    const deadline = Date.now() + 30_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, exited, until, out: () => stdout, err: () => stderr };
}

function events(text: string): { type: string; [key: string]: unknown }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string });
}

/** A stream that says it is a terminal, recording what is written to it. */
class FakeTerminal extends Writable {
  readonly isTTY = true;
  readonly columns = 100;
  text = '';
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString('utf8');
    callback();
  }
}

describe('deltacast watch in-process', () => {
  it('draws a live status line on a terminal and stops when io.signal aborts', async () => {
    const dir = tree();
    const stdout = new FakeTerminal();
    const stderr = new FakeTerminal();
    const stop = new AbortController();
    const done = main(['watch', '--delay', '0.1', '--settle', '0.1', `${dir}/src/`, `${dir}/d1`, `${dir}/d2`], { stdin: new PassThrough(), stdout, stderr, signal: stop.signal });
    const until = async (condition: () => boolean, what: string) => {
      for (const deadline = Date.now() + 30_000; !condition(); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${stdout.text}\n${JSON.stringify(stderr.text)}`);
      }
    };
    await until(() => /watching · 2\/2 up · idle · last batch \d\d:\d\d:\d\d: 1 file in/.test(stderr.text), 'the status line');
    writeFileSync(join(dir, 'src/c.txt'), 'c');
    await until(() => existsSync(join(dir, 'd2/c.txt')), 'c.txt at d2');
    await until(() => /last batch \d\d:\d\d:\d\d: 1 file in [\d.]+ s\s*$/.test(stderr.text.split('\r').pop() ?? ''), 'the status after the batch');
    stop.abort();
    expect(await done).toBe(0);
    // Every status line is drawn over the last one (carriage return, clear line) and never scrolls.
    expect(stderr.text).not.toMatch(/\n/);
    expect(stderr.text.endsWith('\r\x1b[2K')).toBe(true);
    expect(stdout.text).toMatch(/stopped\n$/);
    // Log lines clear the status line first, so they never share a line with it.
    expect(stdout.text.split('\n').every((line) => !line.includes('watching ·'))).toBe(true);
  });
});

describe('deltacast watch', () => {
  it('writes NDJSON events, replicates a change, and stops cleanly on SIGTERM (exit 0, locks released)', async () => {
    const dir = tree();
    const w = startWatch(['--json', '--delay', '0.1', '--settle', '0.2', 'src/', 'd1', 'd2'], dir);
    await w.until(() => events(w.out()).some((e) => e.type === 'batch-done' && e.reason === 'initial'), 'the first sync');
    expect(existsSync(join(dir, 'd1/.deltacast-lock'))).toBe(true); // held while watching
    writeFileSync(join(dir, 'src/sub/new.txt'), 'new');
    await w.until(() => existsSync(join(dir, 'd2/sub/new.txt')), 'the new file at d2');
    await w.until(() => events(w.out()).some((e) => e.type === 'batch-done' && e.reason === 'changes'), 'the batch event');
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    const all = events(w.out());
    expect(all[0]).toMatchObject({ type: 'watching', destinations: ['d1', 'd2'] });
    expect(all.filter((e) => e.type === 'file' && e.path === 'sub/new.txt').map((e) => e.destination)).toEqual(expect.arrayContaining(['d1', 'd2']));
    expect(readFileSync(join(dir, 'd1/sub/new.txt'), 'utf8')).toBe('new');
    for (const d of ['d1', 'd2']) expect(existsSync(join(dir, d, '.deltacast-lock'))).toBe(false);
  });

  it('prints a line per batch and destination, and "stopped" after SIGINT', async () => {
    const dir = tree();
    const w = startWatch(['--delay', '0.1', '--settle', '0.1', 'src/', 'd1'], dir);
    await w.until(() => w.out().includes('up to date'), 'the first sync');
    writeFileSync(join(dir, 'src/b.txt'), 'b');
    await w.until(() => /batch \d+: 1 new, 0 updated, 0 deleted; 1\/1 destinations/.test(w.out()), 'the batch line');
    w.child.kill('SIGINT');
    expect(await w.exited).toBe(0);
    expect(w.out()).toMatch(/watching src\/ \(2 directories\) for 1 destination\n/);
    expect(w.out()).toMatch(/stopped\n$/);
    expect(w.err()).toBe(''); // no live status line: stderr is not a terminal
  });

  it('refuses a source that is not a directory, and bad option values', () => {
    const dir = tree();
    const file = deltacast(['watch', 'src/a.txt', 'd1'], dir);
    expect(file.status).toBe(1);
    expect(file.stderr).toMatch(/not a directory/);
    const delay = deltacast(['watch', '--delay', 'soon', 'src/', 'd1'], dir);
    expect(delay.status).toBe(2);
    expect(delay.stderr).toMatch(/not a number of seconds/);
    const keep = deltacast(['watch', '--keep', '2', 'src/', 'd1'], dir);
    expect(keep.status).toBe(2);
    // A pull is sync's; watch follows a local tree.
    const remote = deltacast(['watch', 'web1:/srv/site/', 'd1'], dir);
    expect(remote.status).toBe(2);
    expect(remote.stderr).toMatch(/web1:\/srv\/site\/: the source must be a local path/);
  });
});
