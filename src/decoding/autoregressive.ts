/**
 * Token-by-token decoding of an autoregressive (Parti-style) transformer, the baseline parallel
 * decoding is measured against: N model calls for N tokens, in raster order. Model-free like
 * parallelDecode: the caller's `predict` (already guided) maps each step's input token to the
 * logits at that position (transformer/inference.ts `nextTokenFunction`: a key/value cache).
 */
import { UserError } from '../errors.js';
import type { PredictFn } from './parallel-decode.js';
import { itemRngs } from './parallel-decode.js';
import { sampleRow, topKIndices } from './sampling.js';

export interface AutoregressiveDecodeOptions {
  batch: number;
  /** Tokens per image N. */
  n: number;
  /** Codebook size K. */
  k: number;
  /** The start token (the [MASK] id): the input at position 0. */
  bos: number;
  /** Step i's input tokens [B] (the start token at i = 0, then the tokens drawn at i − 1) → the logits at position i [B, V ≥ K]. */
  predict: PredictFn;
  /** Sampling temperature (default 1; 0 = argmax). */
  temperature?: number;
  /** Sample among the `topK` most likely tokens only (default: all K). */
  topK?: number;
  seed: number;
  onStep?: (info: { step: number; steps: number; tokens: Int32Array }) => void | Promise<void>;
}

/** The row of `logits` at `offset` restricted to its `topK` largest entries (the rest −∞), as a new array. */
export function topKRow(logits: Float32Array, offset: number, k: number, topK: number): Float32Array {
  const row = logits.subarray(offset, offset + k);
  if (topK >= k) return Float32Array.from(row);
  const out = new Float32Array(k).fill(-Infinity);
  for (const j of topKIndices(row, topK)) out[j] = row[j]!;
  return out;
}

/** Decodes N tokens one at a time; item b draws from its own Rng (seeded from `seed` and b only). */
export async function autoregressiveDecode(o: AutoregressiveDecodeOptions): Promise<{ tokens: Int32Array; predictCalls: number }> {
  const { batch: B, n: N, k } = o;
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? k;
  if (!Number.isInteger(topK) || topK < 1) throw new UserError(`top-k must be a whole number ≥ 1, got ${topK}`);
  if (!Number.isFinite(temperature) || temperature < 0) throw new UserError(`temperature must be a number ≥ 0, got ${temperature}`);
  const rngs = itemRngs(o.seed, B);
  const tokens = new Int32Array(B * N);
  const input = new Int32Array(B).fill(o.bos);
  for (let i = 0; i < N; i++) {
    const logits = await o.predict(input, i);
    if (logits.length % B !== 0 || logits.length / B < k) throw new UserError(`decoding step ${i}: predict returned ${logits.length} logits, expected [${B}, ≥${k}]`);
    const V = logits.length / B;
    for (let b = 0; b < B; b++) {
      const t = sampleRow(topKRow(logits, b * V, k, topK), 0, k, temperature, rngs[b]!);
      tokens[b * N + i] = t;
      input[b] = t;
    }
    if (o.onStep) await o.onStep({ step: i, steps: N, tokens });
  }
  return { tokens, predictCalls: N };
}
