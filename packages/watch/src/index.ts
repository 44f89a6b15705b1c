export { TreeWatcher, type TreeWatcherOptions, type WatchSignal } from './tree-watcher.js';
