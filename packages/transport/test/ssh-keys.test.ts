import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateSshKeyPair } from '../src/ssh/keys.js';

describe('generateSshKeyPair', () => {
  // ssh2's own generator writes an unparseable ed25519 key about once in 250: 600 keys would hit it
  // with a probability of about 0.9.
  it('only returns ed25519 pairs whose halves both parse', () => {
    for (let i = 0; i < 600; i++) {
      const pair = generateSshKeyPair('ed25519');
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
    }
  });
});
