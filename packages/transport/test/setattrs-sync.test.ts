/**
 * Directory attributes at the end of a sync: sent as `setattrs` batches to an agent that lists the
 * capability (a few requests for hundreds of directories), one `setattr` a directory to one that
 * does not; the tree ends the same either way.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETATTRS_CAPABILITY } from '../src/batch.js';
import { hideCapability, recordingAgent } from './helpers/relay.js';
import { BASE_MTIME_MS, diffTrees, dir, file, runSync, useTempDirs, writeTree, type TreeSpec } from './helpers/tree.js';

const tempDir = useTempDirs();

/** 300 directories three deep, a file in each, and a few files whose mode alone differs later. */
function tree(mtimeMs: number): TreeSpec {
  const spec: TreeSpec = {};
  for (let a = 0; a < 3; a++) {
    spec[`d${a}`] = dir({ mode: 0o755, mtimeMs: mtimeMs + a });
    for (let b = 0; b < 10; b++) {
      spec[`d${a}/e${b}`] = dir({ mode: 0o750, mtimeMs: mtimeMs + 100 + b });
      for (let c = 0; c < 10; c++) {
        spec[`d${a}/e${b}/f${c}`] = dir({ mode: 0o700, mtimeMs: mtimeMs + 200 + c });
        spec[`d${a}/e${b}/f${c}/x.txt`] = file(`file ${a}.${b}.${c}`, { mode: 0o644, mtimeMs: mtimeMs + 300 });
      }
    }
  }
  return spec;
}

describe('directory attributes at the end of a sync', () => {
  for (const older of [false, true]) {
    it(older ? 'one setattr a directory to an agent without setattrs' : 'in setattrs batches to an agent that takes them', async () => {
      const src = join(tempDir(), 'src');
      const dst = join(tempDir(), 'dst');
      await writeTree(src, tree(BASE_MTIME_MS));
      const first = recordingAgent(undefined, older ? hideCapability(SETATTRS_CAPABILITY) : undefined);
      expect((await runSync(`${src}/`, dst, {}, first)).ok).toBe(true);
      expect(await diffTrees(src, dst)).toEqual([]);
      // Every file changes and some modes: every directory's mtime moves and is set back.
      const changed = tree(BASE_MTIME_MS + 5000);
      for (const key of Object.keys(changed)) if (key.endsWith('.txt')) changed[key] = file(`changed ${key}`, { mode: key.includes('f3') ? 0o600 : 0o644, mtimeMs: BASE_MTIME_MS + 9000 });
      await writeTree(src, changed);
      const second = recordingAgent(undefined, older ? hideCapability(SETATTRS_CAPABILITY) : undefined);
      const summary = await runSync(`${src}/`, dst, {}, second);
      expect(summary.ok).toBe(true);
      expect(await diffTrees(src, dst)).toEqual([]);
      const count = (t: string) => second.requests.filter((x) => x === t).length;
      if (older) {
        expect(count('setattrs')).toBe(0);
        expect(count('setattr')).toBeGreaterThanOrEqual(333);
      } else {
        expect(count('setattr')).toBe(0);
        expect(count('setattrs')).toBeGreaterThanOrEqual(1);
        expect(count('setattrs')).toBeLessThanOrEqual(2);
      }
    });
  }
});
