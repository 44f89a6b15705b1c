/**
 * New directories at the start of a sync: sent as `mkdirs` batches, parents first, to an agent that
 * lists the capability (a request or two for hundreds of directories, where one depth at a time took a
 * round trip per level), one `mkdir` a directory to one that does not. The tree ends the same either
 * way, and a directory that cannot be made is reported once, its subtree skipped without a report.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MKDIRS_CAPABILITY } from '../src/batch.js';
import { hideCapability, recordingAgent, relayedAgent, type Rewrite } from './helpers/relay.js';
import { BASE_MTIME_MS, diffTrees, dir, file, runSync, snapshotTree, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';

const tempDir = useTempDirs();

/** 333 directories three deep, a file in the deepest; modes differ by depth. */
function tree(): TreeSpec {
  const spec: TreeSpec = {};
  for (let a = 0; a < 3; a++) {
    spec[`d${a}`] = dir({ mode: 0o755, mtimeMs: BASE_MTIME_MS + a });
    for (let b = 0; b < 10; b++) {
      spec[`d${a}/e${b}`] = dir({ mode: 0o750, mtimeMs: BASE_MTIME_MS + 100 + b });
      for (let c = 0; c < 10; c++) {
        spec[`d${a}/e${b}/f ${c}`] = dir({ mode: 0o700, mtimeMs: BASE_MTIME_MS + 200 + c });
        spec[`d${a}/e${b}/f ${c}/x.txt`] = file(`file ${a}.${b}.${c}`, { mtimeMs: BASE_MTIME_MS + 300 });
      }
    }
  }
  return spec;
}

describe('new directories at the start of a sync', () => {
  for (const older of [false, true]) {
    it(older ? 'one mkdir a directory to an agent without mkdirs' : 'in mkdirs batches to an agent that takes them', async () => {
      const src = join(tempDir(), 'src');
      const dst = join(tempDir(), 'dst');
      await writeTree(src, tree());
      const agent = recordingAgent(undefined, older ? hideCapability(MKDIRS_CAPABILITY) : undefined);
      const summary = await runSync(`${src}/`, dst, {}, agent);
      expect(summary).toMatchObject({ ok: true, directories: 333, created: 300 });
      expect(await diffTrees(src, dst)).toEqual([]);
      const count = (t: string) => agent.requests.filter((x) => x === t).length;
      if (older) {
        expect(count('mkdirs')).toBe(0);
        expect(count('mkdir')).toBe(333);
      } else {
        expect(count('mkdir')).toBe(0);
        expect(count('mkdirs')).toBe(1);
      }
    });

    it(`${older ? 'without' : 'with'} mkdirs, a directory that cannot be made is reported once; what lies under it is skipped`, async () => {
      const src = join(tempDir(), 'src');
      const dst = join(tempDir(), 'dst');
      await writeTree(src, tree());
      // The agent is asked to make d1/e4 out of its root: that directory fails (PATH_ESCAPE), and the
      // 10 under it, with their files, are not made.
      const escape: Rewrite = (h) => {
        const away = (path: unknown) => (path === 'd1/e4' ? '../d1-e4' : path);
        if (h.t === 'mkdir') return { ...h, path: away(h.path) };
        if (h.t === 'mkdirs' && Array.isArray(h.f)) return { ...h, f: h.f.map((e: unknown[]) => [away(e[0]), e[1]]) };
        return h;
      };
      const agent = relayedAgent(escape, older ? hideCapability(MKDIRS_CAPABILITY) : (h) => h);
      const summary = await runSync(`${src}/`, dst, {}, agent);
      expect(summary.ok).toBe(false);
      expect(summary.errors.map((e) => [e.path, e.code])).toEqual([['d1/e4', 'PATH_ESCAPE']]);
      expect(summary.directories).toBe(333 - 11);
      expect(summary.created).toBe(290);
      const paths = [...(await snapshotTree(dst)).keys()];
      expect(paths.filter((p) => p.startsWith('d1/e4'))).toEqual([]);
      expect(paths.filter((p) => p.startsWith('d2/e9/f 9/'))).toEqual(['d2/e9/f 9/x.txt']);
    });
  }
});
