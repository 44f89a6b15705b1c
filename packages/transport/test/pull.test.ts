/**
 * Pulls (pull.ts, sender.ts) over an in-process ssh2 server whose exec requests run as shell
 * commands: the sender is the built package's serveSender (test/helpers/sender-main.mjs) named as
 * the remote command, this process serves the local destination. Also the sender's preamble, and a
 * hostile sender that asks the puller's agent for another root.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/errors.js';
import type { SyncEvent } from '../src/events.js';
import { pull } from '../src/pull.js';
import { encodeSenderRequest, MAX_SENDER_REQUEST_BYTES, readSenderRequest, type SenderRequest } from '../src/sender.js';
import { startSsh2Server, type Ssh2Server } from './helpers/ssh2-server.js';
import { BASE_MTIME_MS, diffTrees, dir, file, leftovers, link, requireBuiltAgent, useTempDirs, writeTree } from './helpers/tree.js';

const SENDER = join(import.meta.dirname, 'helpers', 'sender-main.mjs');
const T = BASE_MTIME_MS;

describe('the sender preamble', () => {
  const request: SenderRequest = { source: 'site/', destination: '/tmp/x', options: { delete: true, filters: [] }, filesFrom: ['a', 'b c'] };

  it('round-trips, and what follows it stays in the stream', async () => {
    const input = new PassThrough();
    input.end(Buffer.concat([encodeSenderRequest(request), Buffer.from('first frame')]));
    expect(await readSenderRequest(input)).toEqual(request);
    const rest: Buffer[] = [];
    for await (const chunk of input) rest.push(chunk as Buffer);
    expect(Buffer.concat(rest).toString()).toBe('first frame');
  });

  it('arrives in pieces as well as whole', async () => {
    const input = new PassThrough();
    const bytes = encodeSenderRequest(request);
    const read = readSenderRequest(input);
    for (let i = 0; i < bytes.length; i += 3) input.write(bytes.subarray(i, i + 3));
    expect(await read).toEqual(request);
  });

  it('refuses a short one, an oversized length, and one that is no request', async () => {
    const cut = new PassThrough();
    cut.end(encodeSenderRequest(request).subarray(0, 10));
    await expect(readSenderRequest(cut)).rejects.toMatchObject({ code: 'UNEXPECTED_EOF' });

    const huge = new PassThrough();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_SENDER_REQUEST_BYTES + 1);
    huge.end(head);
    const error = await readSenderRequest(huge).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE' });

    for (const json of ['not json', '{"source": 1}', '{"source":"a","destination":"b","options":{},"filesFrom":[1]}']) {
      const body = Buffer.from(json);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      const bad = new PassThrough();
      bad.end(Buffer.concat([len, body]));
      await expect(readSenderRequest(bad)).rejects.toMatchObject({ code: 'BAD_MESSAGE' });
    }
  });
});

describe('pull over an in-process ssh2 server', () => {
  let server: Ssh2Server;
  const tempDir = useTempDirs('deltacast-pull-');
  let home: string;

  beforeAll(async () => {
    requireBuiltAgent(); // the sender runs the built package
    server = await startSsh2Server({
      // Each exec as a shell command in a home of its own, as sshd would run it.
      onExec: (command, channel) => {
        const child = spawn('sh', ['-c', command], { env: { ...process.env, HOME: home }, cwd: home });
        channel.pipe(child.stdin);
        child.stdin.on('error', () => {});
        child.stdout.pipe(channel, { end: false });
        child.stderr.pipe(channel.stderr, { end: false });
        child.on('close', (code, signal) => {
          if (signal) channel.exit(signal);
          else channel.exit(code ?? 1);
          channel.end();
        });
      },
    });
  });
  afterAll(() => server?.close());

  const ssh = () => ({ port: server.port, identityFile: server.identityFile, knownHostsFiles: [server.knownHostsFile], acceptNewHostKeys: true });

  it('brings the remote tree into a local directory, with the sender\'s events as its own', async () => {
    home = tempDir();
    const src = join(home, 'src');
    await writeTree(src, {
      'a.txt': file('alpha\n', { mtimeMs: T + 1_000 }),
      'sub/b.bin': file(Buffer.alloc(200_000, 7), { mode: 0o600, mtimeMs: T + 2_000 }),
      'empty': dir({ mtimeMs: T + 3_000 }),
      'link': link('a.txt', { mtimeMs: T + 4_000 }),
    });
    const dest = join(tempDir(), 'dest');
    const events: SyncEvent[] = [];
    const result = await pull({
      source: `tester@127.0.0.1:${src}/`,
      destination: dest,
      senderBundlePath: '/nonexistent',
      ssh: { ...ssh(), remoteCommand: `${process.execPath} ${SENDER} send` },
      onEvent: (event) => events.push(event),
    });
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({ ok: true, created: 2, symlinks: 1 });
    expect(events[0]).toMatchObject({ type: 'start', destination: dest });
    expect(events.filter((e) => e.type === 'item').map((e) => (e as { itemized?: string }).itemized)).toContain('>f+++++++++');
    expect(await diffTrees(src, dest)).toEqual([]);
    expect(await leftovers(dest)).toEqual([]);
  });

  it('a sender that asks the puller\'s agent for another root is refused, and nothing is written there', async () => {
    home = tempDir();
    const outside = join(home, 'outside');
    mkdirSync(outside);
    const dest = join(tempDir(), 'dest');
    const messages: string[] = [];
    for (const root of [outside, '..', '/']) {
      const result = await pull({
        source: `tester@127.0.0.1:src/`,
        destination: dest,
        senderBundlePath: '/nonexistent',
        ssh: { ...ssh(), remoteCommand: `${process.execPath} ${SENDER} escape ${root}` },
        onMessage: (text) => messages.push(text),
      });
      expect(result.exitCode).toBe(1);
    }
    expect(messages.join('')).toMatch(/escape: refused: PATH_ESCAPE/);
    expect(messages.join('')).not.toMatch(/let in/);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(home, 'planted'))).toBe(false);
    expect(existsSync(dest)).toBe(false);
  });

  it('reads --exclude-from files on the pulling side and sends their rules', async () => {
    home = tempDir();
    const src = join(home, 'src');
    await writeTree(src, { 'keep.txt': file('k\n'), 'skip.log': file('s\n') });
    const rules = join(tempDir(), 'rules');
    writeFileSync(rules, '*.log\n');
    const dest = join(tempDir(), 'dest');
    const result = await pull({
      source: `tester@127.0.0.1:${src}/`,
      destination: dest,
      excludeFrom: [rules],
      senderBundlePath: '/nonexistent',
      ssh: { ...ssh(), remoteCommand: `${process.execPath} ${SENDER} send` },
    });
    expect(result.exitCode).toBe(0);
    expect(readdirSync(dest)).toEqual(['keep.txt']);
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('k\n');
  });
});
