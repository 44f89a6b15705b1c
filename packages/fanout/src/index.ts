export { fanout, type FanoutOptions, type FanoutEvent, type FanoutResult, type DestinationResult } from './fanout.js';
