/**
 * Directory trees for the sync benchmarks, all derived from a seed: a file list with nested
 * directories and a skewed size distribution (most files small, a few MiB-sized, as in a source
 * tree or a web site), the files themselves, small edits to a fraction of them, and a snapshot
 * (type, mode, size, mtime, SHA-256 of every entry) to check that a destination equals its source.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { applyEdits, mulberry32, randomChunks } from './data.mjs';

/** mtime given to generated entries (2024-01-01T00:00:00Z): fixed, so runs are reproducible. */
export const BASE_MTIME = 1_704_067_200;
/** mtime of edited files: a different second, so rsync's and deltacast's quick check both see them. */
export const EDITED_MTIME = BASE_MTIME + 86_400;

const EXTENSIONS = ['.js', '.ts', '.json', '.css', '.html', '.md', '.png', '.jpg', '.woff2', '.map', '.txt', '.bin'];

/**
 * The plan of a tree: { dirs: [path], files: [{ path, size }] }, `files` entries summing to exactly
 * `totalSize` bytes. Sizes follow a Pareto law of shape 0.9, cut at 4000 times its minimum, then
 * scaled to the total: for 20,000 files and 200 MB the median file is about 1.6 KB, one in ten is
 * above 9 KB, one in a hundred above 120 KB, the files above 100 KB hold about 60% of the bytes and
 * a few dozen are MiB-sized. Directories nest up to 6 deep, about 25 files each.
 */
export function planTree(fileCount, totalSize, seed = 7) {
  if (!Number.isInteger(fileCount) || fileCount < 1) throw new Error(`file count must be a positive integer, not ${fileCount}`);
  if (totalSize < fileCount) throw new Error(`total size ${totalSize} is below one byte per file (${fileCount} files)`);
  const rand = mulberry32(seed);

  const dirCount = Math.max(1, Math.ceil(fileCount / 25));
  const dirs = [{ path: '', depth: 0 }];
  for (let i = 1; i < dirCount; i++) {
    // A random earlier directory as parent, retried toward shallower ones past depth 6.
    let parent = dirs[Math.floor(rand() * dirs.length)];
    while (parent.depth >= 6) parent = dirs[Math.floor(rand() * dirs.length)];
    const name = `d${String(i).padStart(4, '0')}`;
    dirs.push({ path: parent.path ? `${parent.path}/${name}` : name, depth: parent.depth + 1 });
  }

  const weights = [];
  let weightSum = 0;
  for (let i = 0; i < fileCount; i++) {
    const w = Math.min(1 / Math.pow(1 - rand(), 1 / 0.9), 4000);
    weights.push(w);
    weightSum += w;
  }
  const files = [];
  let assigned = 0;
  for (let i = 0; i < fileCount; i++) {
    const size = Math.max(1, Math.floor((weights[i] / weightSum) * totalSize));
    const dir = dirs[Math.floor(rand() * dirs.length)].path;
    const name = `f${String(i).padStart(6, '0')}${EXTENSIONS[Math.floor(rand() * EXTENSIONS.length)]}`;
    files.push({ path: dir ? `${dir}/${name}` : name, size });
    assigned += size;
  }
  // Rounding leaves a remainder (or, with the one-byte floor, an excess): settle it on the largest file.
  const largest = files.reduce((a, b) => (b.size > a.size ? b : a));
  largest.size += totalSize - assigned;
  return { dirs: dirs.slice(1).map((d) => d.path), files };
}

function writeWhole(path, chunks) {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the planned tree under `root` (which must not exist yet or be empty): random content per
 * file from its own seed, every file and directory with mtime BASE_MTIME.
 */
export function writeTree(root, plan, seed = 'tree') {
  mkdirSync(root, { recursive: true });
  for (const dir of plan.dirs) mkdirSync(join(root, dir), { recursive: true });
  for (const file of plan.files) {
    const path = join(root, file.path);
    writeWhole(path, randomChunks(`${seed}:${file.path}`, file.size));
    utimesSync(path, BASE_MTIME, BASE_MTIME);
  }
  // Directories last, since creating their files moved their mtimes.
  for (const dir of [...plan.dirs].reverse()) utimesSync(join(root, dir), BASE_MTIME, BASE_MTIME);
  utimesSync(root, BASE_MTIME, BASE_MTIME);
}

/**
 * Makes small edits to `fraction` of the files under `root` (at least one), chosen by `seed`: one
 * to three edits each (a flip of 1-8 bytes, or an insert or delete of 1-32 bytes). Each edited
 * file is written to a new file and renamed over the old one, so a tree made with `cp -al` from
 * the original keeps the original content; its mtime becomes EDITED_MTIME and its directory's
 * mtime is restored. Returns the edited paths.
 */
export function editTree(root, plan, fraction, seed = 11) {
  const rand = mulberry32(seed);
  const count = Math.max(1, Math.round(plan.files.length * fraction));
  const chosen = new Set();
  while (chosen.size < Math.min(count, plan.files.length)) chosen.add(Math.floor(rand() * plan.files.length));
  const edited = [];
  for (const index of [...chosen].sort((a, b) => a - b)) {
    const file = plan.files[index];
    const path = join(root, file.path);
    const data = new Uint8Array(readFileSync(path));
    const edits = [];
    const n = 1 + Math.floor(rand() * 3);
    const segment = Math.floor(data.length / n);
    for (let i = 0; i < n; i++) {
      const room = Math.max(1, segment - 40);
      const position = i * segment + Math.floor(rand() * room);
      const kind = segment > 40 ? Math.floor(rand() * 3) : 1; // tiny files only get inserts
      if (kind === 0) edits.push({ type: 'flip', position, length: Math.min(1 + Math.floor(rand() * 8), data.length - position) });
      else if (kind === 1) {
        const inserted = new Uint8Array(1 + Math.floor(rand() * 32));
        for (let j = 0; j < inserted.length; j++) inserted[j] = Math.floor(rand() * 256);
        edits.push({ type: 'insert', position, data: inserted });
      } else edits.push({ type: 'delete', position, length: 1 + Math.floor(rand() * 32) });
    }
    const tmp = `${path}.edit-tmp`;
    writeWhole(tmp, [applyEdits(data, edits)]);
    utimesSync(tmp, EDITED_MTIME, EDITED_MTIME);
    renameSync(tmp, path);
    edited.push(file.path);
  }
  // The renames touched the directories' mtimes; put them back so only the files differ.
  for (const dir of new Set(edited.map((p) => p.slice(0, Math.max(0, p.lastIndexOf('/')))))) {
    utimesSync(dir ? join(root, dir) : root, BASE_MTIME, BASE_MTIME);
  }
  return edited;
}

/**
 * Every entry under `root` as a Map from relative path to "type mode size mtime sha256" (symlinks:
 * their target; directories: mode and mtime). Two trees are equal for rsync -a purposes when their
 * snapshots are equal. The root directory itself is included as ".".
 */
export function snapshotTree(root) {
  const entries = new Map();
  const buffer = Buffer.allocUnsafe(1 << 20);
  const walk = (rel) => {
    const path = rel ? join(root, rel) : root;
    const st = lstatSync(path, { bigint: false });
    const mode = (st.mode & 0o7777).toString(8);
    const mtime = Math.floor(st.mtimeMs / 1000);
    if (st.isDirectory()) {
      entries.set(rel || '.', `dir ${mode} ${mtime}`);
      for (const name of readdirSync(path).sort()) walk(rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) {
      entries.set(rel, `symlink ${readlinkSync(path)}`);
    } else if (st.isFile()) {
      const hash = createHash('sha256');
      const fd = openSync(path, 'r');
      try {
        for (;;) {
          const n = readSync(fd, buffer, 0, buffer.length, null);
          if (n === 0) break;
          hash.update(buffer.subarray(0, n));
        }
      } finally {
        closeSync(fd);
      }
      entries.set(rel, `file ${mode} ${st.size} ${mtime} ${hash.digest('hex')}`);
    } else {
      entries.set(rel, `other ${mode}`);
    }
  };
  walk('');
  return entries;
}

/** Differences between two snapshots, at most `limit` of them, as readable lines ([] when equal). */
export function compareSnapshots(expected, actual, limit = 10) {
  const problems = [];
  for (const [path, want] of expected) {
    if (problems.length >= limit) break;
    const got = actual.get(path);
    if (got === undefined) problems.push(`${path}: missing (want ${want})`);
    else if (got !== want) problems.push(`${path}: ${got} (want ${want})`);
  }
  for (const path of actual.keys()) {
    if (problems.length >= limit) break;
    if (!expected.has(path)) problems.push(`${path}: extra (${actual.get(path)})`);
  }
  return problems;
}
