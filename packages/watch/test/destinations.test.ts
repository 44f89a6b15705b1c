import { describe, expect, it } from 'vitest';
import { DestinationTracker } from '../src/destinations.js';

describe('DestinationTracker', () => {
  it('starts every destination catching up; a success brings it up', () => {
    const t = new DestinationTracker(['a', 'b'], 1000, 8000);
    expect(t.inState('catching-up')).toEqual(['a', 'b']);
    expect(t.up('a', 5)).toEqual(new Set());
    expect(t.inState('up')).toEqual(['a']);
  });

  it('backs off exponentially up to the maximum, and resets on success', () => {
    const t = new DestinationTracker(['a'], 1000, 8000);
    expect([1, 2, 3, 4, 5].map(() => t.down('a', 0, { code: 'CONNECT', message: 'refused' }))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(t.nextRetry()).toBe(8000);
    expect(t.due(7999)).toEqual([]);
    expect(t.due(8000)).toEqual(['a']);
    t.startCatchUp(['a']);
    t.up('a', 9000);
    expect(t.down('a', 10_000, { code: 'CONNECT', message: 'refused' })).toBe(1000);
  });

  it('remembers what a destination missed during its catch-up, not before', () => {
    const t = new DestinationTracker(['a', 'b'], 1000, 8000);
    t.up('a', 0);
    t.up('b', 0);
    t.down('b', 0, { code: 'CONNECT', message: 'refused' });
    t.noteMissed(['b'], ['x']); // before the catch-up: its full sync covers this
    t.startCatchUp(['b']);
    t.noteMissed(['b'], ['y', 'z']);
    expect(t.up('b', 1)).toEqual(new Set(['y', 'z']));
    t.startCatchUp(['a']);
    t.noteMissed(['a'], undefined);
    expect(t.up('a', 2)).toBe('all');
  });

  it('retrySoon makes a destination due at once without counting a failure', () => {
    const t = new DestinationTracker(['a'], 1000, 8000);
    t.retrySoon('a', 50);
    expect(t.due(50)).toEqual(['a']);
    expect(t.status()[0].failures).toBe(0);
  });
});
