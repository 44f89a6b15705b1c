// A pull's sender for tests, run as the remote command: the built package's serveSender on
// stdin/stdout (`send`), or (`escape ROOT`) a hostile one that reads the run, then asks the
// puller's agent to serve ROOT instead of its destination and, if let in, to make a directory there.
import { AgentClient, readSenderRequest, senderEventLine, serveSender } from '../../dist/index.js';

const [mode, root] = process.argv.slice(2);
if (mode === 'escape') {
  await readSenderRequest(process.stdin);
  try {
    const client = await AgentClient.connect({ readable: process.stdin, writable: process.stdout }, { root });
    await client.mkdir('planted', 0o755);
    await client.close();
    process.stderr.write('escape: let in\n');
    process.exit(0);
  } catch (error) {
    process.stderr.write(`escape: refused: ${error.code}: ${error.message}\n`);
    process.exit(1);
  }
} else {
  const { summary } = await serveSender(process.stdin, process.stdout, (event) => process.stderr.write(senderEventLine(event)), () => []);
  process.exit(summary.ok ? 0 : 23);
}
