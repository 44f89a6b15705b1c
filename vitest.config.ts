import { execFileSync } from 'node:child_process';
import { defineConfig } from 'vitest/config';

// Suites that drive system tools skip where a tool is missing; in CI they must run, so fail fast there.
if (process.env.CI) {
  for (const tool of ['rdiff', 'rsync', 'sshd', 'ssh', 'ssh-keygen']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`CI is set but ${tool} is not installed; .ci/run installs it with apt-get`);
    }
  }
}

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'benchmarks/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
