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
