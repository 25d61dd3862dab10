/**
 * Token-by-token decoding of an autoregressive (Parti-style) transformer, the baseline parallel
 * decoding is measured against: N model calls for N tokens, in raster order. Model-free like
 * parallelDecode: the caller's `predict` (already guided) maps the shifted-right grids to logits.
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
  /** The start token (the [MASK] id); also fills the positions not yet decoded, which the causal mask hides. */
  bos: number;
  /** Input grids [B, N] (start token, then the tokens so far, shifted right) at step i → logits [B, N, V ≥ K]; step i reads row i. */
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
  const input = new Int32Array(B * N).fill(o.bos);
  for (let i = 0; i < N; i++) {
    const logits = await o.predict(input, i);
    if (logits.length % (B * N) !== 0 || logits.length / (B * N) < k) throw new UserError(`decoding step ${i}: predict returned ${logits.length} logits, expected [${B}, ${N}, ≥${k}]`);
    const V = logits.length / (B * N);
    for (let b = 0; b < B; b++) {
      const t = sampleRow(topKRow(logits, (b * N + i) * V, k, topK), 0, k, temperature, rngs[b]!);
      tokens[b * N + i] = t;
      if (i + 1 < N) input[b * N + i + 1] = t;
    }
    if (o.onStep) await o.onStep({ step: i, steps: N, tokens });
  }
  return { tokens, predictCalls: N };
}
