/**
 * Variations of an image (image prompts): the image's own token grid, a share of it re-masked and
 * filled again by parallel decoding. The pure rules: how many tokens to re-mask and how many
 * decoding steps that takes, and which positions each variation re-masks.
 */
import { UserError } from '../errors.js';
import { Rng } from '../random.js';
import { checkSteps } from './schedules.js';

/** Default strength of `generate --variations`: half of the tokens re-masked. */
export const DEFAULT_VARIATION_STRENGTH = 0.5;

export interface VariationSchedule {
  /** Tokens re-masked per variation: round(strength · n), at least 1. */
  masked: number;
  /** Decoding steps to fill them: the steps a `steps`-step generation has left once only that share is masked. */
  steps: number;
}

/**
 * Where a variation of strength s ∈ (0, 1] enters generation's cosine schedule (`maskRatio`): a T-step
 * generation from all-[MASK] has γ(r) = cos(π/2 · r) of the tokens masked at time r, so s of them
 * are masked at r₀ = (2/π) · acos(s), and the steps left are ⌈T · (1 − r₀)⌉ (at least 1, at most T):
 * s = 1 is a whole new generation in T steps, s = 0.5 at T = 12 re-masks half in 4 steps, small
 * strengths in 1. Like SDEdit's strength for diffusion, but on tokens.
 */
export function variationSchedule(n: number, strength: number, steps: number): VariationSchedule {
  if (!Number.isInteger(n) || n < 1) throw new UserError(`variations: the number of tokens must be a whole number ≥ 1, got ${n}`);
  if (!Number.isFinite(strength) || strength <= 0 || strength > 1) throw new UserError(`variation strength (the share of tokens re-masked) must be in (0, 1], got ${strength}`);
  checkSteps(steps, 'decoding steps');
  const masked = Math.min(n, Math.max(1, Math.round(strength * n)));
  const r0 = (2 / Math.PI) * Math.acos(strength);
  // cos/acos round-trip: γ(r0) = strength up to floating point; 1e-9 keeps ⌈12 · 0.5⌉ from becoming 7.
  const left = Math.ceil(steps * (1 - r0) - 1e-9);
  return { masked, steps: Math.min(steps, Math.max(1, left)) };
}

/**
 * The positions variation `index` re-masks: `count` of the n, uniformly at random, sorted. They
 * depend only on (seed, index), so variation i is the same whatever the batch size or how many are made.
 */
export function variationPositions(n: number, count: number, seed: number, index: number): number[] {
  if (!Number.isInteger(seed) || !Number.isInteger(index) || index < 0) throw new UserError(`variations: bad seed ${seed} or index ${index}`);
  if (!Number.isInteger(count) || count < 0 || count > n) throw new UserError(`variations: cannot re-mask ${count} of ${n} tokens`);
  const master = new Rng(seed);
  for (let i = 0; i < index; i++) master.seed();
  return new Rng(master.seed()).permutation(n).slice(0, count).sort((a, b) => a - b);
}

/** B copies of `tokens` [N], copy b with `positions[b]` set to `maskId`. */
export function remaskCopies(tokens: Int32Array, positions: number[][], maskId: number): Int32Array {
  const N = tokens.length;
  const out = new Int32Array(N * positions.length);
  positions.forEach((pos, b) => {
    out.set(tokens, b * N);
    for (const i of pos) out[b * N + i] = maskId;
  });
  return out;
}
