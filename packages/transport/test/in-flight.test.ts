import { describe, expect, it } from 'vitest';
import { InFlightBytes } from '../src/in-flight.js';

describe('the bytes in flight of a transfer', () => {
  it('lets files in while they fit, a larger one alone, and wakes waiters as files finish', async () => {
    const budget = new InFlightBytes(100);
    const order: string[] = [];
    const take = (name: string, size: number) => budget.acquire(size).then(() => order.push(name));
    await take('a', 40);
    await take('b', 60);
    const c = take('c', 10); // 110 > 100: waits
    const big = take('big', 500); // larger than the cap: waits until nothing is in flight
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a', 'b']);
    budget.release(40); // 60 in flight: c fits, big does not
    await c;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a', 'b', 'c']);
    budget.release(60);
    budget.release(10); // nothing in flight: the large one goes alone
    await big;
    expect(order).toEqual(['a', 'b', 'c', 'big']);
    const after = take('d', 1); // 500 in flight: waits for it
    await new Promise((r) => setImmediate(r));
    expect(order).toHaveLength(4);
    budget.release(500);
    await after;
    expect(order).toEqual(['a', 'b', 'c', 'big', 'd']);
  });
});
