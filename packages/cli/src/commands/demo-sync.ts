/**
 * `deltacast demo` (the default kind): a generated tree synced over SSH to an SSH server running in
 * this process on 127.0.0.1, then changed and synced again, with what was sent and how long it took.
 * Nothing to set up: keys and known_hosts are made in a temporary directory, and the host key is
 * still verified like any other.
 */
import { sync, type SyncSummary } from '@deltacast/transport';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoSshServer } from '../demo-ssh-server.js';
import { OperationError } from '../errors.js';
import type { MainIO } from '../io.js';
import { formatBytes } from '../options.js';
import { summaryLine } from '../sync-output.js';

/** xorshift32: deterministic content, so every demo run syncs the same tree. */
function generator(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

function bytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const v = next();
    out[i] = v;
    out[i + 1] = v >>> 8;
    out[i + 2] = v >>> 16;
    out[i + 3] = v >>> 24;
  }
  return out;
}

/** A site-like tree: pages, assets, a large bundle, a symlink and an empty directory. */
async function generateTree(root: string, totalBytes: number, files: number): Promise<void> {
  const next = generator(0x5eed);
  await mkdir(join(root, 'cache'), { recursive: true });
  const big = Math.floor(totalBytes / 3);
  await mkdir(join(root, 'assets'), { recursive: true });
  await writeFile(join(root, 'assets', 'bundle.bin'), bytes(next, big));
  const rest = totalBytes - big;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `section-${i % 8}`, `part-${i % 3}`);
    await mkdir(dir, { recursive: true });
    const size = Math.max(64, Math.floor((rest / files) * (0.25 + ((next() % 1000) / 1000) * 1.5)));
    await writeFile(join(dir, `page-${i}.html`), bytes(next, size));
  }
  await symlink('assets/bundle.bin', join(root, 'latest'));
}

/** Edits a few pages in place, rewrites part of the bundle, adds and deletes files. */
async function changeTree(root: string): Promise<string> {
  const next = generator(0xed17);
  const bundle = join(root, 'assets', 'bundle.bin');
  const data = await readFile(bundle);
  for (let k = 0; k < 20; k++) data.set(bytes(next, 64), next() % (data.length - 64));
  await writeFile(bundle, data);
  let edited = 0;
  for (const section of ['section-1', 'section-4']) {
    for (const name of await readdir(join(root, section, 'part-0'))) {
      const path = join(root, section, 'part-0', name);
      const page = await readFile(path);
      page.set(new TextEncoder().encode('<!-- edited -->'), Math.floor(page.length / 2));
      await writeFile(path, page);
      edited++;
    }
  }
  await writeFile(join(root, 'section-0', 'new-page.html'), bytes(next, 5000));
  await unlink(join(root, 'section-7', 'part-1', (await readdir(join(root, 'section-7', 'part-1')))[0]));
  return `rewrote 20 small ranges of assets/bundle.bin, edited ${edited} pages, added 1, deleted 1`;
}

/** Content, type, mode and mtime of every entry, for the equality check. */
async function fingerprint(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const st = await lstat(full);
      const mtime = Math.floor(st.mtimeMs);
      hash.update(`${rel}${name}\0${st.mode}\0${st.isDirectory() ? '' : mtime}\0`);
      if (st.isSymbolicLink()) hash.update(await readlink(full));
      else if (st.isDirectory()) await walk(full, `${rel}${name}/`);
      else hash.update(await readFile(full));
    }
  };
  await walk(root, '');
  return hash.digest('hex');
}

export interface SyncDemoOptions {
  size: number;
  files: number;
  dir?: string;
}

export async function runSyncDemo(options: SyncDemoOptions, io: MainIO): Promise<void> {
  const work = options.dir ?? (await mkdtemp(join(tmpdir(), 'deltacast-demo-')));
  await mkdir(work, { recursive: true });
  const source = join(work, 'site');
  const destination = join(work, 'server', 'srv', 'site');
  const server = await startDemoSshServer(work);
  const say = (line: string) => io.stdout.write(`${line}\n`);
  try {
    await rm(source, { recursive: true, force: true });
    await rm(join(work, 'server'), { recursive: true, force: true });
    await generateTree(source, options.size, options.files);
    say(`deltacast demo: sync over SSH to an in-process server at 127.0.0.1:${server.port} (host key checked against ${server.knownHostsFile})`);
    say(`source: ${source} (${options.files + 1} files, ${formatBytes(options.size)}); destination: ${destination}`);
    const run = async (label: string): Promise<SyncSummary> => {
      const summary = await sync({
        source: `${source}/`,
        destination: `ssh://demo@127.0.0.1:${server.port}${destination}`,
        delete: true,
        ssh: { identityFile: server.identityFile, knownHostsFiles: [server.knownHostsFile], remoteCommand: 'deltacast agent' },
      });
      say(`${label}: ${summaryLine(summary)}`);
      if (!summary.ok) throw new OperationError('SYNC_FAILED', summary.errors.map((e) => `${e.path}: ${e.code}`).join('; '));
      if ((await fingerprint(source)) !== (await fingerprint(destination))) {
        throw new OperationError('VERIFY_FAILED', `${label}: destination differs from the source`);
      }
      return summary;
    };
    await run('first sync ');
    say(`change: ${await changeTree(source)}`);
    const second = await run('second sync');
    say(
      `the second sync sent ${formatBytes(second.sentBytes)} to update ${formatBytes(second.totalBytes)} of files ` +
        `(${((100 * second.sentBytes) / Math.max(1, second.totalBytes)).toFixed(2)}%); both times the destination was checked identical ` +
        '(content, modes, mtimes, symlinks)',
    );
  } finally {
    await server.close();
    if (!options.dir) await rm(work, { recursive: true, force: true });
  }
}
