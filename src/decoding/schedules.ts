/**
 * Schedules of iterative parallel decoding (MaskGIT / Muse), as pure functions of plain numbers:
 * how many tokens stay masked after each step, the choice temperature of the Gumbel noise that
 * picks which tokens to keep, and the classifier-free guidance scale per step.
 *
 * Steps are 0-based: step t of T runs t = 0 … T − 1.
 */
import { UserError } from '../errors.js';

/** The default number of decoding steps (MaskGIT and Muse use 8–12; we use 12). */
export const DEFAULT_STEPS = 12;
/** The default classifier-free guidance scale of text-to-image generation. */
export const DEFAULT_GUIDANCE = 3;

/**
 * The cosine mask schedule γ(r) = cos(π/2 · r) for r ∈ [0, 1]: the fraction of tokens masked at
 * "time" r. γ(0) = 1 (all masked), γ(1) = 0 (exactly; cos(π/2) is not quite 0 in floating point).
 * Used both by training (r ~ U(0, 1)) and by decoding (r = (t + 1)/T).
 */
export function maskRatio(r: number): number {
  if (!Number.isFinite(r) || r < 0 || r > 1) throw new UserError(`mask ratio: r must be in [0, 1], got ${r}`);
  if (r === 1) return 0;
  return Math.cos((Math.PI / 2) * r);
}

/** Checks that `steps` is a whole number ≥ 1 (what every schedule needs). */
export function checkSteps(steps: number, what = 'steps'): void {
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`${what} must be a whole number ≥ 1, got ${steps}`);
}

function checkStep(t: number, steps: number): void {
  checkSteps(steps);
  if (!Number.isInteger(t) || t < 0 || t >= steps) throw new UserError(`step must be a whole number in [0, ${steps - 1}], got ${t}`);
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${what} must be a whole number ≥ 0, got ${n}`);
}

/**
 * The whole mask schedule: element t is how many of the `masked0` initially masked tokens are still
 * masked after step t (0-based) of `steps`.
 *
 * The target is floor(masked0 · cos(π/2 · (t + 1)/T)) (MaskGIT), made explicit with its guarantees:
 * - it never goes up;
 * - each step unmasks at least one token while any are masked: count_t ≤ count_{t−1} − 1
 *   (with count_{−1} = masked0), so when T is close to or above masked0 the early steps unmask
 *   more than the cosine asks and the schedule reaches 0 before the last step (T > masked0: all
 *   tokens are known after masked0 steps and the remaining steps have nothing to do);
 * - the last step leaves 0.
 *
 * Editing (only m of the n positions masked at the start) uses the same cosine over the m masked
 * ones: `maskSchedule(m, T)`.
 */
export function maskSchedule(masked0: number, steps: number): number[] {
  checkCount(masked0, 'the number of masked tokens');
  checkSteps(steps);
  const out: number[] = [];
  let prev = masked0;
  for (let t = 0; t < steps; t++) {
    let c = t === steps - 1 ? 0 : Math.floor(masked0 * maskRatio((t + 1) / steps));
    c = Math.max(0, Math.min(c, prev - 1));
    out.push(c);
    prev = c;
  }
  return out;
}

/**
 * How many of n tokens are still masked after step t (0-based) of T; see `maskSchedule` for the
 * rule and its guarantees. With `startMasked` (editing: only that many of the n positions are masked
 * at the start; default n) the count follows the same cosine over those masked ones.
 */
export function maskedAfterStep(n: number, t: number, steps: number, startMasked: number = n): number {
  checkCount(n, 'the number of tokens');
  checkCount(startMasked, 'the number of masked tokens');
  if (startMasked > n) throw new UserError(`cannot have ${startMasked} masked tokens out of ${n}`);
  checkStep(t, steps);
  return maskSchedule(startMasked, steps)[t]!;
}

/**
 * The choice temperature at step t of T: start · (1 − (t + 1)/T), as in MaskGIT. It scales the
 * Gumbel noise added to the confidences that decide which tokens to keep; it falls linearly and is
 * exactly 0 at the last step (which keeps everything anyway). T = 1 gives 0.
 */
export function choiceTemperature(t: number, steps: number, start: number): number {
  checkStep(t, steps);
  if (!Number.isFinite(start) || start < 0) throw new UserError(`choice temperature must be a number ≥ 0, got ${start}`);
  if (t === steps - 1) return 0;
  return start * (1 - (t + 1) / steps);
}

/** How the guidance scale evolves over the decoding steps. */
export type GuidanceSchedule = 'constant' | 'linear';

export interface GuidanceOptions {
  /** The guidance scale s of `uncond + s · (cond − uncond)`: 0 = unconditional, 1 = conditional (no guidance). */
  scale: number;
  /** 'constant' (default): s at every step; 'linear': rising from 1 to s (Muse). */
  schedule?: GuidanceSchedule;
}

/**
 * The guidance scale at step t of T.
 * - 'constant': `scale` at every step.
 * - 'linear': 1 + (scale − 1) · t/(T − 1), i.e. exactly 1 (the plain conditional prediction, no
 *   guidance) at step 0, rising linearly to exactly `scale` at the last step; T = 1 gives `scale`.
 *   This is Muse's ramp: its ℓ_g = (1 + g)ℓ_c − gℓ_u with g rising from 0, and s = 1 + g here, so
 *   the early tokens are sampled freely and the prompt weighs more on the later ones.
 */
export function guidanceAt(t: number, steps: number, opts: GuidanceOptions): number {
  checkStep(t, steps);
  const { scale } = opts;
  const schedule = opts.schedule ?? 'constant';
  if (!Number.isFinite(scale) || scale < 0) throw new UserError(`guidance scale must be a number ≥ 0, got ${scale}`);
  if (schedule === 'constant') return scale;
  if (schedule !== 'linear') throw new UserError(`guidance schedule must be 'constant' or 'linear', got '${String(schedule)}'`);
  if (steps === 1 || t === steps - 1) return scale;
  return 1 + (scale - 1) * (t / (steps - 1));
}
