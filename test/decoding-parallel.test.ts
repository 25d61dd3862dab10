import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { leastLikelySelection, maskFreeEdit, revertUnneeded } from '../src/decoding/editing.js';
import { guidedPredict, parallelDecode, type DecodeStepInfo } from '../src/decoding/parallel-decode.js';
import { maskTokens } from '../src/decoding/regions.js';
import { maskSchedule } from '../src/decoding/schedules.js';

const K = 8;
const MASK = K;
const N = 64;

/** A fake model whose logits prefer token = position mod K (margin 5), for any batch. */
function preferPosition(batch: number, n = N) {
  const calls: Int32Array[] = [];
  const predict = (tokens: Int32Array): Float32Array => {
    calls.push(tokens);
    const l = new Float32Array(batch * n * K);
    for (let b = 0; b < batch; b++) for (let i = 0; i < n; i++) l[(b * n + i) * K + (i % K)] = 5;
    return l;
  };
  return { predict, calls };
}

/** A fake model with flat logits: every token equally likely. */
const flat = (batch: number) => async () => new Float32Array(batch * N * K);

function count(tokens: Int32Array, b: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) if (tokens[b * n + i] === MASK) m++;
  return m;
}

describe('parallelDecode', () => {
  it('fills everything, follows the per-step counts, and never changes a kept token', async () => {
    const B = 2;
    const steps: DecodeStepInfo[] = [];
    const { predict, calls } = preferPosition(B);
    const res = await parallelDecode({ batch: B, n: N, k: K, maskId: MASK, steps: 12, predict, temperature: 0, seed: 1, history: true, onStep: (s) => void steps.push(s) });
    expect(Array.from(res.tokens)).toEqual(Array.from({ length: B * N }, (_, i) => (i % N) % K));
    expect(steps.map((s) => s.masked)).toEqual(maskSchedule(N, 12).map((m) => [m, m]));
    expect(steps.map((s) => [count(s.tokens, 0, N), count(s.tokens, 1, N)])).toEqual(maskSchedule(N, 12).map((m) => [m, m]));
    expect(steps.map((s) => s.step)).toEqual([...Array(12).keys()]);
    expect(res.predictCalls).toBe(12);
    // predict saw all-masked first, then each step's tokens
    expect(count(calls[0]!, 0, N)).toBe(N);
    expect(res.history).toHaveLength(12);
    for (let t = 1; t < 12; t++) {
      const prev = res.history![t - 1]!;
      const cur = res.history![t]!;
      for (let i = 0; i < prev.length; i++) if (prev[i] !== MASK) expect(cur[i]).toBe(prev[i]);
    }
  });

  it('keeps the initial tokens (editing) and follows the cosine over each item’s own masked count', async () => {
    const B = 2;
    const start = new Int32Array(B * N).fill(7); // 7 ≠ i mod K for most positions: visible if changed
    for (let i = 0; i < 20; i++) start[i * 3] = MASK; // item 0: 20 masked
    for (let i = 0; i < 40; i++) start[N + i] = MASK; // item 1: 40 masked
    const steps: number[][] = [];
    const res = await parallelDecode({
      batch: B, n: N, k: K, maskId: MASK, steps: 4, initialTokens: start, predict: preferPosition(B).predict,
      temperature: 1, choiceTemperatureStart: 4.5, seed: 9, onStep: (s) => void steps.push(s.masked),
    });
    expect(steps).toEqual([0, 1, 2, 3].map((t) => [maskSchedule(20, 4)[t], maskSchedule(40, 4)[t]]));
    expect(steps.map((s) => s[0])).toEqual([18, 14, 7, 0]);
    for (let i = 0; i < B * N; i++) {
      if (start[i] !== MASK) expect(res.tokens[i]).toBe(7);
      else expect(res.tokens[i]).toBeLessThan(K);
    }
    expect(start[0]).toBe(MASK); // input untouched
  });

  it('same seed → same tokens; different seed → different tokens; items do not depend on the batch size', async () => {
    const run = (seed: number, batch = 2) => parallelDecode({ batch, n: N, k: K, maskId: MASK, steps: 6, predict: flat(batch), seed });
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens));
    const single = await run(42, 1);
    expect(Array.from(single.tokens)).toEqual(Array.from(a.tokens.subarray(0, N)));
    expect(Array.from(a.tokens.subarray(0, N))).not.toEqual(Array.from(a.tokens.subarray(N))); // items differ
  });

  it('T > n: the model is called only while something is masked', async () => {
    const steps: DecodeStepInfo[] = [];
    const { predict } = preferPosition(1, 4);
    const res = await parallelDecode({ batch: 1, n: 4, k: K, maskId: MASK, steps: 8, predict, seed: 0, onStep: (s) => void steps.push(s) });
    expect(res.predictCalls).toBe(4);
    expect(steps.map((s) => s.masked[0])).toEqual([3, 2, 1, 0, 0, 0, 0, 0]);
    expect(steps.map((s) => s.predicted)).toEqual([true, true, true, true, false, false, false, false]);
    expect(Array.from(res.tokens)).toEqual([0, 1, 2, 3]);
  });

  it('polish re-masks the tokens that were least probable when sampled and resamples them with the grid known', async () => {
    // Flat (every token equally likely) until half of the grid is known, then token = position mod K
    // with margin 8: the tokens of the first steps are random and improbable, the later ones right.
    const B = 2;
    const predict = (tokens: Int32Array): Float32Array => {
      const l = new Float32Array(B * N * K);
      for (let b = 0; b < B; b++) {
        if (count(tokens, b, N) > N / 2) continue;
        for (let i = 0; i < N; i++) l[(b * N + i) * K + (i % K)] = 8;
      }
      return l;
    };
    const right = (t: Int32Array) => t.reduce((a, v, i) => a + (v === (i % N) % K ? 1 : 0), 0);
    const given = new Int32Array(B * N).fill(MASK);
    for (let i = 0; i < 8; i++) given[i] = (i + 1) % K; // item 0's first 8 tokens are given, and "wrong"
    const plain = await parallelDecode({ batch: B, n: N, k: K, maskId: MASK, steps: 8, predict, seed: 3, initialTokens: given });
    const polished = await parallelDecode({ batch: B, n: N, k: K, maskId: MASK, steps: 8, predict, seed: 3, initialTokens: given, polish: { rounds: 2, share: 0.4 } });
    expect(polished.predictCalls).toBe(plain.predictCalls + 2);
    expect(right(plain.tokens)).toBeLessThan(2 * N - 8 - 10); // the early random tokens are mostly wrong
    expect(right(polished.tokens)).toBeGreaterThan(right(plain.tokens) + 10);
    expect(Array.from(polished.tokens.subarray(0, 8))).toEqual(Array.from(given.subarray(0, 8))); // given tokens never re-masked
    await expect(parallelDecode({ batch: B, n: N, k: K, maskId: MASK, predict, seed: 3, polish: { rounds: 1, share: 0 } })).rejects.toThrow(/polish share must be in \(0, 1\]/);
  });

  it('bad inputs throw a UserError', async () => {
    const base = { batch: 1, n: N, k: K, maskId: MASK, predict: flat(1), seed: 1 };
    await expect(parallelDecode({ ...base, steps: 0 })).rejects.toThrow(/decoding steps must be a whole number ≥ 1, got 0/);
    await expect(parallelDecode({ ...base, steps: 0 })).rejects.toBeInstanceOf(UserError);
    await expect(parallelDecode({ ...base, initialTokens: new Int32Array(3) })).rejects.toThrow(/initial tokens: expected 1×64 = 64, got 3/);
    await expect(parallelDecode({ ...base, predict: async () => new Float32Array(10) })).rejects.toThrow(/predict returned 10 logits/);
    await expect(parallelDecode({ ...base, maskId: 3 })).rejects.toThrow(/outside the codebook/);
    await expect(parallelDecode({ ...base, seed: 1.5 })).rejects.toThrow(/seed must be a whole number/);
  });
});

describe('guidedPredict', () => {
  const cond = () => new Float32Array([2, 0, 1]);
  const uncond = () => new Float32Array([1, 1, 1]);

  it('applies uncond + s_t · (cond − uncond) with the schedule', async () => {
    const seen: number[] = [];
    const p = guidedPredict({ predictBoth: (_t, step) => (seen.push(step), { cond: cond(), uncond: uncond() }), scale: 3, schedule: 'linear', steps: 3 });
    expect(Array.from(await p(new Int32Array(0), 0))).toEqual([2, 0, 1]); // s = 1
    expect(Array.from(await p(new Int32Array(0), 1))).toEqual([3, -1, 1]); // s = 2
    expect(Array.from(await p(new Int32Array(0), 2))).toEqual([4, -2, 1]); // s = 3
    expect(seen).toEqual([0, 1, 2]);
    const constant = guidedPredict({ predictBoth: async () => ({ cond: cond(), uncond: uncond() }), scale: 0, steps: 2 });
    expect(Array.from(await constant(new Int32Array(0), 1))).toEqual([1, 1, 1]);
  });

  it('uses the conditional pass alone where the scale is 1, if given', async () => {
    let both = 0;
    let single = 0;
    const p = guidedPredict({
      predictBoth: () => (both++, { cond: cond(), uncond: uncond() }),
      predictCond: () => (single++, cond()),
      scale: 2, schedule: 'linear', steps: 4,
    });
    for (let t = 0; t < 4; t++) await p(new Int32Array(0), t);
    expect([single, both]).toEqual([1, 3]);
    expect(() => guidedPredict({ predictBoth: () => ({ cond: cond(), uncond: uncond() }), scale: 2, steps: 0 })).toThrow(UserError);
  });
});

describe('maskFreeEdit', () => {
  it('resamples a seeded subset per iteration toward the model, keeping the rest', async () => {
    const B = 2;
    const start = new Int32Array(B * N).fill(7);
    const toward3 = () => {
      const l = new Float32Array(B * N * K);
      for (let i = 0; i < B * N; i++) l[i * K + 3] = 10;
      return l;
    };
    const resampledPerIt: number[][] = [];
    const run = (seed: number) =>
      maskFreeEdit({ tokens: start, batch: B, n: N, k: K, maskId: MASK, predict: toward3, iterations: 3, strength: 0.125, temperature: 0, seed, selection: 'random', onIteration: (i) => void resampledPerIt.push(i.resampled.map((r) => r.length)) });
    const a = await run(5);
    expect(resampledPerIt).toEqual([[8, 8], [8, 8], [8, 8]]);
    for (let b = 0; b < B; b++) {
      const changed = Array.from(a.tokens.subarray(b * N, (b + 1) * N)).filter((t) => t === 3).length;
      expect(changed).toBeGreaterThanOrEqual(8);
      expect(changed).toBeLessThanOrEqual(24);
      expect(Array.from(a.tokens.subarray(b * N, (b + 1) * N)).every((t) => t === 3 || t === 7)).toBe(true);
    }
    expect(Array.from((await run(5)).tokens)).toEqual(Array.from(a.tokens));
    expect(Array.from((await run(6)).tokens)).not.toEqual(Array.from(a.tokens));
    expect(start[0]).toBe(7);
  });

  it('least-likely selection picks the tokens that fit the prompt least, and leaves those that fit alone', async () => {
    // leastLikelySelection on plain numbers: 1 grid of 4 tokens over 3 codes; the model's log-probability
    // of each current token: position 0 (token 0) −0.55, 1 (token 2) −10, 2 (token 1) −5.5, 3 (token 0) −0.55.
    const logits = new Float32Array([2, 0, 0, 0, 0, -8, 0, -5, 0, 2, 0, 0]);
    expect(leastLikelySelection(new Int32Array([0, 2, 1, 0]), logits, 1, 4, 2)).toEqual([[1, 2]]);
    expect(() => leastLikelySelection(new Int32Array(4), new Float32Array(5), 1, 4, 1)).toThrow(UserError);
    // The model wants token 3 everywhere and rates a 3 already there as fitting: grid 0 is half 3s.
    const B = 2;
    const start = new Int32Array(B * N).fill(7);
    for (let i = 0; i < N / 2; i++) start[i] = 3;
    const toward3 = () => {
      const l = new Float32Array(B * N * K);
      for (let i = 0; i < B * N; i++) l[i * K + 3] = 10;
      return l;
    };
    const chosen: number[][][] = [];
    const res = await maskFreeEdit({ tokens: start, batch: B, n: N, k: K, maskId: MASK, predict: toward3, iterations: 2, strength: 0.25, temperature: 0, seed: 1, selection: 'least-likely', onIteration: (i) => void chosen.push(i.resampled) });
    // Iteration 1 resamples the first 16 of grid 0's 7s (positions 32–47): the 3s are never touched.
    expect(chosen[0]![0]).toEqual(Array.from({ length: 16 }, (_, i) => N / 2 + i));
    expect(chosen[1]![0]).toEqual(Array.from({ length: 16 }, (_, i) => N / 2 + 16 + i));
    expect(Array.from(res.tokens.subarray(0, N)).every((t) => t === 3)).toBe(true); // 32 + 2·16: all of grid 0 now fits
    expect(Array.from(res.tokens.subarray(N)).filter((t) => t === 3)).toHaveLength(32);
    await expect(maskFreeEdit({ tokens: start, batch: B, n: N, k: K, maskId: MASK, predict: toward3, seed: 1, selection: 'nope' as 'random' })).rejects.toThrow(UserError);
  });

  it('revert gives back the changes the model does not need, and only those', async () => {
    // revertUnneeded on plain numbers: 3 positions over 3 codes, originals [0, 1, 2], edited [1, 1, 0].
    // Position 0: original 0 has logit 1, the new 1 has 2 → the original is e^−1 ≈ 0.37 times as probable.
    // Position 1 is unchanged. Position 2: original 2 at 5 against the new 0 at 0 → far more probable.
    const logits = new Float32Array([1, 2, 0, 0, 0, 0, 0, 0, 5]);
    const original = new Int32Array([0, 1, 2]);
    const edited = new Int32Array([1, 1, 0]);
    expect(Array.from(revertUnneeded(original, edited, logits, 3, 1))).toEqual([1, 1, 2]);
    expect(Array.from(revertUnneeded(original, edited, logits, 3, 0.3))).toEqual([0, 1, 2]);
    expect(Array.from(revertUnneeded(original, edited, logits, 3, 0.4))).toEqual([1, 1, 2]);
    expect(Array.from(edited)).toEqual([1, 1, 0]);
    // In the loop: the model wants 3 on grid positions < N/2 and is indifferent elsewhere; every
    // token is resampled (strength 1) to 3 at temperature 0; revert gives back the indifferent half.
    const start = Int32Array.from({ length: N }, (_, i) => 4 + (i % 2));
    let calls = 0;
    const wants3 = () => {
      calls++;
      const l = new Float32Array(N * K);
      for (let i = 0; i < N; i++) l[i * K + 3] = i < N / 2 ? 10 : 0.5;
      return l;
    };
    const edit = (revert: number) => maskFreeEdit({ tokens: start, batch: 1, n: N, k: K, maskId: MASK, predict: wants3, iterations: 1, strength: 1, temperature: 0, seed: 2, selection: 'random', revert });
    expect(Array.from((await edit(0)).tokens).every((t) => t === 3)).toBe(true);
    expect(calls).toBe(1);
    const reverted = await edit(0.5);
    expect(calls).toBe(3); // the edit, then one call on the edited grid
    expect(Array.from(reverted.tokens.subarray(0, N / 2)).every((t) => t === 3)).toBe(true);
    expect(Array.from(reverted.tokens.subarray(N / 2))).toEqual(Array.from(start.subarray(N / 2)));
    await expect(edit(-1)).rejects.toThrow(UserError);
  });

  it('inpainting is parallelDecode from maskTokens: tokens outside the mask never change', async () => {
    const original = Int32Array.from({ length: N }, (_, i) => (i * 5) % K);
    const positions = [9, 10, 17, 18];
    const res = await parallelDecode({ batch: 1, n: N, k: K, maskId: MASK, steps: 3, initialTokens: maskTokens(original, positions, MASK), predict: flat(1), seed: 3 });
    for (let i = 0; i < N; i++) if (!positions.includes(i)) expect(res.tokens[i]).toBe(original[i]);
    for (const i of positions) expect(res.tokens[i]).toBeLessThan(K);
  });

  it('bad options throw a UserError', async () => {
    const base = { tokens: new Int32Array(N), batch: 1, n: N, k: K, maskId: MASK, predict: flat(1), seed: 1 };
    await expect(maskFreeEdit({ ...base, strength: 0 })).rejects.toThrow(/--strength .* must be in \(0, 1\], got 0/);
    await expect(maskFreeEdit({ ...base, iterations: 0 })).rejects.toThrow(/editing iterations must be a whole number ≥ 1/);
    await expect(maskFreeEdit({ ...base, tokens: new Int32Array(N).fill(MASK) })).rejects.toThrow(/must not contain the mask id/);
  });
});
