export { type DestinationStatus, type DestinationState } from './destinations.js';
export { exactPattern } from './settle.js';
export { SourceLayout, coveringScopes, covers } from './scopes.js';
export { TreeWatcher, type TreeWatcherOptions, type WatchSignal } from './tree-watcher.js';
export { watch, type Watch, type WatchOptions, type WatchEvent, type WatchStatus, type BatchReason } from './watch.js';
