import { describe, expect, it } from 'vitest';
import { Rng } from '../src/random.js';

describe('Rng.fillNormal (the training steps’ noise)', () => {
  it('draws standard normal samples: mean 0, variance 1, symmetric tails', () => {
    const x = new Rng(3).fillNormal(new Float32Array(200_001));
    const n = x.length;
    const mean = x.reduce((a, b) => a + b, 0) / n;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    // P(|z| > 2) = 4.55 %
    const tails = x.filter((v) => Math.abs(v) > 2).length / n;
    expect(Math.abs(tails - 0.0455)).toBeLessThan(0.003);
    expect(x[n - 1]).not.toBe(0); // an odd length fills its last entry too
  });

  it('scales, adds to what is there, and continues from a saved position', () => {
    const base = Float32Array.from({ length: 6 }, (_, i) => i);
    const noise = new Rng(9).fillNormal(new Float32Array(6));
    const added = new Rng(9).fillNormal(Float32Array.from(base), 0.5, true);
    for (let i = 0; i < 6; i++) expect(added[i]).toBeCloseTo(base[i]! + 0.5 * noise[i]!, 6);
    const r = new Rng(4);
    r.fillNormal(new Float32Array(10));
    const saved = r.save();
    const next = r.fillNormal(new Float32Array(4));
    const again = new Rng(0);
    again.restore(saved);
    expect(Array.from(again.fillNormal(new Float32Array(4)))).toEqual(Array.from(next));
  });
});
