/**
 * `deltacast sync` to local destinations (a child-process agent), through the built CLI: usage errors,
 * a missing source, filter rules from the command line and from a file, "dir" vs "dir/", --checksum.
 */
import type { SyncEvent, SyncSummary } from '@deltacast/transport';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_MTIME_MS, diffTrees, dir, file, hasRsync, link, snapshotTree, writeTree } from '../../transport/test/helpers/tree.js';
import { deltacast, makeTempDir, parseNdjson, pseudoRandom, type Run } from './helpers.js';

let work: string;
let cleanup: () => void;
let counter = 0;

beforeAll(() => {
  ({ dir: work, cleanup } = makeTempDir('sync'));
});
afterAll(() => cleanup?.());

/** A fresh path under the temp dir (not created). */
const fresh = (name: string) => join(work, `${name}-${++counter}`);
const sync = (...args: string[]) => deltacast(['sync', ...args], work);

/** Relative paths of everything under `root`, for comparing what arrived. */
async function paths(root: string): Promise<string[]> {
  return [...(await snapshotTree(root)).keys()].sort();
}

function summaryOf(run: Run): SyncSummary {
  const events = parseNdjson(run.stdout) as unknown as SyncEvent[];
  const last = events.at(-1);
  if (last?.type !== 'summary') throw new Error(`no summary event in ${run.stdout.toString()}`);
  return last.result;
}

describe('usage errors exit 2 and touch nothing', () => {
  it.each([
    ['a missing DEST', [], /missing required argument 'dest'/],
    ['port 0', ['-p', '0'], /--port <port>' argument '0' is invalid/],
    ['a port above 65535', ['--port', '65536'], /argument '65536' is invalid/],
    ['a port that is not a number', ['-p', 'ssh'], /argument 'ssh' is invalid/],
    ['an unknown option', ['--frobnicate'], /unknown option '--frobnicate'/],
    ['a remote shell with an unterminated quote', ['-e', "ssh -o 'x"], /--rsh <command>' argument .* is invalid\. remote shell .*: unterminated '/],
    ['an empty remote shell', ['--rsh', ' '], /--rsh <command>' argument ' ' is invalid\. the remote shell command is empty/],
    ['a timeout that is not a number', ['--timeout', 'soon'], /--timeout <seconds>' argument 'soon' is invalid\. not a number of seconds/],
    ['a negative connect timeout', ['--contimeout', '-1'], /--contimeout <seconds>' argument '-1' is invalid/],
    ['--size-only with --checksum', ['--size-only', '-c'], /--size-only and --checksum exclude each other/],
    ["rsync's -p (perms) among archive flags, where -p is the ssh port", ['-rlptD'], /argument 'tD' is invalid\. not an integer: tD \(-p is the ssh port here, as ssh's; rsync's -p, --perms, is always on/],
    ["rsync's -i (itemize) among archive flags, where -i is the ssh identity", ['-ai'], /is a directory, not a key \(-i is the ssh identity file here, as ssh's; for rsync's -i write --itemize-changes\)/],
    ['-H with --atomic tree', ['-H', '--atomic', 'tree'], /-H goes with --atomic file/],
    ['--backup with --atomic tree', ['-b', '--atomic', 'tree'], /--backup goes with --atomic file/],
    ['--suffix without --backup', ['--suffix', '.bak'], /--suffix goes with --backup or --backup-dir/],
    ['a backup directory outside the root', ['--backup-dir', '../old'], /path leaves the root/],
    ['-L with --safe-links', ['-L', '--safe-links'], /-L, --copy-unsafe-links and --safe-links exclude each other/],
    ['a --chmod clause that is no mode', ['--chmod', 'Fu=rw,u+q'], /--chmod <mode>' argument 'Fu=rw,u\+q' is invalid\. --chmod clause "u\+q" is not a mode/],
    ['a rate that is not one', ['--bwlimit', 'fast'], /--bwlimit <rate>' argument 'fast' is invalid\. not a rate/],
    ['a rate under 512 bytes per second', ['--bwlimit', '100b'], /--bwlimit <rate>' argument '100b' is invalid\. must be 0 \(no limit\) or at least 512/],
  ])('%s', async (_name, extra, message) => {
    const src = fresh('src');
    await writeTree(src, { 'f.txt': 'x' });
    const dest = fresh('dest');
    const run = sync(...extra, `${src}/`, ...(extra.length === 0 ? [] : [dest]));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout.toString()).toBe('');
    expect(existsSync(dest)).toBe(false);
  });
});

describe('--itemize-changes', () => {
  it("prints rsync -i's codes, each line naming its destination when there are several; -n too", async () => {
    const src = fresh('src');
    await writeTree(src, { 'f.txt': file('new\n', { mtimeMs: BASE_MTIME_MS }), d: dir({ mtimeMs: BASE_MTIME_MS }), 'd/l': link('../f.txt', { mtimeMs: BASE_MTIME_MS }) });
    const one = fresh('one');
    const two = fresh('two');
    await writeTree(two, { 'f.txt': file('old\n', { mtimeMs: BASE_MTIME_MS - 60_000 }), gone: dir(), 'gone/x': 'x' });
    // The roots' own mtimes differ (rsync's `./`), whatever second each was made in.
    utimesSync(src, BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
    utimesSync(two, (BASE_MTIME_MS - 60_000) / 1000, (BASE_MTIME_MS - 60_000) / 1000);
    const lines = (run: Run) => run.stdout.toString().split('\n').filter((l) => / [.<>c*][fdL. ]/.test(l) && !/: (ok|FAILED);/.test(l) && !l.includes('changed files:'));
    const dry = sync('-n', '--itemize-changes', '--delete', `${src}/`, one, two);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    const expected = [
      `${one}: cd+++++++++ ./`,
      `${two}: .d..t...... ./`,
      `${one}: cd+++++++++ d/`,
      `${one}: >f+++++++++ f.txt`,
      `${one}: cL+++++++++ d/l -> ../f.txt`,
      `${two}: *deleting   gone/x`,
      `${two}: *deleting   gone/`,
      `${two}: cd+++++++++ d/`,
      `${two}: >f..t...... f.txt`,
      `${two}: cL+++++++++ d/l -> ../f.txt`,
    ];
    expect(lines(dry).sort()).toEqual([...expected].sort());
    // As rsync -n, the dry run made nothing, not even the missing destination.
    expect(existsSync(one)).toBe(false);
    const real = sync('--itemize-changes', '--delete', `${src}/`, one, two);
    expect(real.status).toBe(0);
    expect(lines(real).sort()).toEqual([...expected].sort());
    // Nothing left to change: no lines.
    expect(lines(sync('--itemize-changes', '--delete', `${src}/`, one, two))).toEqual([]);
  });
});

describe('--delete-after and rsync\'s other --delete-WHEN', () => {
  it.each(['--delete-after', '--delete-delay', '--delete-before', '--delete-during'])('%s turns deletions on', async (flag) => {
    const src = fresh('src');
    await writeTree(src, { 'a.txt': 'a' });
    const dest = fresh('dest');
    await writeTree(dest, { 'a.txt': 'a', 'extra.txt': 'x' });
    const run = sync(flag, `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(join(dest, 'extra.txt'))).toBe(false);
  });
});

describe('-H', () => {
  it('keeps hard links, itemized as rsync -iH does, and counts them in the summary', async () => {
    const src = fresh('src');
    await writeTree(src, { a: file('linked\n', { mtimeMs: BASE_MTIME_MS }) });
    linkSync(join(src, 'a'), join(src, 'b'));
    const dest = fresh('dest');
    const run = sync('-H', '--itemize-changes', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.toString()).toContain('hf+++++++++ b => a\n');
    expect(run.stdout.toString()).toMatch(/1 created, .*1 hard links;/);
    expect(lstatSync(join(dest, 'b')).ino).toBe(lstatSync(join(dest, 'a')).ino);
  });
});

describe('transfer rules on several destinations', () => {
  it('-u leaves a file edited later at one destination; the other is updated; the summary counts it skipped', async () => {
    const src = fresh('src');
    await writeTree(src, { 'page.html': file('<p>new</p>\n', { mtimeMs: BASE_MTIME_MS }), 'other.txt': file('o\n', { mtimeMs: BASE_MTIME_MS }) });
    const edited = fresh('edited');
    const stale = fresh('stale');
    await writeTree(edited, { 'page.html': file('<p>hot fix</p>\n', { mtimeMs: BASE_MTIME_MS + 60_000 }) });
    await writeTree(stale, { 'page.html': file('<p>old</p>\n', { mtimeMs: BASE_MTIME_MS - 60_000 }) });
    const run = sync('-u', `${src}/`, edited, stale);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readFileSync(join(edited, 'page.html'), 'utf8')).toBe('<p>hot fix</p>\n');
    expect(readFileSync(join(stale, 'page.html'), 'utf8')).toBe('<p>new</p>\n');
    expect(readFileSync(join(edited, 'other.txt'), 'utf8')).toBe('o\n');
    const lines = run.stdout.toString().split('\n');
    expect(lines.find((l) => l.startsWith(`${edited}:`))).toContain('1 created, 0 updated, 0 deleted, 0 unchanged, 1 skipped');
    expect(lines.find((l) => l.startsWith(`${stale}:`))).toContain('1 created, 1 updated, 0 deleted, 0 unchanged;');
  });
});

describe('--delete-excluded and --max-size', () => {
  it('--delete-excluded turns deletions on and takes excluded files too; --max-size leaves a large file unsent', async () => {
    const src = fresh('src');
    await writeTree(src, { 'index.html': 'i\n', 'video.bin': file(pseudoRandom(4096, 2)), 'debug.tmp': 'scratch\n' });
    const dest = fresh('dest');
    await writeTree(dest, { 'stale.tmp': 'old scratch\n', 'gone.html': 'g\n' });
    const run = sync('--delete-excluded', '--exclude', '*.tmp', '--max-size', '1K', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect((await paths(dest)).filter((p) => p !== '')).toEqual(['index.html']);
    expect(run.stdout.toString()).toContain('1 created, 0 updated, 2 deleted, 0 unchanged, 1 skipped');
  });
});

describe("rsync's archive flags", () => {
  it('-avz, -rltD and -P are taken as rsync users type them, and change nothing deltacast does not do anyway', async () => {
    const src = fresh('src');
    await writeTree(src, { 'a.txt': file('a', { mode: 0o640, mtimeMs: BASE_MTIME_MS }), 'd/b.txt': 'b\n' });
    symlinkSync('a.txt', join(src, 'link'));
    for (const flags of [['-avz', '--delete'], ['-rltDP'], ['-a', '-r', '-l', '--perms', '-t', '-D', '-o', '-g'], ['-axx']]) {
      const dest = fresh('dest');
      const run = sync(...flags, `${src}/`, dest);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(await diffTrees(src, dest)).toEqual([]);
    }
  });
});

describe('symlinks with -L', () => {
  it('sends what links point to; a dangling one fails (exit 23), named on stderr, and the rest arrives', async () => {
    const src = fresh('src');
    await writeTree(src, { 'real/page.html': 'p\n' });
    symlinkSync('real', join(src, 'alias'));
    symlinkSync('missing', join(src, 'broken'));
    const dest = fresh('dest');
    const run = sync('-L', `${src}/`, dest);
    expect(run.status).toBe(23);
    expect(run.stderr).toBe('deltacast: sync: broken: NO_REFERENT: symlink has no referent: broken\n');
    expect(readFileSync(join(dest, 'alias/page.html'), 'utf8')).toBe('p\n');
    expect(lstatSync(join(dest, 'alias')).isDirectory()).toBe(true);
  });
});

describe('--backup', () => {
  it('--backup-dir keeps replaced and deleted files under the directory, --suffix names them', async () => {
    const src = fresh('src');
    await writeTree(src, { 'page.html': file('<p>v2</p>\n', { mtimeMs: BASE_MTIME_MS }) });
    const dest = fresh('dest');
    await writeTree(dest, { 'page.html': file('<p>v1</p>\n', { mtimeMs: BASE_MTIME_MS - 60_000 }), 'old.css': 'gone\n' });
    const run = sync('--delete', '--backup-dir', '.backup', '--suffix', '.1', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readFileSync(join(dest, 'page.html'), 'utf8')).toBe('<p>v2</p>\n');
    expect(readFileSync(join(dest, '.backup/page.html.1'), 'utf8')).toBe('<p>v1</p>\n');
    expect(readFileSync(join(dest, '.backup/old.css.1'), 'utf8')).toBe('gone\n');
    expect(existsSync(join(dest, 'old.css'))).toBe(false);
  });
});

describe('--chmod', () => {
  it('applies every --chmod, in order, to the modes sent; the source keeps its own', async () => {
    const src = fresh('src');
    await writeTree(src, { 'private.txt': file('p', { mode: 0o600 }), 'tool.sh': file('#!/bin/sh\n', { mode: 0o700 }) });
    const dest = fresh('dest');
    const run = sync('--chmod', 'Fu=rw,Fgo=r', '--chmod', 'F+X', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const tree = await snapshotTree(dest);
    expect(tree.get('private.txt')?.mode).toBe(0o644);
    expect(tree.get('tool.sh')?.mode).toBe(0o755);
    expect((await snapshotTree(src)).get('private.txt')?.mode).toBe(0o600);
  });
});

describe('--bwlimit', () => {
  it('paces the data sent (as rsync: KiB/s, or with a suffix) and the tree arrives whole', async () => {
    const src = fresh('src');
    await writeTree(src, { 'a.bin': file(pseudoRandom(600 * 1024, 5)), 'b.txt': 'b\n' });
    const dest = fresh('dest');
    const run = sync('--json', '--bwlimit', '1M', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(await diffTrees(src, dest)).toEqual([]);
    // 600 KiB at 1 MiB/s is 586 ms, less the first piece (50 ms), which goes at once.
    expect(summaryOf(run).durationMs).toBeGreaterThanOrEqual(520);
    const unlimited = sync('--json', '--bwlimit', '0', `${src}/`, fresh('dest'));
    expect(unlimited.status).toBe(0);
  });
});

describe('a destination another run holds', () => {
  it('exits 1 naming the destination and LOCKED, and changes nothing there', async () => {
    const src = fresh('src');
    await writeTree(src, { 'f.txt': 'x' });
    const dest = fresh('dest');
    mkdirSync(dest);
    // Held by a process that is alive (this one) on this host.
    writeFileSync(join(dest, '.deltacast-lock'), `${hostname()} ${process.pid}\n`);
    const run = sync(`${src}/`, dest);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^deltacast: sync: ${dest}: LOCKED: agent refused the session: destination is locked by another deltacast run`));
    expect(readdirSync(dest)).toEqual(['.deltacast-lock']);
  });
});

describe('a remote source (a pull)', () => {
  it.each(['no-such-host.invalid:/srv/site/', 'deploy@no-such-host.invalid:site', 'ssh://no-such-host.invalid:2222/srv/site'])(
    '%s: a host that cannot be reached (or logged in to) is a connection failure (255), and no destination is made',
    (source) => {
      const dest = fresh('dest');
      const run = sync('--contimeout', '5', source, dest);
      expect(run.status).toBe(255);
      expect(run.stderr).toMatch(new RegExp(`^deltacast: sync: ${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (CONNECT|AUTH): `));
      expect(existsSync(dest)).toBe(false);
    },
  );

  it('goes to one local destination: two remote sides, or several destinations, are usage errors', () => {
    const both = sync('web1:/srv/site/', 'web2:/srv/site');
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('web1:/srv/site/ and web2:/srv/site are both remote: one side must be local');
    const several = sync('web1:/srv/site/', fresh('a'), fresh('b'));
    expect(several.status).toBe(2);
    expect(several.stderr).toContain('goes to one local destination, not 2');
  });
});

describe('a missing source', () => {
  it('exits 1 with ENOENT and creates no destination', () => {
    const dest = fresh('dest');
    const run = sync(join(work, 'no-such-source/'), dest);
    expect(run.status).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^deltacast: sync: ENOENT: .*no-such-source/);
    expect(existsSync(dest)).toBe(false);
  });

  it('is reported before any connection is attempted (exit 1, not a connection failure)', () => {
    const run = sync(join(work, 'no-such-source'), 'no-such-host.invalid:/srv/site');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('ENOENT');
    expect(run.stderr).not.toContain('no-such-host');
  });
});

describe('filters from the command line', () => {
  const spec = {
    'a.log': 'a',
    'keep.log': 'keep',
    'build/out.o': 'o',
    'src/main.ts': 'main',
    'src/tmp/scratch': 'scratch',
    'src/build/generated.ts': 'gen',
    'notes.tmp': 'tmp',
    'important.tmp': 'important',
    'top-only': 'top',
    'src/top-only': 'nested',
  };

  it('--include before --exclude keeps a file the exclude would drop; a directory pattern drops the whole subtree', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, spec);
    const run = sync('--include', 'keep.log', '--exclude', '*.log', '--exclude', 'build/', '--exclude', 'tmp', `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(await paths(dest)).toEqual(['important.tmp', 'keep.log', 'notes.tmp', 'src', 'src/main.ts', 'src/top-only', 'top-only']);
  });

  it('the first matching rule wins: an --include after a matching --exclude has no effect', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, spec);
    const run = sync('--exclude', '*.log', '--include', 'keep.log', `${src}/`, dest);
    expect(run.status).toBe(0);
    const arrived = await paths(dest);
    expect(arrived).not.toContain('keep.log');
    expect(arrived).not.toContain('a.log');
    expect(arrived).toContain('src/main.ts');
  });

  it('--exclude-from reads comments, "+ " and "- " prefixes and anchored patterns, after the command-line rules', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, spec);
    const rules = join(work, `rules-${++counter}.txt`);
    writeFileSync(rules, ['# build output and scratch files', '+ important.tmp', '*.tmp', '- /top-only', '', 'build/'].join('\n'));
    const run = sync('--exclude', 'a.log', '--include', 'notes.tmp', '--exclude-from', rules, `${src}/`, dest);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(await paths(dest)).toEqual(['important.tmp', 'keep.log', 'notes.tmp', 'src', 'src/main.ts', 'src/tmp', 'src/tmp/scratch', 'src/top-only']);
  });

  // rsync applies --exclude-from rules where the option stands; deltacast appends every file's rules
  // after all --exclude/--include options, so a later --include overrides an earlier file's exclude.
  it('--exclude-from rules take effect at their place among the options, as in rsync', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, { 'notes.tmp': 'tmp', 'keep.txt': 'keep' });
    const rules = join(work, `rules-${++counter}.txt`);
    writeFileSync(rules, '*.tmp\n');
    const run = sync('--exclude-from', rules, '--include', 'notes.tmp', `${src}/`, dest);
    expect(run.status).toBe(0);
    expect(await paths(dest)).toEqual(['keep.txt']);
  });

  it('--delete leaves excluded destination files alone', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, { 'f.txt': 'f' });
    await writeTree(dest, { 'f.txt': 'f', 'stale.txt': 'stale', 'server.log': 'log' });
    const run = sync('--delete', '--exclude', '*.log', '-v', `${src}/`, dest);
    expect(run.status).toBe(0);
    expect(run.stdout.toString()).toContain('*deleting stale.txt\n');
    expect(await paths(dest)).toEqual(['f.txt', 'server.log']);
  });
});

describe('"dir" sends the directory, "dir/" its contents', () => {
  it('with and without the trailing slash', async () => {
    const src = fresh('site');
    await writeTree(src, { 'index.html': 'index', 'css/site.css': 'css' });
    const name = src.slice(src.lastIndexOf('/') + 1);

    const contents = fresh('dest');
    expect(sync(`${src}/`, contents).status).toBe(0);
    expect(await paths(contents)).toEqual(['css', 'css/site.css', 'index.html']);
    expect(await diffTrees(src, contents)).toEqual([]);

    const itself = fresh('dest');
    expect(sync(src, itself).status).toBe(0);
    expect(await paths(itself)).toEqual([name, `${name}/css`, `${name}/css/site.css`, `${name}/index.html`]);
    expect(await diffTrees(src, join(itself, name))).toEqual([]);
  });

  it('--delete with "dir" only deletes inside dir at the destination', async () => {
    const src = fresh('site');
    await writeTree(src, { 'index.html': 'index' });
    const name = src.slice(src.lastIndexOf('/') + 1);
    const dest = fresh('dest');
    await writeTree(dest, { 'unrelated.txt': 'keep', [`${name}/index.html`]: 'old', [`${name}/stale.html`]: 'stale' });
    const run = sync('--delete', src, dest);
    expect(run.status).toBe(0);
    expect(await paths(dest)).toEqual([name, `${name}/index.html`, 'unrelated.txt']);
    expect(readFileSync(join(dest, name, 'index.html'), 'utf8')).toBe('index');
  });
});

describe('--checksum', () => {
  it('catches a change that keeps the size and the mtime; the quick check does not', async () => {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, { 'data.txt': file('version one\n', { mtimeMs: BASE_MTIME_MS }) });
    expect(sync(`${src}/`, dest).status).toBe(0);

    writeFileSync(join(src, 'data.txt'), 'version two\n');
    utimesSync(join(src, 'data.txt'), BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);

    const quick = sync('--json', `${src}/`, dest);
    expect(quick.status).toBe(0);
    expect(summaryOf(quick)).toMatchObject({ updated: 0, unchanged: 1 });
    expect(readFileSync(join(dest, 'data.txt'), 'utf8')).toBe('version one\n');

    const checked = sync('--json', '--checksum', `${src}/`, dest);
    expect(checked.status).toBe(0);
    expect(summaryOf(checked)).toMatchObject({ ok: true, updated: 1, unchanged: 0 });
    expect(readFileSync(join(dest, 'data.txt'), 'utf8')).toBe('version two\n');
    expect(await diffTrees(src, dest)).toEqual([]);

    // Same content, so nothing more to do.
    expect(summaryOf(sync('--json', '-c', `${src}/`, dest))).toMatchObject({ updated: 0, unchanged: 1, sentBytes: 0 });
  });
});

describe('-v itemize output', () => {
  // rsync writes such a name as `new\#012line`; printed raw, one change reads as two lines and the
  // second looks like a change of its own.
  it('keeps one line per change when a name holds a newline', async () => {
    const src = fresh('src');
    await writeTree(src, { 'new\nline': 'x' });
    const run = sync('-v', `${src}/`, fresh('dest'));
    expect(run.status).toBe(0);
    const lines = run.stdout.toString('utf8').trimEnd().split('\n');
    // The destination root the run made, the file, the summary.
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('cd+ ./');
    expect(lines[1]).toMatch(/^>f\+ new.+line$/);
  });
});

describe('--max-delete', () => {
  const limitMessage = (skipped: number, of: number, max: number) =>
    `MAX_DELETE: the --max-delete limit stopped deletions: ${skipped} of ${of} extraneous entries skipped (at most ${max} per run)`;

  /** A source with a new file for a destination that holds three extraneous files. */
  async function overLimit(): Promise<{ src: string; dest: string }> {
    const src = fresh('src');
    const dest = fresh('dest');
    await writeTree(src, { 'keep.txt': 'keep', 'new.txt': 'new' });
    await writeTree(dest, { 'keep.txt': 'keep', 'e1.txt': '1', 'e2.txt': '2', 'e3.txt': '3' });
    return { src, dest };
  }

  it('exits 25 with the MAX_DELETE message when the limit stops deletions, having sent the files and deleted up to the limit', async () => {
    const { src, dest } = await overLimit();
    const run = sync('--delete', '--max-delete', '2', '-v', `${src}/`, dest);
    expect(run.status).toBe(25);
    expect(run.stderr).toBe(`deltacast: sync: ${dest}: ${limitMessage(1, 3, 2)}\n`);
    const out = run.stdout.toString();
    expect(out).toContain('*deleting e1.txt\n*deleting e2.txt\n');
    expect(out).not.toContain('e3.txt');
    expect(out).toMatch(/1 created, 0 updated, 2 deleted, .*; 1 failed\n$/);
    expect(await paths(dest)).toEqual(['e3.txt', 'keep.txt', 'new.txt']);
  });

  it('--json: the MAX_DELETE error event (path "") and a summary that is not ok', async () => {
    const { src, dest } = await overLimit();
    const run = sync('--json', '--delete', '--max-delete', '0', `${src}/`, dest);
    expect(run.status).toBe(25);
    const events = parseNdjson(run.stdout) as unknown as SyncEvent[];
    expect(events.filter((e) => e.type === 'error')).toEqual([
      { type: 'error', destination: dest, path: '', code: 'MAX_DELETE', message: limitMessage(3, 3, 0).slice('MAX_DELETE: '.length) },
    ]);
    expect(summaryOf(run)).toMatchObject({ ok: false, deleted: 0, created: 1 });
    expect(await paths(dest)).toEqual(['e1.txt', 'e2.txt', 'e3.txt', 'keep.txt', 'new.txt']);
  });

  it('-n: itemizes only the deletions that would happen, exits 25, changes nothing', async () => {
    const { src, dest } = await overLimit();
    const run = sync('-n', '--delete', '--max-delete', '1', `${src}/`, dest);
    expect(run.status).toBe(25);
    expect(run.stdout.toString()).toContain('*deleting e1.txt\n');
    expect(run.stdout.toString()).not.toMatch(/e[23]\.txt/);
    expect(run.stderr).toContain(limitMessage(2, 3, 1));
    expect(await paths(dest)).toEqual(['e1.txt', 'e2.txt', 'e3.txt', 'keep.txt']);
  });

  it('exits 0 when the limit is not reached', async () => {
    const { src, dest } = await overLimit();
    expect(sync('--delete', '--max-delete', '3', `${src}/`, dest).status).toBe(0);
    expect(await paths(dest)).toEqual(['keep.txt', 'new.txt']);
  });

  it('with several destinations: 25 when the limit is all that failed, 23 when something else failed too', async () => {
    const { src, dest } = await overLimit();
    const other = fresh('dest');
    await writeTree(other, { 'e1.txt': '1' });
    const run = sync('--delete', '--max-delete', '2', `${src}/`, dest, other);
    expect(run.status).toBe(25);
    expect(run.stderr).toBe(`deltacast: sync: ${dest}: ${limitMessage(1, 3, 2)}\n`);
    expect(await paths(other)).toEqual(['keep.txt', 'new.txt']);

    // A destination below a regular file cannot be opened: a failure worse than the limit.
    const again = await overLimit();
    const blocked = join(again.dest, 'keep.txt', 'below');
    const worse = sync('--delete', '--max-delete', '2', `${again.src}/`, again.dest, blocked);
    expect(worse.status).toBe(23);
    expect(worse.stderr).toContain(limitMessage(1, 3, 2));
    expect(worse.stderr).toContain('ENOTDIR');
  });

  it('--all-or-none: a destination over the limit keeps every destination as it was, exit 25', async () => {
    const { src, dest } = await overLimit();
    const other = fresh('dest');
    await writeTree(other, { 'keep.txt': 'keep' });
    const run = sync('--delete', '--max-delete', '2', '--all-or-none', `${src}/`, dest, other);
    expect(run.status).toBe(25);
    expect(run.stderr).toContain(`${dest}: ${limitMessage(1, 3, 2)}`);
    expect(run.stderr).toContain(`${other}: ABORTED`);
    expect(await paths(dest)).toEqual(['e1.txt', 'e2.txt', 'e3.txt', 'keep.txt']);
    expect(await paths(other)).toEqual(['keep.txt']);
  });

  it('rejects a negative or non-integer limit as a usage error', async () => {
    const { src, dest } = await overLimit();
    for (const bad of ['-1', '1.5', 'all']) {
      const run = sync('--delete', '--max-delete', bad, `${src}/`, dest);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/--max-delete <num>' argument .* is invalid/);
    }
    expect(await paths(dest)).toEqual(['e1.txt', 'e2.txt', 'e3.txt', 'keep.txt']);
  });

  it('is listed in the help with exit code 25', () => {
    const help = sync('--help').stdout.toString();
    expect(help).toContain('--max-delete <num>');
    expect(help).toMatch(/\n {2}25 {3}the --max-delete limit stopped deletions/);
  });
});

describe('--stats', () => {
  /** rsync --stats lines as name -> value (the lines both print). */
  const SHARED = [
    'Number of files',
    'Number of created files',
    'Number of deleted files',
    'Number of regular files transferred',
    'Total file size',
    'Total transferred file size',
    'Literal data',
    'Matched data',
  ];
  const figures = (text: string) => new Map(text.split('\n').flatMap((line) => {
    const at = line.indexOf(': ');
    return at > 0 ? [[line.slice(0, at), line.slice(at + 2)] as [string, string]] : [];
  }));

  it("prints rsync's figures, the same as rsync --stats for an initial copy, an update with deletions, and a dry run", async () => {
    const src = fresh('src');
    await writeTree(src, {
      'a.txt': file('alpha\n', { mtimeMs: BASE_MTIME_MS }),
      'big.bin': file(pseudoRandom(300_000, 5), { mtimeMs: BASE_MTIME_MS }),
      'sub/b.txt': file('beta\n', { mtimeMs: BASE_MTIME_MS }),
      'sub/empty': dir({ mtimeMs: BASE_MTIME_MS }),
      'link': link('a.txt', { mtimeMs: BASE_MTIME_MS }),
      'old.txt': file('old\n', { mtimeMs: BASE_MTIME_MS }),
    });
    const ours = fresh('ours');
    const theirs = fresh('theirs');
    const compare = (args: string[], names = SHARED) => {
      const run = sync('--stats', ...args, `${src}/`, ours);
      expect(run.status).toBe(0);
      const got = figures(run.stdout.toString());
      for (const name of SHARED) expect(got.has(name), name).toBe(true);
      expect(Number(got.get('Total bytes sent')!.replace(/,/g, ''))).toBeGreaterThan(0);
      expect(run.stdout.toString()).toMatch(/\nsent [\d,]+ bytes {2}received [\d,]+ bytes {2}[\d,.]+ bytes\/sec\ntotal size is [\d,]+ {2}speedup is [\d.]+/);
      if (!hasRsync) return got;
      const rsync = spawnSync('rsync', ['-a', '--stats', ...args, `${src}/`, theirs], { encoding: 'utf8' });
      expect(rsync.status).toBe(0);
      const want = figures(rsync.stdout);
      for (const name of names) expect(got.get(name), name).toBe(want.get(name));
      return got;
    };
    compare([]); // everything created, the root too
    writeFileSync(join(src, 'big.bin'), Buffer.concat([pseudoRandom(300_000, 5).subarray(0, 150_000), Buffer.from('changed'), pseudoRandom(300_000, 5).subarray(150_000)]));
    utimesSync(join(src, 'big.bin'), (BASE_MTIME_MS + 5_000) / 1000, (BASE_MTIME_MS + 5_000) / 1000);
    rmSync(join(src, 'old.txt'));
    compare(['-n', '--delete']);
    // A delta (rsync copies whole files between local paths, so its data lines are not compared).
    const got = compare(['--delete'], SHARED.filter((name) => name !== 'Literal data' && name !== 'Matched data'));
    const bytes = (name: string) => Number(got.get(name)!.replace(/[, a-z]/g, ''));
    expect(bytes('Literal data') + bytes('Matched data')).toBe(bytes('Total transferred file size'));
    expect(bytes('Literal data')).toBeLessThan(10_000);
  });
});

describe("--filter ':- .gitignore'", () => {
  it.skipIf(!hasRsync)("leaves out what each directory's .gitignore names, as rsync --filter=':- .gitignore' does, --delete-after sparing it at the destination", async () => {
    const src = fresh('src');
    await writeTree(src, {
      '.gitignore': file('*.log\n/dist/\n', { mtimeMs: BASE_MTIME_MS }),
      'app.js': file('app\n', { mtimeMs: BASE_MTIME_MS }),
      'debug.log': file('noise\n', { mtimeMs: BASE_MTIME_MS }),
      'dist/bundle.js': file('built\n', { mtimeMs: BASE_MTIME_MS }),
      'web/.gitignore': file('/cache/\nsecret.txt\n', { mtimeMs: BASE_MTIME_MS }),
      'web/index.html': file('<p>\n', { mtimeMs: BASE_MTIME_MS }),
      'web/secret.txt': file('s\n', { mtimeMs: BASE_MTIME_MS }),
      'web/cache/x': file('x\n', { mtimeMs: BASE_MTIME_MS }),
      'web/dist/kept.js': file('only the top dist/ is anchored\n', { mtimeMs: BASE_MTIME_MS }),
      'web/deep/secret.txt': file('s\n', { mtimeMs: BASE_MTIME_MS }),
      'web/deep/cache/y': file('a cache/ below web/ is not web/cache/\n', { mtimeMs: BASE_MTIME_MS }),
      'web/deep/app.log': file('l\n', { mtimeMs: BASE_MTIME_MS }),
    });
    const ours = fresh('ours');
    const theirs = fresh('theirs');
    for (const dest of [ours, theirs]) {
      mkdirSync(join(dest, 'web'), { recursive: true });
      writeFileSync(join(dest, 'web/secret.txt'), 'the destination keeps its own\n');
      writeFileSync(join(dest, 'stale.txt'), 'extraneous\n');
    }
    // --delete-after: rsync spares what a destination directory's own .gitignore names, so that file
    // must have arrived first; deltacast goes by the source's files, before or after.
    const run = sync('--delete-after', '--filter', ':- .gitignore', `${src}/`, ours);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const rsync = spawnSync('rsync', ['-a', '--delete-after', '--filter=:- .gitignore', `${src}/`, `${theirs}/`], { encoding: 'utf8' });
    expect(rsync.status).toBe(0);
    // The same entries (rsync leaves a directory's time alone within the second, so times are not compared with its).
    expect(await paths(ours)).toEqual(await paths(theirs));
    expect(await paths(ours)).toEqual(['.gitignore', 'app.js', 'web', 'web/.gitignore', 'web/deep', 'web/deep/cache', 'web/deep/cache/y', 'web/dist', 'web/dist/kept.js', 'web/index.html', 'web/secret.txt']);
    expect(readFileSync(join(ours, 'web/secret.txt'), 'utf8')).toBe('the destination keeps its own\n');

    // The source's files decide what --delete spares, whenever the deletions happen.
    const during = fresh('during');
    mkdirSync(join(during, 'web'), { recursive: true });
    writeFileSync(join(during, 'web/secret.txt'), 'kept\n');
    expect(sync('--delete', '--filter', ':- .gitignore', `${src}/`, during).status).toBe(0);
    expect(readFileSync(join(during, 'web/secret.txt'), 'utf8')).toBe('kept\n');
  });

  it('refuses a rule it does not take (usage, exit 2)', () => {
    const run = sync('--filter', 'P protect', `${fresh('src')}/`, fresh('dest'));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--filter <rule>' argument 'P protect' is invalid\. filter rule "P protect": expected/);
  });
});

describe('--link-dest', () => {
  it('hard-links unchanged files from the previous snapshot and says how many', async () => {
    const snaps = fresh('snaps');
    const src = fresh('src');
    await writeTree(src, { 'a.txt': file('a\n', { mtimeMs: BASE_MTIME_MS }), 'b.txt': file('b\n', { mtimeMs: BASE_MTIME_MS }) });
    expect(sync(`${src}/`, join(snaps, 'monday')).status).toBe(0);
    writeFileSync(join(src, 'b.txt'), 'b, edited\n');
    const run = sync('--link-dest', '../monday', `${src}/`, join(snaps, 'tuesday'));
    expect(run.status).toBe(0);
    expect(run.stdout.toString()).toMatch(/1 created, .*1 linked from --link-dest;/);
    expect(lstatSync(join(snaps, 'tuesday/a.txt')).ino).toBe(lstatSync(join(snaps, 'monday/a.txt')).ino);
    expect(readFileSync(join(snaps, 'tuesday/b.txt'), 'utf8')).toBe('b, edited\n');
    expect(readFileSync(join(snaps, 'monday/b.txt'), 'utf8')).toBe('b\n');
  });

  it('goes with --atomic file only, and with neither --copy-dest nor --compare-dest (usage, exit 2)', () => {
    const run = sync('--link-dest', '../x', '--atomic', 'tree', `${fresh('src')}/`, fresh('dest'));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--link-dest goes with --atomic file/);
    const both = sync('--link-dest', '../x', '--compare-dest', '../y', `${fresh('src')}/`, fresh('dest'));
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--link-dest, --copy-dest and --compare-dest exclude each other/);
  });

  it('--compare-dest leaves out what the other directory holds as it is (a differential backup)', async () => {
    const snaps = fresh('snaps');
    const src = fresh('src');
    await writeTree(src, { 'a.txt': file('a\n', { mtimeMs: BASE_MTIME_MS }), 'b.txt': file('b\n', { mtimeMs: BASE_MTIME_MS }) });
    expect(sync(`${src}/`, join(snaps, 'full')).status).toBe(0);
    writeFileSync(join(src, 'b.txt'), 'b, edited\n');
    const run = sync('--compare-dest', '../full', `${src}/`, join(snaps, 'diff'));
    expect(run.status).toBe(0);
    expect(run.stdout.toString()).toMatch(/1 created, .*1 skipped/);
    expect(readdirSync(join(snaps, 'diff'))).toEqual(['b.txt']);
  });
});

describe('-y, --fuzzy', () => {
  it('sends a renamed file as a delta against its old name', async () => {
    const src = fresh('src');
    await writeTree(src, { 'v1.bin': file(pseudoRandom(200_000, 8), { mtimeMs: BASE_MTIME_MS }) });
    const dest = fresh('dest');
    expect(sync(`${src}/`, dest).status).toBe(0);
    writeFileSync(join(src, 'v2.bin'), readFileSync(join(src, 'v1.bin')));
    utimesSync(join(src, 'v2.bin'), BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
    rmSync(join(src, 'v1.bin'));
    const run = sync('-y', '--delete', '--json', `${src}/`, dest);
    expect(run.status).toBe(0);
    expect(summaryOf(run)).toMatchObject({ ok: true, created: 1, deleted: 1, matchedBytes: 200_000 });
    expect(readdirSync(dest)).toEqual(['v2.bin']);
  });
});

describe('-I, --ignore-times', () => {
  it('sends a file whose size and mtime match but whose content does not, which the quick check passes over, as rsync -I does', async () => {
    const src = fresh('src');
    await writeTree(src, { 'a.txt': file('same size\n', { mtimeMs: BASE_MTIME_MS }), 'b.txt': file('untouched\n', { mtimeMs: BASE_MTIME_MS }) });
    const dest = fresh('dest');
    expect(sync(`${src}/`, dest).status).toBe(0);
    writeFileSync(join(dest, 'a.txt'), 'SAME SIZE\n');
    utimesSync(join(dest, 'a.txt'), BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
    const quick = sync('--json', `${src}/`, dest);
    expect(summaryOf(quick)).toMatchObject({ ok: true, updated: 0 });
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('SAME SIZE\n');
    const run = sync('--json', '-I', `${src}/`, dest);
    expect(summaryOf(run)).toMatchObject({ ok: true, updated: 2, unchanged: 0 });
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('same size\n');
    if (hasRsync) {
      const theirs = fresh('theirs');
      expect(spawnSync('rsync', ['-a', `${src}/`, `${theirs}/`]).status).toBe(0);
      writeFileSync(join(theirs, 'a.txt'), 'SAME SIZE\n');
      utimesSync(join(theirs, 'a.txt'), BASE_MTIME_MS / 1000, BASE_MTIME_MS / 1000);
      const rsync = spawnSync('rsync', ['-aI', '--stats', `${src}/`, `${theirs}/`], { encoding: 'utf8' });
      expect(rsync.stdout).toMatch(/Number of regular files transferred: 2/);
      expect(readFileSync(join(theirs, 'a.txt'), 'utf8')).toBe('same size\n');
    }
  });
});

describe('--remove-source-files', () => {
  it('moves the files, and takes one destination (usage, exit 2, for several)', async () => {
    const src = fresh('src');
    await writeTree(src, { 'a.txt': file('a\n'), 'sub/b.txt': file('b\n') });
    const several = sync('--remove-source-files', `${src}/`, fresh('one'), fresh('two'));
    expect(several.status).toBe(2);
    expect(several.stderr).toMatch(/--remove-source-files takes one destination/);
    const dest = fresh('dest');
    const run = sync('--remove-source-files', `${src}/`, dest);
    expect(run.status).toBe(0);
    expect(run.stdout.toString()).toMatch(/2 removed from the source/);
    expect(await paths(src)).toEqual(['sub']);
    expect(await paths(dest)).toEqual(['a.txt', 'sub', 'sub/b.txt']);
  });
});
