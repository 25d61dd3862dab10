import { describe, expect, it } from 'vitest';
import { pairedRatio, timeInterleavedStats } from '../src/bench/timing.js';

describe('bench timing', () => {
  it('takes the functions in turn, each measured run after `settle` unmeasured ones of its own', async () => {
    const calls: string[] = [];
    const s = await timeInterleavedStats({ a: () => void calls.push('a'), b: () => void calls.push('b') }, 2, 1, 1);
    // warm-up round, then per round: a (settle), a (measured), b (settle), b (measured)
    expect(calls.join('')).toBe('ab' + 'aabb' + 'aabb');
    expect(s.a.times).toHaveLength(2);
    expect(s.a.min).toBeLessThanOrEqual(s.a.median);
  });

  it('pairs the runs of one round: a host that slows down between rounds moves the ratio not at all', () => {
    // b is 3× faster in every round, while the machine runs 1×, 2× and 4× slow
    const b = { times: [10, 20, 40] };
    const a = { times: [30, 60, 120] };
    expect(pairedRatio(a, b)).toBe(3);
    // the medians' ratio says the same here, but not when the slow rounds fall unevenly
    expect(pairedRatio({ times: [30, 60, 120, 33] }, { times: [10, 20, 40, 11] })).toBe(3);
  });
});
