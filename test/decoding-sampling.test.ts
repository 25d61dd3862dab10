import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { Rng } from '../src/random.js';
import {
  argmaxRow,
  decodeStep,
  decodeStepDetailed,
  gumbel,
  logSoftmaxRow,
  lowestConfidence,
  sampleRow,
  softmaxRow,
  topKIndices,
} from '../src/decoding/sampling.js';

const K = 4;
const MASK = K;

/** Logits [B, N, V] filled from a seeded normal, scaled. */
function randomLogits(count: number, seed: number, scale = 2): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => scale * rng.normal());
}

function countMasked(tokens: Int32Array, b: number, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) if (tokens[b * n + i] === MASK) m++;
  return m;
}

describe('building blocks', () => {
  it('log-softmax and softmax rows', () => {
    const l = new Float32Array([9, 9, 0, 1, 2, 3]); // row at offset 2: [0, 1, 2, 3]
    const lp = logSoftmaxRow(l, 2, 4);
    const z = Math.log(1 + Math.E + Math.E ** 2 + Math.E ** 3);
    for (let j = 0; j < 4; j++) expect(lp[j]).toBeCloseTo(j - z, 12);
    const p = softmaxRow(l, 2, 4, 0.5);
    const w = [0, 2, 4, 6].map((v) => Math.exp(v));
    const s = w.reduce((a, b) => a + b);
    for (let j = 0; j < 4; j++) expect(p[j]).toBeCloseTo(w[j]! / s, 12);
    expect(argmaxRow(new Float32Array([1, 5, 5, 2]), 0, 4)).toBe(1); // lowest index on ties
    expect(() => logSoftmaxRow(new Float32Array([0, NaN]), 0, 2)).toThrow(/NaN/);
    expect(() => logSoftmaxRow(new Float32Array([-Infinity, -Infinity]), 0, 2)).toThrow(/−Infinity/);
  });

  it('sampleRow follows softmax(logits / temperature) and is argmax at temperature 0', () => {
    const l = new Float32Array([0, Math.log(2), Math.log(5)]); // p = 1/8, 2/8, 5/8
    const rng = new Rng(7);
    const counts = [0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[sampleRow(l, 0, 3, 1, rng)]!++;
    expect(counts[0]! / 4000).toBeCloseTo(1 / 8, 1);
    expect(counts[1]! / 4000).toBeCloseTo(2 / 8, 1);
    expect(counts[2]! / 4000).toBeCloseTo(5 / 8, 1);
    // Low temperature concentrates on the argmax; temperature 0 is the argmax and draws nothing.
    const r2 = new Rng(1);
    const before = new Rng(1).next();
    expect(sampleRow(l, 0, 3, 0, r2)).toBe(2);
    expect(r2.next()).toBe(before);
  });

  it('gumbel has mean ≈ Euler–Mascheroni (0.5772)', () => {
    const rng = new Rng(3);
    let s = 0;
    for (let i = 0; i < 5000; i++) s += gumbel(rng);
    expect(s / 5000).toBeCloseTo(0.5772, 1);
  });

  it('topKIndices: largest first, ties to the lower index', () => {
    expect(Array.from(topKIndices([1, 3, 2, 3, -Infinity], 3))).toEqual([1, 3, 2]);
    expect(Array.from(topKIndices([5, 5, 5], 2))).toEqual([0, 1]);
    expect(Array.from(topKIndices([1, NaN, 0], 2))).toEqual([0, 2]);
    expect(topKIndices([1, 2], 0).length).toBe(0);
    expect(() => topKIndices([1, 2], 3)).toThrow(UserError);
  });
});

describe('decodeStep', () => {
  const B = 2;
  const N = 10;

  function startTokens(): Int32Array {
    // Item 0: positions 0, 3, 7 known; item 1: only position 9 known.
    const t = new Int32Array(B * N).fill(MASK);
    t[0] = 2;
    t[3] = 0;
    t[7] = 3;
    t[N + 9] = 1;
    return t;
  }

  it('keeps known tokens and leaves exactly targetMasked masked', () => {
    const tokens = startTokens();
    const copy = Int32Array.from(tokens);
    for (const [t0, t1] of [[5, 6], [0, 0], [7, 9], [2, 4]] as const) {
      const out = decodeStep({
        logits: randomLogits(B * N * K, 11 + t0),
        tokens,
        maskId: MASK,
        k: K,
        temperature: 1,
        choiceTemperature: 2,
        targetMasked: [t0, t1],
        rng: new Rng(5),
      });
      expect(Array.from(tokens)).toEqual(Array.from(copy)); // input untouched
      expect([countMasked(out, 0, N), countMasked(out, 1, N)]).toEqual([t0, t1]);
      for (let i = 0; i < B * N; i++) {
        if (tokens[i] !== MASK) expect(out[i]).toBe(tokens[i]);
        else if (out[i] !== MASK) expect(out[i]).toBeGreaterThanOrEqual(0), expect(out[i]).toBeLessThan(K);
      }
    }
  });

  it('temperature 0 picks the argmax of every row', () => {
    const logits = randomLogits(B * N * K, 21);
    const out = decodeStep({ logits, tokens: startTokens(), maskId: MASK, k: K, temperature: 0, choiceTemperature: 0, targetMasked: [0, 0], rng: new Rng(1) });
    const start = startTokens();
    for (let i = 0; i < B * N; i++) {
      expect(out[i]).toBe(start[i] === MASK ? argmaxRow(logits, i * K, K) : start[i]);
    }
  });

  it('never picks the mask id, even when the logits have a huge entry for it', () => {
    const V = K + 1; // logits that include a [MASK] column
    const logits = randomLogits(B * N * V, 31);
    for (let i = 0; i < B * N; i++) logits[i * V + K] = 100;
    for (const temperature of [0, 1, 5]) {
      const out = decodeStep({ logits, tokens: new Int32Array(B * N).fill(MASK), maskId: MASK, k: K, temperature, choiceTemperature: 1, targetMasked: [0, 0], rng: new Rng(2) });
      for (const t of out) expect(t).toBeLessThan(K);
    }
  });

  it('choice temperature 0 keeps the most confident (highest log p of the sampled token)', () => {
    // One item, 6 masked positions; at temperature 0 position i samples token i % K with
    // log p rising with its margin m_i, so the confidence order is set by the margins.
    const margins = [0.5, 3, 1, 4, 2, 0.1];
    const logits = new Float32Array(6 * K);
    margins.forEach((m, i) => (logits[i * K + (i % K)] = m));
    const res = decodeStepDetailed({ logits, tokens: new Int32Array(6).fill(MASK), maskId: MASK, k: K, temperature: 0, choiceTemperature: 0, targetMasked: [3], rng: new Rng(1) });
    // Kept: margins 4, 3, 2 → positions 3, 1, 4; re-masked: 0, 2, 5.
    expect(Array.from(res.tokens)).toEqual([MASK, 1, MASK, 3, 0, MASK]);
    expect(Array.from(res.sampled)).toEqual([0, 1, 2, 3, 0, 1]);
    margins.forEach((m, i) => expect(res.confidence[i]).toBeCloseTo(m - Math.log(Math.exp(m) + K - 1), 6));
  });

  it('with Gumbel noise, the kept set varies with the seed but the count does not', () => {
    const margins = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2];
    const logits = new Float32Array(8 * K);
    margins.forEach((m, i) => (logits[i * K] = m));
    const kept = new Set<string>();
    for (let seed = 0; seed < 10; seed++) {
      const out = decodeStep({ logits, tokens: new Int32Array(8).fill(MASK), maskId: MASK, k: K, temperature: 0, choiceTemperature: 3, targetMasked: [4], rng: new Rng(seed) });
      expect(countMasked(out, 0, 8)).toBe(4);
      kept.add(Array.from(out).join(','));
    }
    expect(kept.size).toBeGreaterThan(1);
  });

  it('bad inputs throw a UserError', () => {
    const logits = randomLogits(B * N * K, 1);
    const base = { logits, tokens: startTokens(), maskId: MASK, k: K, temperature: 1, choiceTemperature: 1, rng: new Rng(1) };
    expect(() => decodeStep({ ...base, targetMasked: [8, 0] })).toThrow(/has 7 masked tokens, cannot leave 8 masked/);
    expect(() => decodeStep({ ...base, targetMasked: [0, 0], maskId: 2 })).toThrow(/outside the codebook/);
    expect(() => decodeStep({ ...base, targetMasked: [0, 0], k: 8, maskId: 8 })).toThrow(/fewer than the codebook size/);
    expect(() => decodeStep({ ...base, targetMasked: [0, 0], temperature: -1 })).toThrow(UserError);
    expect(() => decodeStep({ ...base, targetMasked: [0, 0], rng: [new Rng(1)] })).toThrow(/1 Rngs given for 2 batch items/);
    const badTokens = startTokens();
    badTokens[1] = 9;
    expect(() => decodeStep({ ...base, tokens: badTokens, targetMasked: [0, 0] })).toThrow(/token 9 at batch item 0, position 1/);
  });
});

describe('lowestConfidence', () => {
  it('picks, per item, the candidates with the lowest log probability (ties: lower position), sorted', () => {
    const n = 5;
    const logProb = Float64Array.from([-0.1, -3, -0.2, -3, -9, /* item 1 */ -1, -2, Infinity, -0.5, -4]);
    expect(lowestConfidence(logProb, n, [[0, 1, 2, 3], [0, 1, 3, 4]], 2)).toEqual([[1, 3], [1, 4]]);
    expect(lowestConfidence(logProb, n, [[0, 4], []], 3)).toEqual([[0, 4], []]);
    expect(() => lowestConfidence(logProb, n, [[0]], -1)).toThrow(/count must be a whole number/);
  });
});
