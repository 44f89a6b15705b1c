/**
 * The agent's side of a compared listing (docs/protocol.md, Compared listing): destination entries
 * are checked one at a time against the client's decoded listing. An entry held unchanged by the
 * quick check sets its source entry's bit in the bitmap; any other is reported to the client.
 */
import { bitmapBytes, type Listing } from './listing.js';
import type { EntryType } from './messages.js';
import { quickCheck, type CheckedAttributes } from './plan.js';

export class ListingComparer {
  /** Bit i set: the destination holds source entry i unchanged. */
  readonly bitmap: Uint8Array;
  private readonly source: CheckedAttributes = { type: 'f', size: 0, mtimeMs: 0, mode: 0, linkTarget: undefined };
  private readonly remote: CheckedAttributes = { type: 'f', size: 0, mtimeMs: 0, mode: 0, linkTarget: undefined };

  constructor(
    private readonly listing: Listing,
    /** Whether entries that are not in the source are reported (--delete). */
    private readonly extraneous: boolean,
  ) {
    this.bitmap = new Uint8Array(bitmapBytes(listing.paths.length));
  }

  /**
   * Whether the client must be sent this destination entry: a partial ('p') always, one missing
   * from the source only when extraneous entries matter, one in the source unless the quick check
   * holds (which marks it in the bitmap instead).
   */
  reports(path: string, type: EntryType | 'p', size: number, mtimeMs: number, mode: number, linkTarget: string | undefined): boolean {
    if (type === 'p') return true;
    const listing = this.listing;
    const i = listing.index.get(path);
    if (i === undefined) return this.extraneous;
    // Two objects filled anew for each entry, not a new pair per entry (~3 ms less over 20,000).
    const source = this.source;
    source.type = listing.types[i];
    source.size = listing.sizes[i];
    source.mtimeMs = listing.mtimes[i];
    source.mode = listing.modes[i];
    source.linkTarget = listing.targets[i];
    const remote = this.remote;
    remote.type = type;
    remote.size = type === 'f' ? size : 0;
    remote.mtimeMs = mtimeMs;
    remote.mode = mode & 0o7777;
    remote.linkTarget = linkTarget;
    if (!quickCheck(source, remote)) return true;
    const bit = 1 << (i & 7);
    if ((this.bitmap[i >> 3] & bit) === 0) this.held++;
    this.bitmap[i >> 3] |= bit;
    return false;
  }

  /** Source entries the destination holds unchanged (the bitmap's bits set). */
  held = 0;

  /** Whether every source entry is held unchanged: a run that will send nothing. */
  get allHeld(): boolean {
    return this.held === this.listing.paths.length;
  }
}
