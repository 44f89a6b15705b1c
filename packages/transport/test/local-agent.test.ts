import { describe, expect, it } from 'vitest';
import { agentEnvironment, childProcessAgent } from '../src/local.js';

function output(readable: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    readable.on('data', (c: Buffer) => (text += c.toString()));
    readable.on('end', () => resolve(text));
  });
}

describe('the local agent process', () => {
  it('starts without NODE_EXTRA_CA_CERTS (Node reads that file at every start; the agent makes no TLS connection), the rest of the environment kept', async () => {
    expect(agentEnvironment({ PATH: '/bin', NODE_EXTRA_CA_CERTS: '/etc/ca.pem', HOME: '/h' })).toEqual({ PATH: '/bin', HOME: '/h' });
    const env = { PATH: '/bin' };
    expect(agentEnvironment(env)).toBe(env);

    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = '/nonexistent/ca.pem';
    process.env.DELTACAST_TEST_KEPT = 'kept';
    try {
      const agent = childProcessAgent([process.execPath, '-e', 'process.stdout.write(`${process.env.NODE_EXTRA_CA_CERTS}|${process.env.DELTACAST_TEST_KEPT}`)']);
      expect(await output(agent.readable)).toBe('undefined|kept');
      await agent.exited;
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
      delete process.env.DELTACAST_TEST_KEPT;
    }
  });
});
