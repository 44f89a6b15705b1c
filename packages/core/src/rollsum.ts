/**
 * librsync's original rolling checksum (rollsum.h), an Adler-32 variant without the modulus:
 *   s1 = sum(b[i] + 31), s2 = sum(s1 after each byte), digest = (s2 << 16) | (s1 & 0xffff)
 * Both halves are kept mod 2^16, as the C digest does.
 */

export const ROLLSUM_CHAR_OFFSET = 31;

/** The rollsum of `data[start, end)`. */
export function rollsumSum(data: Uint8Array, start = 0, end = data.length): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < end; ) {
    // 256 bytes between reductions keep both sums below 2^31, so they stay small integers.
    const stop = Math.min(end, i + 256);
    for (; i < stop; i++) {
      s1 += data[i] + ROLLSUM_CHAR_OFFSET;
      s2 += s1;
    }
    s1 &= 0xffff;
    s2 &= 0xffff;
  }
  return ((s2 << 16) | s1) >>> 0;
}

/** An incremental rollsum over a window: rotate (slide by one), rollin and rollout. */
export class Rollsum {
  count = 0;
  s1 = 0;
  s2 = 0;

  update(data: Uint8Array, start = 0, end = data.length): this {
    let s1 = this.s1;
    let s2 = this.s2;
    for (let i = start; i < end; i++) {
      s1 = (s1 + data[i] + ROLLSUM_CHAR_OFFSET) & 0xffff;
      s2 = (s2 + s1) & 0xffff;
    }
    this.s1 = s1;
    this.s2 = s2;
    this.count += end - start;
    return this;
  }

  rotate(out: number, inByte: number): this {
    this.s1 = (this.s1 + inByte - out) & 0xffff;
    this.s2 = (this.s2 + this.s1 - this.count * (out + ROLLSUM_CHAR_OFFSET)) & 0xffff;
    return this;
  }

  rollin(inByte: number): this {
    this.s1 = (this.s1 + inByte + ROLLSUM_CHAR_OFFSET) & 0xffff;
    this.s2 = (this.s2 + this.s1) & 0xffff;
    this.count++;
    return this;
  }

  rollout(out: number): this {
    this.s1 = (this.s1 - (out + ROLLSUM_CHAR_OFFSET)) & 0xffff;
    this.s2 = (this.s2 - this.count * (out + ROLLSUM_CHAR_OFFSET)) & 0xffff;
    this.count--;
    return this;
  }

  digest(): number {
    return ((this.s2 << 16) | this.s1) >>> 0;
  }
}
