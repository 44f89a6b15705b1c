/**
 * Key pairs for tests and the demo. ssh2's generateKeyPairSync('ed25519') drops a leading zero byte
 * of the public key about once in 250 keys, writing a key that nothing can parse (its own parseKey
 * included): generate again until both halves parse.
 */
import ssh2 from 'ssh2';

type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

export function generateSshKeyPair(type: KeyType = 'ed25519', options: Record<string, unknown> = {}): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync(type as 'ed25519', options as never);
    const parsedPublic = ssh2.utils.parseKey(pair.public);
    const parsedPrivate = ssh2.utils.parseKey(pair.private, typeof options.passphrase === 'string' ? options.passphrase : undefined);
    if (!(parsedPublic instanceof Error) && !(parsedPrivate instanceof Error)) return pair;
  }
  throw new Error(`could not generate a valid ${type} key pair`);
}
