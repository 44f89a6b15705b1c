/**
 * librsync's RabinKarp rolling checksum (librsync 2.2+, rabinkarp.h):
 *   hash = SEED * MULT^n + sum(b[i] * MULT^(n-1-i))   (mod 2^32)
 * with SEED 1 and MULT 0x08104225, a multiplier with good bit mixing and a known inverse.
 */

export const RABINKARP_SEED = 1;
export const RABINKARP_MULT = 0x08104225;
/** MULT^-1 mod 2^32, used to roll a byte out without one coming in. */
export const RABINKARP_INVM = 0x98f009ad;
/** SEED * (MULT - 1): folds the seed term into the byte leaving the window. */
export const RABINKARP_ADJ = 0x08104224;

const MULT2 = Math.imul(RABINKARP_MULT, RABINKARP_MULT);
const MULT3 = Math.imul(MULT2, RABINKARP_MULT);
const MULT4 = Math.imul(MULT3, RABINKARP_MULT);

/** MULT^n mod 2^32. */
export function rabinKarpPower(n: number): number {
  let result = 1;
  let base = RABINKARP_MULT;
  while (n > 0) {
    if (n & 1) result = Math.imul(result, base);
    base = Math.imul(base, base);
    n = Math.floor(n / 2);
  }
  return result >>> 0;
}

/**
 * Hash of `data[start, end)` continuing from `hash` (RABINKARP_SEED for a fresh sum).
 * Four bytes a step so the multiply chain is a quarter as long; same result as one at a time.
 */
export function rabinKarpUpdate(hash: number, data: Uint8Array, start: number, end: number): number {
  let h = hash | 0;
  let i = start;
  for (const stop = end - 3; i < stop; i += 4) {
    h =
      (Math.imul(h, MULT4) +
        Math.imul(data[i], MULT3) +
        Math.imul(data[i + 1], MULT2) +
        Math.imul(data[i + 2], RABINKARP_MULT) +
        data[i + 3]) |
      0;
  }
  for (; i < end; i++) h = (Math.imul(h, RABINKARP_MULT) + data[i]) | 0;
  return h >>> 0;
}

/** The RabinKarp sum of a block, as stored in a signature. */
export function rabinKarpSum(data: Uint8Array, start = 0, end = data.length): number {
  return rabinKarpUpdate(RABINKARP_SEED, data, start, end);
}

/** An incremental RabinKarp sum over a window: rotate (slide by one), rollin and rollout. */
export class RabinKarp {
  count = 0;
  hash = RABINKARP_SEED;
  /** MULT^count. */
  mult = 1;

  update(data: Uint8Array, start = 0, end = data.length): this {
    this.hash = rabinKarpUpdate(this.hash, data, start, end);
    this.mult = Math.imul(this.mult, rabinKarpPower(end - start)) >>> 0;
    this.count += end - start;
    return this;
  }

  /** Slide the window one byte: `out` leaves at the front, `inByte` enters at the back. */
  rotate(out: number, inByte: number): this {
    this.hash = (Math.imul(this.hash, RABINKARP_MULT) + inByte - Math.imul(this.mult, out + RABINKARP_ADJ)) >>> 0;
    return this;
  }

  rollin(inByte: number): this {
    this.hash = (Math.imul(this.hash, RABINKARP_MULT) + inByte) >>> 0;
    this.mult = Math.imul(this.mult, RABINKARP_MULT) >>> 0;
    this.count++;
    return this;
  }

  rollout(out: number): this {
    this.count--;
    this.mult = Math.imul(this.mult, RABINKARP_INVM) >>> 0;
    this.hash = (this.hash - Math.imul(this.mult, out + RABINKARP_ADJ)) >>> 0;
    return this;
  }

  digest(): number {
    return this.hash >>> 0;
  }
}
