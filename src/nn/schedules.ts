/** Learning-rate schedules: pure functions of the step. */

export interface LrSchedule {
  lr: number;
  warmup: number;
  total: number;
  /** Final learning rate as a fraction of `lr` (cosine decays to it). */
  minRatio?: number;
}

/** Linear warm-up from 0 to `lr` over `warmup` steps, then cosine decay to `lr·minRatio` at `total`. */
export function warmupCosine(step: number, s: LrSchedule): number {
  const min = s.lr * (s.minRatio ?? 0.1);
  if (s.warmup > 0 && step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  if (step >= s.total) return min;
  const span = Math.max(1, s.total - s.warmup);
  const progress = (step - s.warmup) / span;
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/**
 * The decay of an exponential moving average of weights after `updates` updates:
 * min(decay, (1 + updates) / (10 + updates)). Early on the average follows the weights closely
 * (0.1 at the first update, 0.5 at the 8th), so it is not stuck near the initialisation; later it is
 * `decay` (0.999 averages over about the last 1,000 steps).
 */
export function emaDecayAt(updates: number, decay: number): number {
  if (!(decay >= 0 && decay < 1)) throw new RangeError(`EMA decay must be in [0, 1), got ${decay}`);
  if (!Number.isInteger(updates) || updates < 0) throw new RangeError(`EMA updates must be a whole number ≥ 0, got ${updates}`);
  return Math.min(decay, (1 + updates) / (10 + updates));
}
