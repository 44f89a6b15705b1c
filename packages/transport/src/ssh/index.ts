export { parseDestination, formatDestination, type Destination } from './destination.js';
export { resolveSshConfig, type SshConfigOptions, type SshHostConfig } from './config.js';
export {
  addHostKey,
  checkHostKey,
  keyTypeOf,
  knownHostName,
  lookupHostKeys,
  type HostKeyQuery,
  type HostKeyStatus,
  type KnownHostEntry,
} from './known-hosts.js';
export { connectSsh, openJumpConnections, type ConnectOptions } from './connect.js';
export {
  bundleCacheName,
  defaultBundlePath,
  MIN_REMOTE_NODE_MAJOR,
  shellQuote,
  startRemoteAgent,
  type RemoteAgentKind,
  type RemoteAgentOptions,
  type RemoteAgentStreams,
} from './remote-agent.js';
export { generateSshKeyPair } from './keys.js';
export { splitCommand } from './rsh.js';
