/**
 * The iterative parallel decoding loop of MaskGIT / Muse, independent of the model and the backend:
 * the caller's `predict` turns tokens into logits, this decides what to sample and what to re-mask.
 *
 * Start from the given tokens (default: all [MASK]); at step t of T predict logits for every
 * position, sample every masked position, keep the most confident so that `maskSchedule(m_b, T)[t]`
 * positions of item b stay masked (m_b = how many item b had masked at the start), re-mask the rest.
 * Tokens given at the start and tokens once kept never change; the last step fills everything.
 */
import { UserError } from '../errors.js';
import { nextTurn } from '../event-loop.js';
import { Rng } from '../random.js';
import { applyGuidance, applyPlausibleGuidance } from './guidance.js';
import { decodeStepDetailed, lowestConfidence } from './sampling.js';
import { checkSteps, choiceTemperature, DEFAULT_STEPS, guidanceAt, maskSchedule, type GuidanceSchedule } from './schedules.js';

/** MaskGIT's default starting choice temperature (the Gumbel noise scale at step 0, before annealing). */
export const DEFAULT_CHOICE_TEMPERATURE = 4.5;

/** A model call: tokens [B, N] (maskId where masked) at step t → logits [B, N, V ≥ K], already guided. */
export type PredictFn = (tokens: Int32Array, step: number) => Float32Array | Promise<Float32Array>;

/** What `onStep` is told after each step. */
export interface DecodeStepInfo {
  /** The step just done (0-based). */
  step: number;
  /** The number of steps T. */
  steps: number;
  /** The tokens [B, N] after this step (do not modify; a new array every step). */
  tokens: Int32Array;
  /** Per batch item: how many positions are still masked after this step. */
  masked: number[];
  /** The choice temperature used at this step. */
  choiceTemperature: number;
  /** False when nothing was masked at this step's start, so the model was not called. */
  predicted: boolean;
}

export interface ParallelDecodeOptions {
  /** Batch size B. */
  batch: number;
  /** Tokens per image N (h · w). */
  n: number;
  /** Codebook size K. */
  k: number;
  /** The [MASK] id (outside [0, K); conventionally K). */
  maskId: number;
  /** Decoding steps T ≥ 1 (default 12). */
  steps?: number;
  /** Starting tokens [B, N], maskId where to generate (editing); default all masked. Not modified. */
  initialTokens?: Int32Array;
  /** The model. */
  predict: PredictFn;
  /** Sampling temperature (default 1; 0 = argmax). */
  temperature?: number;
  /** Choice temperature at step 0, annealed linearly to 0 (default 4.5, MaskGIT's). */
  choiceTemperatureStart?: number;
  /** Seed: the same seed (and logits) gives the same tokens. Item b draws from its own Rng, seeded from `seed` and b only, so an item does not depend on the batch size. */
  seed: number;
  /** Called after every step. */
  onStep?: (info: DecodeStepInfo) => void | Promise<void>;
  /** Keep the tokens after every step in the result's `history` (default false). */
  history?: boolean;
  /**
   * Polishing after the T steps (default none): `rounds` times, re-mask the `share` of each item's
   * generated tokens that were least probable when sampled and sample them again, all at once, with
   * the whole grid around them known. Tokens given in `initialTokens` are never re-masked. Each round
   * is one more model call (at step T − 1's guidance); `onStep` is not told of them.
   */
  polish?: PolishOptions;
}

export interface PolishOptions {
  /** How many re-mask-and-resample rounds (0 = off). */
  rounds: number;
  /** Share of each item's generated tokens re-masked per round, in (0, 1]. */
  share: number;
}

export interface ParallelDecodeResult {
  /** The final tokens [B, N], with no mask left. */
  tokens: Int32Array;
  /** With `history: true`: the tokens after each step, T arrays (and the polished grid last, with `polish`). */
  history?: Int32Array[];
  /** How many times `predict` was called (fewer than T when everything was known early). */
  predictCalls: number;
}

/** One Rng per batch item: item b's seed is the b-th draw of Rng(seed), so it does not depend on B. */
export function itemRngs(seed: number, batch: number): Rng[] {
  if (!Number.isInteger(seed)) throw new UserError(`seed must be a whole number, got ${seed}`);
  const master = new Rng(seed);
  return Array.from({ length: batch }, () => new Rng(master.seed()));
}

function checkWhole(v: number, what: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UserError(`${what} must be a whole number ≥ ${min}, got ${v}`);
}

/** Runs T steps of parallel decoding and returns the filled token grids. */
export async function parallelDecode(o: ParallelDecodeOptions): Promise<ParallelDecodeResult> {
  const { batch: B, n: N, k, maskId, predict } = o;
  const T = o.steps ?? DEFAULT_STEPS;
  const temperature = o.temperature ?? 1;
  const choiceStart = o.choiceTemperatureStart ?? DEFAULT_CHOICE_TEMPERATURE;
  checkWhole(B, 'batch size', 1);
  checkWhole(N, 'the number of tokens per image', 1);
  checkWhole(k, 'codebook size', 1);
  checkSteps(T, 'decoding steps');
  if (!Number.isInteger(maskId) || (maskId >= 0 && maskId < k)) {
    throw new UserError(`mask id must be a whole number outside the codebook [0, ${k - 1}], got ${maskId}`);
  }
  if (!Number.isFinite(temperature) || temperature < 0) throw new UserError(`temperature must be a number ≥ 0, got ${temperature}`);
  if (!Number.isFinite(choiceStart) || choiceStart < 0) throw new UserError(`choice temperature must be a number ≥ 0, got ${choiceStart}`);
  const rngs = itemRngs(o.seed, B);

  let tokens: Int32Array;
  if (o.initialTokens) {
    if (o.initialTokens.length !== B * N) {
      throw new UserError(`initial tokens: expected ${B}×${N} = ${B * N}, got ${o.initialTokens.length}`);
    }
    tokens = Int32Array.from(o.initialTokens);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t !== maskId && (t < 0 || t >= k)) {
        throw new UserError(`initial tokens: ${t} at batch item ${Math.floor(i / N)}, position ${i % N} is neither a codebook id in [0, ${k - 1}] nor the mask id ${maskId}`);
      }
    }
  } else {
    tokens = new Int32Array(B * N).fill(maskId);
  }

  const rounds = o.polish?.rounds ?? 0;
  const share = o.polish?.share ?? 1;
  if (rounds > 0) {
    checkWhole(rounds, 'polish rounds', 0);
    if (!(share > 0 && share <= 1)) throw new UserError(`polish share must be in (0, 1], got ${share}`);
  }

  // The positions each item generates (masked at the start); the given ones are never polished.
  const generated = Array.from({ length: B }, (_, b) => {
    const pos: number[] = [];
    for (let i = 0; i < N; i++) if (tokens[b * N + i] === maskId) pos.push(i);
    return pos;
  });
  // Each item follows the cosine over its own masked count.
  let masked = generated.map((g) => g.length);
  const schedules = masked.map((m) => maskSchedule(m, T));

  const history: Int32Array[] | undefined = o.history ? [] : undefined;
  let predictCalls = 0;
  // log p of each generated token when it was sampled.
  const logProb = new Float64Array(B * N).fill(Infinity);
  for (let t = 0; t < T; t++) {
    const ct = choiceTemperature(t, T, choiceStart);
    const anyMasked = masked.some((m) => m > 0);
    if (anyMasked) {
      const logits = await predict(tokens, t);
      predictCalls++;
      if (!(logits instanceof Float32Array)) throw new UserError(`decoding step ${t}: predict must return a Float32Array`);
      if (logits.length % (B * N) !== 0 || logits.length / (B * N) < k) {
        throw new UserError(`decoding step ${t}: predict returned ${logits.length} logits, expected [${B}, ${N}, ≥${k}]`);
      }
      const step = decodeStepDetailed({
        logits,
        tokens,
        maskId,
        k,
        temperature,
        choiceTemperature: ct,
        targetMasked: schedules.map((s) => s[t]!),
        rng: rngs,
      });
      for (let i = 0; i < tokens.length; i++) if (tokens[i] === maskId && step.tokens[i] !== maskId) logProb[i] = step.logProb[i]!;
      tokens = step.tokens;
      masked = schedules.map((s) => s[t]!);
    }
    history?.push(tokens);
    await nextTurn(); // a step is seconds of synchronous work on slow backends: let timers and I/O run
    if (o.onStep) await o.onStep({ step: t, steps: T, tokens, masked: masked.slice(), choiceTemperature: ct, predicted: anyMasked });
  }
  if (rounds > 0) {
    const count = Math.round(share * Math.max(...generated.map((g) => g.length)));
    for (let r = 0; r < rounds; r++) {
      const redo = lowestConfidence(logProb, N, generated, count);
      if (redo.every((p) => p.length === 0)) break;
      const remasked = Int32Array.from(tokens);
      redo.forEach((pos, b) => pos.forEach((i) => (remasked[b * N + i] = maskId)));
      const logits = await predict(remasked, T - 1);
      predictCalls++;
      const step = decodeStepDetailed({ logits, tokens: remasked, maskId, k, temperature, choiceTemperature: 0, targetMasked: redo.map(() => 0), rng: rngs });
      redo.forEach((pos, b) => pos.forEach((i) => (logProb[b * N + i] = step.logProb[b * N + i]!)));
      tokens = step.tokens;
    }
    history?.push(tokens);
  }
  return history ? { tokens, history, predictCalls } : { tokens, predictCalls };
}

export interface GuidedPredictOptions {
  /**
   * The model on both branches at once (the caller batches the conditional and unconditional — or
   * negative-prompt — passes together): tokens [B, N] → logits [B, N, V] for each.
   */
  predictBoth: (tokens: Int32Array, step: number) => { cond: Float32Array; uncond: Float32Array } | Promise<{ cond: Float32Array; uncond: Float32Array }>;
  /**
   * Optional: the conditional branch alone. When given, it is used instead of `predictBoth` at steps
   * whose guidance scale is exactly 1 (no guidance: e.g. step 0 of the linear schedule), saving the
   * unconditional pass.
   */
  predictCond?: (tokens: Int32Array, step: number) => Float32Array | Promise<Float32Array>;
  /** Guidance scale s (0 = unconditional, 1 = conditional, > 1 = guided). */
  scale: number;
  /** 'constant' (default) or 'linear' (from 1 at step 0 to `scale` at the last step); see `guidanceAt`. */
  schedule?: GuidanceSchedule;
  /** Decoding steps T (the same as given to parallelDecode). */
  steps: number;
  /**
   * Keep guidance within the conditional branch's plausible tokens: a token less than this share as
   * probable as its row's most probable conditional token is ruled out (`applyPlausibleGuidance`).
   * 0 (default) = off. Needs `vocab`.
   */
  plausibility?: number;
  /** Logits per token (the row length of `cond`/`uncond`); needed with `plausibility`. */
  vocab?: number;
}

/**
 * Wraps a two-branch model call into a `predict` for `parallelDecode` that returns
 * uncond + s_t · (cond − uncond), with s_t = guidanceAt(t, T, {scale, schedule}). The guided logits
 * are written over `cond`.
 */
export function guidedPredict(o: GuidedPredictOptions): PredictFn {
  checkSteps(o.steps, 'decoding steps');
  const schedule = o.schedule ?? 'constant';
  guidanceAt(0, o.steps, { scale: o.scale, schedule }); // validates scale and schedule now
  const alpha = o.plausibility ?? 0;
  if (!(alpha >= 0 && alpha <= 1)) throw new UserError(`plausibility must be in [0, 1], got ${alpha}`);
  if (alpha > 0 && !(o.vocab !== undefined && Number.isInteger(o.vocab) && o.vocab >= 1)) throw new UserError('plausibility needs the vocabulary size (vocab)');
  return async (tokens, step) => {
    const s = guidanceAt(step, o.steps, { scale: o.scale, schedule });
    // Unguided steps (s = 1) sample the conditional model as it is: its own plausible set.
    if (s === 1 && o.predictCond) return await o.predictCond(tokens, step);
    const { cond, uncond } = await o.predictBoth(tokens, step);
    return alpha > 0 && s !== 1 ? applyPlausibleGuidance(cond, uncond, s, o.vocab!, alpha, cond) : applyGuidance(cond, uncond, s, cond);
  };
}
