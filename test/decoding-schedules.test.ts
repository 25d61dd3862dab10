import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { applyGuidance, applyPlausibleGuidance } from '../src/decoding/guidance.js';
import { guidedPredict } from '../src/decoding/parallel-decode.js';
import { choiceTemperature, guidanceAt, maskedAfterStep, maskRatio, maskSchedule } from '../src/decoding/schedules.js';

/** Checks the MaskGIT guarantees of a schedule that starts from m masked tokens. */
function checkGuarantees(s: number[], m: number): void {
  let prev = m;
  for (const c of s) {
    expect(c).toBeGreaterThanOrEqual(0);
    expect(c).toBeLessThanOrEqual(prev);
    if (prev > 0) expect(c).toBeLessThanOrEqual(prev - 1);
    prev = c;
  }
  expect(s[s.length - 1]).toBe(0);
}

describe('mask schedule', () => {
  it('maskRatio is cos(π/2 · r), exactly 1 at 0 and 0 at 1', () => {
    expect(maskRatio(0)).toBe(1);
    expect(maskRatio(1)).toBe(0);
    expect(maskRatio(0.5)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(maskRatio(1 / 3)).toBeCloseTo(Math.sqrt(3) / 2, 12);
    expect(() => maskRatio(1.5)).toThrow(UserError);
    expect(() => maskRatio(-0.1)).toThrow(UserError);
  });

  it('n = 64, T = 12: the exact per-step masked counts', () => {
    const s = maskSchedule(64, 12);
    expect(s).toEqual([63, 61, 59, 55, 50, 45, 38, 32, 24, 16, 8, 0]);
    // Here the plain floor(n · cos(π/2 · (t+1)/T)) needs no correction.
    expect(s).toEqual(Array.from({ length: 12 }, (_, t) => Math.floor(64 * Math.cos((Math.PI / 2) * ((t + 1) / 12)))));
    for (let t = 0; t < 12; t++) expect(maskedAfterStep(64, t, 12)).toBe(s[t]);
    checkGuarantees(s, 64);
  });

  it('n = 256, T = 12', () => {
    expect(maskSchedule(256, 12)).toEqual([253, 247, 236, 221, 203, 181, 155, 128, 97, 66, 33, 0]);
  });

  it('T = 1 fills everything at once', () => {
    expect(maskSchedule(64, 1)).toEqual([0]);
    expect(maskedAfterStep(64, 0, 1)).toBe(0);
  });

  it('each step unmasks at least one token: the cosine is corrected when T is close to n', () => {
    // floor(16 · cos) would be 15, 15, 14, … — the second step is pushed down to 14.
    expect(maskSchedule(16, 12)).toEqual([15, 14, 13, 12, 11, 10, 9, 8, 6, 4, 2, 0]);
    expect(maskSchedule(10, 10)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    checkGuarantees(maskSchedule(16, 12), 16);
  });

  it('T > n: done after n steps, then nothing left to do', () => {
    expect(maskSchedule(4, 8)).toEqual([3, 2, 1, 0, 0, 0, 0, 0]);
    checkGuarantees(maskSchedule(4, 8), 4);
  });

  it('guarantees hold over many (n, T)', () => {
    for (let n = 0; n <= 70; n += 7) for (let T = 1; T <= 20; T++) checkGuarantees(maskSchedule(n, T), n);
  });

  it('partial start (editing): the cosine over the m masked ones', () => {
    expect(maskSchedule(20, 4)).toEqual([18, 14, 7, 0]);
    for (let t = 0; t < 4; t++) expect(maskedAfterStep(64, t, 4, 20)).toBe([18, 14, 7, 0][t]);
    expect(maskSchedule(0, 3)).toEqual([0, 0, 0]);
    expect(() => maskedAfterStep(10, 0, 4, 11)).toThrow(/11 masked tokens out of 10/);
  });

  it('bad steps throw a UserError', () => {
    expect(() => maskSchedule(64, 0)).toThrow(UserError);
    expect(() => maskSchedule(64, 0)).toThrow(/steps must be a whole number ≥ 1, got 0/);
    expect(() => maskSchedule(64, 2.5)).toThrow(UserError);
    expect(() => maskedAfterStep(64, 12, 12)).toThrow(/step must be a whole number in \[0, 11\]/);
    expect(() => maskedAfterStep(-1, 0, 12)).toThrow(UserError);
  });
});

describe('choice temperature and guidance schedules', () => {
  it('choice temperature: start · (1 − (t+1)/T), 0 at the last step', () => {
    expect([0, 1, 2, 3].map((t) => choiceTemperature(t, 4, 4.5))).toEqual([3.375, 2.25, 1.125, 0]);
    expect(choiceTemperature(0, 1, 4.5)).toBe(0);
    expect(choiceTemperature(11, 12, 4.5)).toBe(0);
    expect(choiceTemperature(0, 12, 4.5)).toBeCloseTo(4.125, 12);
    expect(() => choiceTemperature(0, 4, -1)).toThrow(UserError);
    expect(() => choiceTemperature(0, 0, 1)).toThrow(UserError);
  });

  it('guidance: constant, or linear from 1 at step 0 to the scale at the last step', () => {
    expect([0, 1, 2, 3, 4].map((t) => guidanceAt(t, 5, { scale: 3 }))).toEqual([3, 3, 3, 3, 3]);
    expect([0, 1, 2, 3, 4].map((t) => guidanceAt(t, 5, { scale: 3, schedule: 'linear' }))).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(guidanceAt(0, 1, { scale: 4, schedule: 'linear' })).toBe(4);
    expect(guidanceAt(11, 12, { scale: 4, schedule: 'linear' })).toBe(4);
    expect(guidanceAt(0, 12, { scale: 4, schedule: 'linear' })).toBe(1);
    expect(() => guidanceAt(0, 5, { scale: -1 })).toThrow(UserError);
    expect(() => guidanceAt(0, 5, { scale: 2, schedule: 'cosine' as 'linear' })).toThrow(/'constant' or 'linear'/);
  });
});

describe('classifier-free guidance arithmetic', () => {
  const cond = new Float32Array([1, 2, -3, 0.1, -Infinity]);
  const uncond = new Float32Array([0, 4, -1, 0.3, -Infinity]);

  it('s = 0 gives uncond and s = 1 gives cond, exactly', () => {
    expect(Array.from(applyGuidance(cond, uncond, 0))).toEqual(Array.from(uncond));
    expect(Array.from(applyGuidance(cond, uncond, 1))).toEqual(Array.from(cond));
  });

  it('s = 3: uncond + 3 · (cond − uncond)', () => {
    const g = applyGuidance(cond, uncond, 3);
    expect(Array.from(g.subarray(0, 3))).toEqual([3, -2, -7]);
    expect(g[3]).toBeCloseTo(0.3 + 3 * (0.1 - 0.3), 6);
    expect(g[4]).toBe(-Infinity); // −∞ in both branches stays −∞, not NaN
  });

  it('writes in place into a given output and leaves the inputs alone otherwise', () => {
    const c = Float32Array.from(cond);
    const out = applyGuidance(c, uncond, 2, c);
    expect(out).toBe(c);
    expect(Array.from(c.subarray(0, 3))).toEqual([2, 0, -5]);
    const fresh = applyGuidance(cond, uncond, 2);
    expect(fresh).not.toBe(cond);
    expect(cond[0]).toBe(1);
  });

  it('different sizes throw', () => {
    expect(() => applyGuidance(new Float32Array(3), new Float32Array(4), 2)).toThrow(UserError);
  });
});

describe('guidance within the plausible set', () => {
  // Two rows of 3 logits. Row 0: the conditional favours token 0 (p ∝ e^2), token 1 at e^0 is
  // e^-2 ≈ 0.135 as likely, token 2 at e^-4 ≈ 0.018 as likely; the unconditional finds token 2 far
  // less likely still, so plain guidance at s = 3 puts the implausible token 2 on top.
  const cond = new Float32Array([2, 0, -4, 1, 1, 1]);
  const uncond = new Float32Array([2, 0, -10, 3, 0, 1]);

  it('plain guidance lifts a token the prompt itself finds implausible; the constraint rules it out', () => {
    const plain = applyGuidance(cond, uncond, 3);
    expect(Array.from(plain.subarray(0, 3))).toEqual([2, 0, 8]); // token 2 wins: a speck
    const kept = applyPlausibleGuidance(cond, uncond, 3, 3, 0.1);
    // e^-2 ≥ 0.1 stays (guided value), e^-6 < 0.1 goes
    expect(Array.from(kept.subarray(0, 3))).toEqual([2, 0, -Infinity]);
    // Row 1: every token equally plausible under the prompt: all keep their guided values.
    expect(Array.from(kept.subarray(3))).toEqual([-3, 3, 1]);
  });

  it('alpha decides the cut: 0 is plain guidance, 1 keeps the conditional argmax alone', () => {
    expect(Array.from(applyPlausibleGuidance(cond, uncond, 3, 3, 0))).toEqual(Array.from(applyGuidance(cond, uncond, 3)));
    expect(Array.from(applyPlausibleGuidance(cond, uncond, 3, 3, 0.5).subarray(0, 3))).toEqual([2, -Infinity, -Infinity]);
    expect(Array.from(applyPlausibleGuidance(cond, uncond, 3, 3, 1).subarray(3))).toEqual([-3, 3, 1]); // ties all stay
    expect(Array.from(applyPlausibleGuidance(cond, uncond, 3, 3, 0.001).subarray(0, 3))).toEqual([2, 0, 8]); // e^-6 ≈ 0.0025 ≥ 0.001
  });

  it('writes over cond when asked, deciding each row from cond before overwriting it', () => {
    const c = Float32Array.from(cond);
    expect(applyPlausibleGuidance(c, uncond, 3, 3, 0.1, c)).toBe(c);
    expect(Array.from(c)).toEqual([2, 0, -Infinity, -3, 3, 1]);
  });

  it('bad input throws', () => {
    expect(() => applyPlausibleGuidance(cond, uncond, 3, 4, 0.1)).toThrow(UserError); // 6 is not rows of 4
    expect(() => applyPlausibleGuidance(cond, uncond, 3, 3, 1.5)).toThrow(UserError);
    expect(() => applyPlausibleGuidance(cond, uncond.subarray(0, 3), 3, 3, 0.1)).toThrow(UserError);
    expect(() => guidedPredict({ steps: 4, scale: 3, plausibility: 0.1, predictBoth: () => ({ cond, uncond }) })).toThrow(/vocab/);
  });

  it('guidedPredict applies it at guided steps only', async () => {
    const predict = guidedPredict({
      steps: 2,
      scale: 3,
      schedule: 'linear', // s = 1 at step 0, 3 at step 1
      plausibility: 0.1,
      vocab: 3,
      predictBoth: () => ({ cond: Float32Array.from(cond), uncond: Float32Array.from(uncond) }),
    });
    expect(Array.from(await predict(new Int32Array(2), 0))).toEqual(Array.from(cond));
    expect(Array.from(await predict(new Int32Array(2), 1))).toEqual([2, 0, -Infinity, -3, 3, 1]);
  });
});
