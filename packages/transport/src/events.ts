/**
 * What a sync reports while it runs. The same objects are NDJSON lines with --json, drive the progress
 * bar on a TTY, and come back in the result.
 */
import type { EntryType } from './messages.js';
import type { ChangeKind } from './plan.js';

export type SyncEvent =
  | { type: 'start'; destination: string; files: number; bytes: number; dryRun: boolean }
  /**
   * A change the plan makes, announced before it is made. `itemized`: rsync's --itemize-changes code
   * (itemize.ts), absent where rsync prints none; `entryType`: what the path is in the source (or,
   * for a deletion, at the destination). A directory deleted is announced after each entry under it.
   */
  | { type: 'item'; destination: string; kind: ChangeKind; path: string; entryType: EntryType; itemized?: string; linkTarget?: string }
  | {
      type: 'file';
      destination: string;
      kind: 'create' | 'update';
      path: string;
      size: number;
      literalBytes: number;
      matchedBytes: number;
      sentBytes: number;
    }
  /**
   * A path that failed, or with path '' the destination as a whole: one it could not reach, a lost
   * session, or 'MAX_DELETE' (the --max-delete limit left extraneous entries; the message says how many).
   */
  | { type: 'error'; destination: string; path: string; code: string; message: string }
  /** A source entry left out that is no error: a device, socket or fifo, or an unsafe symlink with --safe-links. */
  | { type: 'skip'; destination: string; path: string; reason: string }
  | { type: 'summary'; destination: string; result: SyncSummary };

export interface SyncSummary {
  ok: boolean;
  dryRun: boolean;
  created: number;
  updated: number;
  unchanged: number;
  /** Files and symlinks that differ or are missing but were left alone by a transfer rule (--update, --ignore-existing, --existing). */
  skipped: number;
  deleted: number;
  /** -H: names linked anew to the file sent under another name (or, in a dry run, that would be). */
  hardlinks: number;
  /** --link-dest: new files hard-linked from a link-dest directory instead of sent (or, in a dry run, that would be). */
  linked: number;
  /** --copy-dest: new files copied from a copy-dest directory on the destination's host instead of sent (or would be). */
  copied: number;
  /** --remove-source-files: source files and symlinks removed once at the destination. */
  removed: number;
  directories: number;
  symlinks: number;
  attributes: number;
  /** Bytes of source files sent (as literal data) and reused from the destination (matched). */
  literalBytes: number;
  matchedBytes: number;
  /** Bytes written to the connection for file data (after compression). */
  sentBytes: number;
  totalBytes: number;
  errors: { path: string; code: string; message: string }[];
  durationMs: number;
  /** What rsync's --stats reports beyond the counts above; absent where the run did not get as far as its plan. */
  stats?: TransferStats;
}

/** A run's figures for rsync's --stats (the CLI's `--stats` prints them in rsync's words). */
export interface TransferStats {
  /**
   * The source's entries by type, the transfer root among the directories as rsync counts `.`, and
   * its size: regular files' bytes plus symlinks' target lengths (rsync's "Total file size").
   */
  source: { files: number; dirs: number; links: number; bytes: number };
  /** Symlinks made where the destination had none (`symlinks` counts the replaced ones too). */
  createdLinks: number;
  /** Directories made: `directories`, and the destination root when this run made it, as rsync counts `.`. */
  createdDirs: number;
  /** Entries deleted (or, in a dry run, to be) by type, each under a deleted directory counted too, as rsync counts them. */
  deleted: { files: number; dirs: number; links: number };
  /** Bytes of frames this side wrote to the destination's session and read from it (before any SSH framing). */
  sessionSent: number;
  sessionReceived: number;
}

export type EventListener = (event: SyncEvent) => void;
