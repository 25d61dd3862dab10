/**
 * One step of iterative parallel decoding (MaskGIT / Muse), pure over typed arrays and a seeded Rng,
 * so it gives the same tokens on every tfjs backend for the same logits.
 *
 * For every masked position: sample a token from softmax(logits / temperature) over the K codebook
 * logits (temperature 0 = argmax), score it with confidence = log p(token) + choiceTemperature · g,
 * g ~ Gumbel(0, 1), where p is the model's own distribution softmax(logits) (temperature 1: the
 * sampling temperature changes which token is drawn, not how confident the model is in it — and at
 * temperature 0 the tempered probability would be 1 everywhere); then keep the most confident so
 * that exactly the requested number of positions stays masked. Known tokens count as +∞ confident:
 * they are never re-masked and never changed.
 */
import { UserError } from '../errors.js';
import type { Rng } from '../random.js';

/** The largest logit of row [offset, offset + k); throws on NaN, +∞ or a row that is all −∞. */
function rowMax(logits: Float32Array, offset: number, k: number): number {
  let max = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = logits[offset + j]!;
    if (v !== v) throw new UserError(`decoding: logits contain NaN (at element ${offset + j})`);
    if (v > max) max = v;
  }
  if (max === Infinity) throw new UserError(`decoding: logits contain +Infinity (in the row at element ${offset})`);
  if (max === -Infinity) throw new UserError(`decoding: every logit is −Infinity in the row at element ${offset}`);
  return max;
}

/** log Σ_j exp(logits[offset + j]) over j < k, computed stably. */
export function logSumExp(logits: Float32Array, offset: number, k: number): number {
  const max = rowMax(logits, offset, k);
  let sum = 0;
  for (let j = 0; j < k; j++) sum += Math.exp(logits[offset + j]! - max);
  return max + Math.log(sum);
}

/** log softmax of the row [offset, offset + k) of `logits`, as a new Float64Array of length k. */
export function logSoftmaxRow(logits: Float32Array, offset: number, k: number): Float64Array {
  const lse = logSumExp(logits, offset, k);
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) out[j] = logits[offset + j]! - lse;
  return out;
}

/** softmax of the row [offset, offset + k) of `logits` divided by `temperature` (> 0), as a new Float64Array. */
export function softmaxRow(logits: Float32Array, offset: number, k: number, temperature = 1): Float64Array {
  if (!(temperature > 0)) throw new UserError(`softmax temperature must be > 0, got ${temperature}`);
  const max = rowMax(logits, offset, k);
  const out = new Float64Array(k);
  let sum = 0;
  for (let j = 0; j < k; j++) sum += out[j] = Math.exp((logits[offset + j]! - max) / temperature);
  for (let j = 0; j < k; j++) out[j]! /= sum;
  return out;
}

/** Index of the largest logit in row [offset, offset + k) (the lowest index on ties). */
export function argmaxRow(logits: Float32Array, offset: number, k: number): number {
  const max = rowMax(logits, offset, k);
  for (let j = 0; j < k; j++) if (logits[offset + j]! === max) return j;
  return 0; // unreachable: rowMax found max in the row
}

/**
 * Draws a token index j < k from softmax(row / temperature), using exactly one `rng.next()`;
 * temperature 0 returns the argmax and draws nothing.
 */
export function sampleRow(logits: Float32Array, offset: number, k: number, temperature: number, rng: Rng): number {
  return sampleWithLogProb(logits, offset, k, temperature, rng).token;
}

/**
 * Draws a token index j < k from softmax(row / temperature) (one `rng.next()`; temperature 0 = the
 * argmax, no draw) and returns it with its log probability under the untempered softmax(row) —
 * the confidence decoding uses. Few passes over the row: it runs once per masked position per step.
 */
export function sampleWithLogProb(logits: Float32Array, offset: number, k: number, temperature: number, rng: Rng): { token: number; logProb: number } {
  if (!Number.isFinite(temperature) || temperature < 0) throw new UserError(`temperature must be a number ≥ 0, got ${temperature}`);
  const max = rowMax(logits, offset, k);
  let sum1 = 0;
  let sumT = 0;
  const inv = temperature > 0 ? 1 / temperature : 0;
  for (let j = 0; j < k; j++) {
    const d = logits[offset + j]! - max;
    sum1 += Math.exp(d);
    if (temperature > 0 && temperature !== 1) sumT += Math.exp(d * inv);
  }
  let token: number;
  if (temperature === 0) {
    token = 0;
    while (logits[offset + token]! !== max) token++; // the first maximum
  } else {
    if (temperature === 1) sumT = sum1;
    const u = rng.next() * sumT;
    let acc = 0;
    token = -1;
    let last = 0;
    for (let j = 0; j < k; j++) {
      const w = temperature === 1 ? Math.exp(logits[offset + j]! - max) : Math.exp((logits[offset + j]! - max) * inv);
      if (w > 0) last = j;
      acc += w;
      if (u < acc) {
        token = j;
        break;
      }
    }
    if (token < 0) token = last;
  }
  return { token, logProb: logits[offset + token]! - max - Math.log(sum1) };
}

/** A standard Gumbel(0, 1) sample −log(−log u), u ∈ (0, 1) from `rng`. */
export function gumbel(rng: Rng): number {
  let u = rng.next();
  while (u === 0) u = rng.next();
  return -Math.log(-Math.log(u));
}

/**
 * The indices of the `count` largest of `scores`, largest first; on equal scores the lower index
 * comes first (so the choice is deterministic). NaN scores rank below everything.
 */
export function topKIndices(scores: ArrayLike<number>, count: number): Int32Array {
  if (!Number.isInteger(count) || count < 0 || count > scores.length) {
    throw new UserError(`top-k: count must be a whole number in [0, ${scores.length}], got ${count}`);
  }
  const key = (i: number): number => {
    const v = scores[i]!;
    return v !== v ? -Infinity : v;
  };
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  idx.sort((a, b) => {
    const d = key(b) - key(a);
    return d > 0 ? 1 : d < 0 ? -1 : a - b;
  });
  return Int32Array.from(idx.slice(0, count));
}

export interface DecodeStepOptions {
  /** Logits [B, N, V] with V ≥ k; only the first k (the codebook) of each row count. */
  logits: Float32Array;
  /** Tokens [B, N]: a codebook id in [0, k) where known, `maskId` where masked. */
  tokens: Int32Array;
  /** The [MASK] id; must not be a codebook id (conventionally k). */
  maskId: number;
  /** Codebook size K. */
  k: number;
  /** Sampling temperature (≥ 0; 0 = argmax). */
  temperature: number;
  /** Scale of the Gumbel noise added to the confidences (≥ 0; 0 = keep the most probable). */
  choiceTemperature: number;
  /** Per batch item: how many positions stay masked after this step (0 … currently masked). Its length is B. */
  targetMasked: readonly number[];
  /** The randomness: one Rng for the whole batch, or one per batch item (then items do not depend on each other). */
  rng: Rng | readonly Rng[];
}

/** Result of `decodeStepDetailed`. */
export interface DecodeStepResult {
  /** The new tokens [B, N]. */
  tokens: Int32Array;
  /** The token sampled at every position that was masked (kept or not); −1 where the position was known. */
  sampled: Int32Array;
  /** The confidence of every position that was masked (not computed, +∞, for an item whose masked positions are all re-masked); +∞ where it was known. */
  confidence: Float64Array;
  /** log p(sampled token) under the model's untempered distribution, where `confidence` was computed; +∞ elsewhere. */
  logProb: Float64Array;
}

function isRng(r: Rng | readonly Rng[]): r is Rng {
  return typeof (r as Rng).next === 'function';
}

/** Checks the shapes of a decodeStep call and returns [B, N, V]. */
function checkStep(o: DecodeStepOptions): [number, number, number] {
  const { logits, tokens, maskId, k, targetMasked } = o;
  if (!Number.isInteger(k) || k < 1) throw new UserError(`decoding: codebook size k must be a whole number ≥ 1, got ${k}`);
  if (!Number.isInteger(maskId) || (maskId >= 0 && maskId < k)) {
    throw new UserError(`decoding: mask id must be a whole number outside the codebook [0, ${k - 1}], got ${maskId}`);
  }
  const B = targetMasked.length;
  if (B < 1) throw new UserError('decoding: targetMasked must have one entry per batch item (got none)');
  if (tokens.length % B !== 0 || tokens.length === 0) throw new UserError(`decoding: ${tokens.length} tokens do not split into ${B} batch items`);
  const N = tokens.length / B;
  if (logits.length % (B * N) !== 0) throw new UserError(`decoding: ${logits.length} logits do not split into ${B}×${N} rows`);
  const V = logits.length / (B * N);
  if (V < k) throw new UserError(`decoding: logits have ${V} entries per position, fewer than the codebook size ${k}`);
  if (!Number.isFinite(o.temperature) || o.temperature < 0) throw new UserError(`temperature must be a number ≥ 0, got ${o.temperature}`);
  if (!Number.isFinite(o.choiceTemperature) || o.choiceTemperature < 0) {
    throw new UserError(`choice temperature must be a number ≥ 0, got ${o.choiceTemperature}`);
  }
  if (!isRng(o.rng) && o.rng.length !== B) throw new UserError(`decoding: ${o.rng.length} Rngs given for ${B} batch items`);
  return [B, N, V];
}

/** `decodeStep`, also returning the sampled token and the confidence of every masked position. */
export function decodeStepDetailed(o: DecodeStepOptions): DecodeStepResult {
  const [B, N, V] = checkStep(o);
  const { logits, tokens, maskId, k, temperature, choiceTemperature, targetMasked } = o;
  const out = Int32Array.from(tokens);
  const sampled = new Int32Array(B * N).fill(-1);
  const confidence = new Float64Array(B * N).fill(Infinity);
  const logProbs = new Float64Array(B * N).fill(Infinity);
  for (let b = 0; b < B; b++) {
    const rng = isRng(o.rng) ? o.rng : o.rng[b]!;
    const masked: number[] = [];
    for (let i = 0; i < N; i++) {
      const tok = tokens[b * N + i]!;
      if (tok === maskId) masked.push(i);
      else if (!Number.isInteger(tok) || tok < 0 || tok >= k) {
        throw new UserError(`decoding: token ${tok} at batch item ${b}, position ${i} is neither a codebook id in [0, ${k - 1}] nor the mask id ${maskId}`);
      }
    }
    const target = targetMasked[b]!;
    if (!Number.isInteger(target) || target < 0 || target > masked.length) {
      throw new UserError(`decoding: batch item ${b} has ${masked.length} masked tokens, cannot leave ${target} masked`);
    }
    const keep = masked.length - target;
    if (keep === 0) continue;
    const conf = new Float64Array(masked.length);
    for (let j = 0; j < masked.length; j++) {
      const pos = b * N + masked[j]!;
      const offset = pos * V;
      const { token, logProb } = sampleWithLogProb(logits, offset, k, temperature, rng);
      sampled[pos] = token;
      logProbs[pos] = logProb;
      let c = logProb;
      if (choiceTemperature > 0) c += choiceTemperature * gumbel(rng);
      conf[j] = c;
      confidence[pos] = c;
    }
    for (const j of topKIndices(conf, keep)) {
      const pos = b * N + masked[j]!;
      out[pos] = sampled[pos]!;
    }
  }
  return { tokens: out, sampled, confidence, logProb: logProbs };
}

/**
 * One decoding step: returns new tokens [B, N] in which every known token is unchanged, exactly
 * `targetMasked[b]` positions of item b are still `maskId`, and the other previously masked ones
 * hold sampled tokens — those with the highest confidence log p(token) + choiceTemperature · Gumbel.
 * The input arrays are not modified. Randomness per item, in position order: one draw to sample
 * (none at temperature 0), then Gumbel draws (none at choice temperature 0); an item that keeps
 * nothing this step draws nothing.
 */
export function decodeStep(o: DecodeStepOptions): Int32Array {
  return decodeStepDetailed(o).tokens;
}

/**
 * The positions to re-mask in a polishing round: of each item's `candidates` (positions that may be
 * resampled, i.e. not given by the caller), the `count` whose tokens had the lowest log probability
 * when they were sampled (ties: lower position first), as a sorted list per item. `logProb` is
 * [B, N]; `candidates[b]` lists item b's positions.
 */
export function lowestConfidence(logProb: ArrayLike<number>, n: number, candidates: readonly (readonly number[])[], count: number): number[][] {
  if (!Number.isInteger(count) || count < 0) throw new UserError(`polish: count must be a whole number ≥ 0, got ${count}`);
  return candidates.map((cands, b) => {
    const scores = cands.map((i) => -logProb[b * n + i]!);
    return Array.from(topKIndices(scores, Math.min(count, cands.length)), (j) => cands[j]!).sort((x, y) => x - y);
  });
}
