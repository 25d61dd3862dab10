import { describe, expect, it } from 'vitest';
import { ddimSample } from '../src/diffusion-refiner/sampler.js';
import {
  addNoise,
  cosineAlphasCumprod,
  ddimStep,
  ddimTimesteps,
  fromVelocity,
  guide,
  sinusoidalEmbedding,
  velocity,
} from '../src/diffusion-refiner/schedule.js';
import { Rng } from '../src/random.js';

describe('cosine schedule', () => {
  const a = cosineAlphasCumprod(1000);

  it('starts near 1, ends near 0, and falls strictly', () => {
    expect(a.length).toBe(1000);
    expect(a[0]).toBeGreaterThan(0.9999);
    expect(a[0]).toBeLessThan(1);
    expect(a[999]).toBeLessThan(1e-4);
    expect(a[999]).toBeGreaterThan(0);
    for (let t = 1; t < 1000; t++) expect(a[t]).toBeLessThan(a[t - 1]!);
  });

  it('matches the closed form cos² away from the clipped end', () => {
    const f = (t: number) => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (const t of [0, 100, 499, 800]) expect(a[t]).toBeCloseTo(f(t + 1) / f(0), 10);
    // half-way the signal and noise are about balanced
    expect(a[499]).toBeGreaterThan(0.45);
    expect(a[499]).toBeLessThan(0.55);
  });

  it('clips β at the end and rejects bad sizes', () => {
    const short = cosineAlphasCumprod(10);
    expect(short[9]! / short[8]!).toBeCloseTo(0.001, 6); // β = 0.999
    expect(() => cosineAlphasCumprod(0)).toThrow(/positive integer/);
  });
});

describe('noising and v-prediction', () => {
  const rng = new Rng(3);
  const x0 = Float32Array.from({ length: 64 }, () => rng.normal());
  const eps = Float32Array.from({ length: 64 }, () => rng.normal());

  it('recovers x0 and ε exactly from x_t and the true v', () => {
    for (const ab of [0.999, 0.5, 0.01]) {
      const xt = addNoise(x0, eps, ab);
      const back = fromVelocity(xt, velocity(x0, eps, ab), ab);
      for (let i = 0; i < 64; i++) {
        expect(back.x0[i]).toBeCloseTo(x0[i]!, 5);
        expect(back.eps[i]).toBeCloseTo(eps[i]!, 5);
      }
    }
  });

  it('a DDIM step with the true v lands on the noising of x0 at the earlier level', () => {
    const xt = addNoise(x0, eps, 0.3);
    const prev = ddimStep(xt, velocity(x0, eps, 0.3), 0.3, 0.8);
    const expected = addNoise(x0, eps, 0.8);
    for (let i = 0; i < 64; i++) expect(prev[i]).toBeCloseTo(expected[i]!, 5);
    const last = ddimStep(xt, velocity(x0, eps, 0.3), 0.3, 1);
    for (let i = 0; i < 64; i++) expect(last[i]).toBeCloseTo(x0[i]!, 5);
  });
});

describe('DDIM timesteps and sampling', () => {
  it('visits evenly spaced, strictly falling timesteps from T−1 to 0', () => {
    expect(ddimTimesteps(1000, 5)).toEqual([999, 749, 500, 250, 0]);
    expect(ddimTimesteps(10, 10)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(ddimTimesteps(1000, 1)).toEqual([999]);
    expect(() => ddimTimesteps(10, 11)).toThrow(/cannot exceed/);
    expect(() => ddimTimesteps(10, 0)).toThrow(/positive integer/);
  });

  it('is deterministic, and an oracle model brings the sample to its x0', () => {
    const alphas = cosineAlphasCumprod(1000);
    const target = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    // The oracle knows x0: from x_t it infers ε, then returns the true v.
    const oracle = (xt: Float32Array, t: number) => {
      const ab = alphas[t]!;
      const eps = xt.map((x, i) => (x - Math.sqrt(ab) * target[i]!) / Math.sqrt(1 - ab));
      return velocity(target, eps, ab);
    };
    const noise = Float32Array.from({ length: 16 }, (_, i) => Math.cos(3 * i));
    const steps: number[] = [];
    const a = ddimSample({ alphasCumprod: alphas, steps: 8, noise, predict: oracle, onStep: (d) => steps.push(d) });
    const b = ddimSample({ alphasCumprod: alphas, steps: 8, noise, predict: oracle });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (let i = 0; i < 16; i++) expect(a[i]).toBeCloseTo(target[i]!, 3);
  });
});

describe('classifier-free guidance', () => {
  it('computes uncond + s·(cond − uncond)', () => {
    const cond = Float32Array.of(1, 2, -1);
    const uncond = Float32Array.of(0.5, 2, 1);
    expect(Array.from(guide(cond, uncond, 0))).toEqual([0.5, 2, 1]);
    expect(Array.from(guide(cond, uncond, 1))).toEqual([1, 2, -1]);
    expect(Array.from(guide(cond, uncond, 3))).toEqual([2, 2, -5]);
    expect(() => guide(cond, Float32Array.of(1), 2)).toThrow(/guidance/);
  });
});

describe('sinusoidal embedding', () => {
  it('puts sines then cosines at geometric frequencies', () => {
    const e = sinusoidalEmbedding([0, 1], 4, 100);
    expect(Array.from(e.subarray(0, 4))).toEqual([0, 0, 1, 1]);
    expect(e[4]).toBeCloseTo(Math.sin(1), 6);
    expect(e[5]).toBeCloseTo(Math.sin(0.1), 6);
    expect(e[6]).toBeCloseTo(Math.cos(1), 6);
    expect(e[7]).toBeCloseTo(Math.cos(0.1), 6);
    expect(() => sinusoidalEmbedding([1], 3)).toThrow(/even/);
  });
});
