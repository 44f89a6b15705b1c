/**
 * The agent's side of a compared listing (docs/protocol.md, Compared listing): destination entries
 * are checked one at a time against the client's decoded listing. An entry held unchanged by the
 * quick check sets its source entry's bit in the bitmap; any other is reported to the client.
 */
import { bitmapBytes, type Listing } from './listing.js';
import type { EntryType } from './messages.js';
import { quickCheck } from './plan.js';

export class ListingComparer {
  /** Bit i set: the destination holds source entry i unchanged. */
  readonly bitmap: Uint8Array;

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
    const source = { type: listing.types[i], size: listing.sizes[i], mtimeMs: listing.mtimes[i], mode: listing.modes[i], linkTarget: listing.targets[i] };
    if (!quickCheck(source, { type, size: type === 'f' ? size : 0, mtimeMs, mode: mode & 0o7777, linkTarget })) return true;
    this.bitmap[i >> 3] |= 1 << (i & 7);
    return false;
  }
}
