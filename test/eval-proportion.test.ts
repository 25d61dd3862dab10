import { describe, expect, it } from 'vitest';
import { wilsonInterval } from '../src/eval/proportion.js';

describe('the Wilson interval of a measured share', () => {
  it('matches worked values', () => {
    const a = wilsonInterval(133, 200);
    expect(a.low).toBeCloseTo(0.597022, 5);
    expect(a.high).toBeCloseTo(0.726759, 5);
    const b = wilsonInterval(160, 200);
    expect(b.low).toBeCloseTo(0.739145, 5);
    expect(b.high).toBeCloseTo(0.849548, 5);
  });

  it('stays inside [0, 1] at no hits and at all hits, and narrows with n', () => {
    expect(wilsonInterval(0, 10)).toEqual({ low: 0, high: expect.closeTo(0.277533, 5) });
    expect(wilsonInterval(10, 10).high).toBe(1);
    expect(wilsonInterval(10, 10).low).toBeCloseTo(0.722467, 5);
    const w = (n: number) => { const i = wilsonInterval(n / 2, n); return i.high - i.low; };
    expect(w(400)).toBeLessThan(w(100));
  });

  it('refuses counts that are not counts', () => {
    expect(() => wilsonInterval(3, 0)).toThrow(/positive integer/);
    expect(() => wilsonInterval(11, 10)).toThrow(/0\.\.10/);
    expect(() => wilsonInterval(1.5, 10)).toThrow(/integer/);
  });
});
