import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { releaseStdio } from '../src/stdio-release.js';

// The child runs JavaScript: the helper is taken from the build.
const DIST = fileURLToPath(new URL('../dist/stdio-release.js', import.meta.url));

describe('releaseStdio', () => {
  it('does nothing while a stream still holds output', () => {
    const held = new Writable({ write: (_chunk, _encoding, callback) => void setTimeout(callback, 1000) });
    held.write('not yet written');
    expect(held.writableLength).toBeGreaterThan(0);
    expect(releaseStdio([held])).toBe(false);
    held.destroy();
  });

  it.skipIf(process.platform === 'win32' || !existsSync(DIST))(
    'ends the pipes a reader holds before the process exits, and late writes go nowhere',
    async () => {
      const script = `
        import { releaseStdio } from ${JSON.stringify(pathToFileURL(DIST).href)};
        process.stdout.write('before\\n');
        process.stderr.write('warning before\\n');
        const released = releaseStdio();
        process.stdout.write('after\\n');
        process.stderr.write('warning after\\n');
        setTimeout(() => process.exit(released ? 0 : 3), 1500);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      const order: string[] = [];
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.stdout.on('end', () => order.push('stdout end'));
      child.stderr.on('end', () => order.push('stderr end'));
      const code = await new Promise<number | null>((resolve) =>
        child.on('exit', (exitCode) => {
          order.push('exit');
          resolve(exitCode);
        }),
      );
      expect(code).toBe(0);
      expect(out).toBe('before\n');
      expect(err).toBe('warning before\n');
      // Both pipes ended while the process still ran (it waits 1.5 s before exiting).
      expect(order.indexOf('exit')).toBe(2);
    },
  );
});
