export { sync, syncTree, sendFile, connectForTransfer, comparesWholeTree, buildFilter, readChunks, contentComparer, nextTurn, transferRules, keepsOwners, checkAgentCapabilities, protectedPaths, planOptions, scanOptions, mapOwnersByName, type SyncOptions, type SyncTarget, type TransferOptions } from './sync.js';
export { deltaFileHash, loadDeltaHashes } from './delta-hash.js';
export { BATCH_CAPABILITY, MAX_BATCH_BYTES, MAX_BATCH_FILES, TOO_LARGE, type BatchResult } from './batch.js';
export { batchEnd, changedSmallFiles, PayloadBuffer, remoteFailure, SMALL_FILE } from './batch-send.js';
export { DestinationRun, attributesOf, emptySummary, recordFailure, isSessionFailure, type RunOptions } from './destination-run.js';
export type { SyncEvent, SyncSummary, TransferStats, EventListener } from './events.js';
export { openDestination, type DestinationOptions, type OpenedDestination, type SshOptions, type HookResult } from './open-destination.js';
export { pull, type PullOptions, type PullResult } from './pull.js';
export { planFuzzy, fuzzyMatch, FUZZY_CAPABILITY } from './fuzzy.js';
export { basisDirs, planLinkDest, linkPlanned, LINK_DEST_CAPABILITY, MAX_LINK_DEST_DIRS, type BasisDirHow, type BasisDirOptions } from './link-dest.js';
export { serveSender, SourceMissingError, readSenderRequest, encodeSenderRequest, senderEventLine, SENDER_EVENT_PREFIX, MAX_SENDER_REQUEST_BYTES, type SenderRequest, type SenderResult } from './sender.js';
export { serveAgent, type AgentOptions } from './agent.js';
export { releaseStdio } from './stdio-release.js';
export { AgentClient, type RemoteEntry, type HelloOptions, type AgentInfo, type FileAttributes, type OwnerMap, type RootEntry } from './agent-client.js';
export { scanSource, type ScanOptions, type SourceEntry, type SourceTree } from './tree.js';
export { PathFilter, parseFilterFile, parseFilterRule, type FilterRule, type MergeFileReader } from './filter.js';
export { hasBasis, planChanges, quickCheck, skippedByRules, type TransferRules, type Plan, type Change, type ChangeKind } from './plan.js';
export { listRemote, encodeAhead, heldUnchanged, encodeListing, decodeListing, type RemoteListing, type Listing } from './listing.js';
export { inProcessAgent, childProcessAgent, agentEntryPath } from './local.js';
export { FrameSession, type ByteStreams } from './wire.js';
export { FrameDecoder, encodeFrameHead, MAX_HEADER_LENGTH, MAX_PAYLOAD_LENGTH, type Frame, type Header } from './frame.js';
export { PROTOCOL_VERSION, OWNER_NAMES_CAPABILITY } from './messages.js';
export { wirePathComponents, resolveInRoot } from './paths.js';
export { fdBasis } from './fd-basis.js';
export { TransportError, ProtocolError, PathError, ConnectError, RemoteError, type TransportErrorCode } from './errors.js';
export {
  parseDestination,
  formatDestination,
  connectSsh,
  openJumpConnections,
  splitCommand,
  startRemoteAgent,
  resolveSshConfig,
  generateSshKeyPair,
  checkHostKey,
  addHostKey,
  type Destination,
  type ConnectOptions,
  type RemoteAgentOptions,
} from './ssh/index.js';
export { RateLimitedWritable, limitRate } from './rate-limit.js';
export { applyChmod, parseChmod, type ChmodClause } from './chmod.js';
export { BACKUP_CAPABILITY, backupPath, checkBackup, isBackup, type Backup, type BackupOptions } from './backup.js';
