/** --json's lines: one write per turn of the event loop (or per 64 KiB), in order, none lost at exit. */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LineWriter } from '../src/line-writer.js';
import { cliRoot } from './helpers.js';

function sink() {
  const writes: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString());
      callback();
    },
  });
  return { writes, out };
}

describe('LineWriter', () => {
  it('writes the lines of one turn together, in order, once the turn is over', async () => {
    const { writes, out } = sink();
    const lines = new LineWriter(out);
    lines.write('{"a":1}');
    lines.write('{"b":2}');
    expect(writes).toEqual([]);
    await turn();
    expect(writes).toEqual(['{"a":1}\n{"b":2}\n']);
    lines.write('{"c":3}');
    lines.flush();
    expect(writes).toEqual(['{"a":1}\n{"b":2}\n', '{"c":3}\n']);
    await turn();
    expect(writes).toHaveLength(2); // nothing left for the scheduled flush
  });

  it('writes at once when 64 KiB are waiting', () => {
    const { writes, out } = sink();
    const lines = new LineWriter(out);
    const line = 'x'.repeat(1023);
    for (let i = 0; i < 64; i++) lines.write(line);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(`${line}\n`.repeat(64));
    lines.flush();
  });

  it('writes what is waiting when the process exits', () => {
    const script = `
      import { LineWriter } from ${JSON.stringify(`${cliRoot}/dist/line-writer.js`)};
      const lines = new LineWriter(process.stdout);
      lines.write('first'); lines.write('last');
      process.exit(3);`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(result.status).toBe(3);
    expect(result.stdout).toBe('first\nlast\n');
  });
});
