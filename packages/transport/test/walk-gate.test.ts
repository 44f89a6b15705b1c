import { describe, expect, it } from 'vitest';
import { WalkGate } from '../src/walk-gate.js';

/** A task that logs its start and end, and ends when `release` is called. */
function task(log: string[], name: string) {
  let release!: () => void;
  const ended = new Promise<void>((r) => (release = r));
  return {
    run: async () => {
      log.push(`${name}+`);
      await ended;
      log.push(`${name}-`);
      return name;
    },
    release: () => release(),
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('WalkGate', () => {
  it('runs walks together and changes together, never a walk with a change', async () => {
    const gate = new WalkGate();
    const log: string[] = [];
    const [w1, w2, c1, c2, w3, c3] = ['w1', 'w2', 'c1', 'c2', 'w3', 'c3'].map((n) => task(log, n));
    const done = [gate.walk(w1.run), gate.walk(w2.run), gate.change(c1.run), gate.change(c2.run), gate.walk(w3.run)];
    await tick();
    expect(log).toEqual(['w1+', 'w2+', 'w3+']); // the changes wait; another walk joins the running ones
    w1.release();
    w2.release();
    await tick();
    expect(log).toEqual(['w1+', 'w2+', 'w3+', 'w1-', 'w2-']);
    w3.release();
    await tick();
    expect(log.slice(5)).toEqual(['w3-', 'c1+', 'c2+']);
    // A walk waits for the running changes; a change that comes meanwhile joins them.
    const w4 = task(log, 'w4');
    done.push(gate.walk(w4.run), gate.change(c3.run));
    await tick();
    expect(log.slice(8)).toEqual(['c3+']);
    c1.release();
    c2.release();
    await tick();
    expect(log.slice(9)).toEqual(['c1-', 'c2-']);
    c3.release();
    await tick();
    expect(log.slice(11)).toEqual(['c3-', 'w4+']);
    w4.release();
    expect(await Promise.all(done)).toEqual(['w1', 'w2', 'c1', 'c2', 'w3', 'w4', 'c3']);
  });

  it('lets the next kind in when a task fails, even one that throws at once', async () => {
    const gate = new WalkGate();
    const failing = gate.walk(() => {
      throw new Error('walk failed');
    });
    const change = gate.change(async () => 'changed');
    await expect(failing).rejects.toThrow('walk failed');
    await expect(change).resolves.toBe('changed');
    await expect(gate.walk(() => Promise.reject(new Error('again')))).rejects.toThrow('again');
    await expect(gate.walk(async () => 'walked')).resolves.toBe('walked');
  });
});
