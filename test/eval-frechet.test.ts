/**
 * Fréchet distance between feature Gaussians: closed forms (identical, 1-D, diagonal), a
 * non-commuting 3×3 case checked through the eigenvalues of Σa·Σb, and sample behaviour.
 */
import { describe, expect, it } from 'vitest';
import { featureStats, frechetDistance, type FeatureStats } from '../src/eval/frechet.js';
import { Rng } from '../src/random.js';

function stats(mean: number[], cov: number[][], count = 100): FeatureStats {
  return { mean: Float64Array.from(mean), cov: Float64Array.from(cov.flat()), count, dim: mean.length };
}

function diag(v: number[]): number[][] {
  return v.map((x, i) => v.map((_, j) => (i === j ? x : 0)));
}

function mmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
}

function transpose(a: number[][]): number[][] {
  return a[0]!.map((_, j) => a.map((row) => row[j]!));
}

function trace(a: number[][]): number {
  return a.reduce((s, row, i) => s + row[i]!, 0);
}

/** X·Xᵀ + 0.3·I for a seeded random 3×3 X: symmetric positive definite. */
function randomSpd(rng: Rng): number[][] {
  const x = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => rng.normal()));
  return mmul(x, transpose(x)).map((row, i) => row.map((v, j) => v + (i === j ? 0.3 : 0)));
}

/** The three (real) roots of the characteristic polynomial of a 3×3 matrix, by the trigonometric cubic formula. */
function eigenvalues3(m: number[][]): number[] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m as [[number, number, number], [number, number, number], [number, number, number]];
  const c2 = a + e + i;
  const c1 = a * e - b * d + a * i - c * g + e * i - f * h;
  const c0 = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  const p = c1 - (c2 * c2) / 3;
  const q = (-2 * c2 ** 3) / 27 + (c2 * c1) / 3 - c0;
  const r = 2 * Math.sqrt(-p / 3);
  const phi = Math.acos(Math.min(1, Math.max(-1, ((3 * q) / (2 * p)) * Math.sqrt(-3 / p)))) / 3;
  return [0, 1, 2].map((k) => r * Math.cos(phi - (2 * Math.PI * k) / 3) + c2 / 3);
}

/** Correlated Gaussian vectors: x_i = (1 + 0.2·i)·z_i + shift, plus 0.5·x_(i−1) in the odd dims. */
function samples(rng: Rng, count: number, dim: number, shift: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let n = 0; n < count; n++)
    for (let i = 0; i < dim; i++) {
      const o = n * dim + i;
      out[o] = (1 + 0.2 * i) * rng.normal() + shift + (i % 2 === 1 ? 0.5 * out[o - 1]! : 0);
    }
  return out;
}

describe('featureStats', () => {
  it('gives the mean and the unbiased covariance', () => {
    // Vectors (1, 2), (3, 6), (5, 7): means 3 and 5.
    const s = featureStats(Float32Array.from([1, 2, 3, 6, 5, 7]), 3, 2);
    expect(Array.from(s.mean)).toEqual([3, 5]);
    // var x = (4+0+4)/2 = 4; var y = (9+1+4)/2 = 7; cov = (6+0+4)/2 = 5
    expect(Array.from(s.cov)).toEqual([4, 5, 5, 7]);
    expect(s.count).toBe(3);
    expect(s.dim).toBe(2);
  });

  it('refuses fewer than two vectors or a wrong length', () => {
    expect(() => featureStats(Float32Array.from([1, 2]), 1, 2)).toThrow(/at least 2/);
    expect(() => featureStats(Float32Array.from([1, 2, 3]), 2, 2)).toThrow(/feature values/);
    expect(() => featureStats(Float32Array.from([1, 2]), 2, 0)).toThrow(/positive integer/);
  });
});

describe('frechetDistance', () => {
  it('is 0 between identical statistics', () => {
    const rng = new Rng(3);
    const s = featureStats(samples(rng, 200, 16, 0), 200, 16);
    const tr = Array.from({ length: 16 }, (_, i) => s.cov[i * 16 + i]!).reduce((x, y) => x + y);
    expect(Math.abs(frechetDistance(s, s))).toBeLessThanOrEqual(1e-9 * 2 * tr);
    const cov = randomSpd(rng);
    const spd = stats([1, 2, 3], cov);
    expect(Math.abs(frechetDistance(spd, spd))).toBeLessThanOrEqual(1e-9 * 2 * trace(cov));
  });

  it('is (μ1 − μ2)² + (σ1 − σ2)² for 1-D Gaussians', () => {
    const d = frechetDistance(stats([1.5], [[4]]), stats([-0.5], [[0.25]]));
    expect(d).toBeCloseTo(2 ** 2 + (2 - 0.5) ** 2, 12);
  });

  it('is Σ(σ1i − σ2i)² + |Δμ|² for diagonal covariances', () => {
    const s1 = [1, 2, 0.5, 3];
    const s2 = [0.5, 2.5, 1, 1];
    const m1 = [0, 1, 2, 3];
    const m2 = [1, 1, 0, -1];
    const expected = s1.reduce((s, x, i) => s + (x - s2[i]!) ** 2 + (m1[i]! - m2[i]!) ** 2, 0);
    const d = frechetDistance(stats(m1, diag(s1.map((x) => x * x))), stats(m2, diag(s2.map((x) => x * x))));
    expect(d).toBeCloseTo(expected, 10);
  });

  it('matches Tr Σa + Tr Σb − 2·Σ√λ(Σa·Σb) for non-commuting covariances, both ways round', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 5; trial++) {
      const a = randomSpd(rng);
      const b = randomSpd(rng);
      const ab = mmul(a, b);
      const ba = mmul(b, a);
      expect(Math.max(...ab.flat().map((v, k) => Math.abs(v - ba.flat()[k]!)))).toBeGreaterThan(1e-3);
      const lambdas = eigenvalues3(ab);
      for (const l of lambdas) expect(l).toBeGreaterThan(-1e-9);
      const expected = trace(a) + trace(b) - 2 * lambdas.reduce((s, l) => s + Math.sqrt(Math.max(0, l)), 0);
      const sa = stats([0, 0, 0], a);
      const sb = stats([0, 0, 0], b);
      expect(frechetDistance(sa, sb)).toBeCloseTo(expected, 9);
      expect(frechetDistance(sb, sa)).toBeCloseTo(frechetDistance(sa, sb), 9);
      expect(frechetDistance(stats([1, 0, -1], a), sb)).toBeCloseTo(expected + 2, 9);
    }
  });

  it('is symmetric for sample statistics', () => {
    const rng = new Rng(5);
    const a = featureStats(samples(rng, 300, 8, 0), 300, 8);
    const b = featureStats(samples(rng, 300, 8, 0.7), 300, 8);
    expect(frechetDistance(a, b)).toBeCloseTo(frechetDistance(b, a), 9);
  });

  it('is smaller between samples of one distribution than against a shifted one', () => {
    const rng = new Rng(7);
    const dim = 8;
    const n = 500;
    const ref = featureStats(samples(rng, n, dim, 0), n, dim);
    const same = featureStats(samples(rng, n, dim, 0), n, dim);
    const shifted = featureStats(samples(rng, n, dim, 0.5), n, dim);
    const dSame = frechetDistance(ref, same);
    const dShifted = frechetDistance(ref, shifted);
    expect(dSame).toBeGreaterThan(0);
    expect(dShifted).toBeGreaterThan(3 * dSame);
    // |Δμ|² alone is 0.5² in the even dims and (1.5·0.5)² in the odd ones: 3.25 for 8 dims.
    expect(dShifted).toBeGreaterThan(3.25 - 3 * dSame);
  });

  it('refuses mismatched dims and too few vectors', () => {
    const a = stats([0, 0], diag([1, 1]));
    expect(() => frechetDistance(a, stats([0], [[1]]))).toThrow(/dims differ: 2 vs 1/);
    expect(() => frechetDistance(a, stats([0, 0], diag([1, 1]), 1))).toThrow(/at least 2/);
  });
});
