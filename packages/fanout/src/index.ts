export { fanout, newReleaseId, type FanoutOptions, type FanoutEvent, type FanoutResult, type DestinationResult } from './fanout.js';
export { rollback, type RollbackOptions, type RollbackResult } from './rollback.js';
export { SessionPool, type PooledSession } from './session-pool.js';
