/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, global-norm gradient clipping, and its
 * state as named tensors so that checkpoints can save it and `--resume` restore it exactly.
 * Gradients are computed elsewhere and handed in, so that data-parallel workers can average them first.
 */
import * as tf from '@tensorflow/tfjs';
import { adamwUpdate, inPlaceAdamW, type AdamWEntry } from './fused-kernels.js';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which variables get weight decay; default: those of rank ≥ 2 (matrices, embeddings, convs). */
  decay?: (name: string, v: tf.Variable) => boolean;
}

export class AdamW {
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly decay: (name: string, v: tf.Variable) => boolean;

  constructor(private readonly vars: Record<string, tf.Variable>, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.99;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decay = opts.decay ?? ((_n, v) => v.rank >= 2);
    for (const [name, v] of Object.entries(vars)) {
      this.m.set(name, tf.variable(tf.zerosLike(v), false));
      this.v.set(name, tf.variable(tf.zerosLike(v), false));
    }
  }

  /**
   * One update with learning rate `lr`, gradients scaled by `gradScale` first (see `clipScale`).
   * Grads are keyed like the variables; missing ones are skipped.
   */
  apply(grads: Record<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.step++;
    const common = {
      gradScale,
      beta1: this.beta1,
      beta2: this.beta2,
      stepSize: lr / (1 - Math.pow(this.beta1, this.step)),
      invBias2: 1 / (1 - Math.pow(this.beta2, this.step)),
      eps: this.eps,
    };
    const entries: (AdamWEntry & { name: string })[] = [];
    for (const [name, g] of Object.entries(grads)) {
      const p = this.vars[name];
      const m = this.m.get(name);
      const v = this.v.get(name);
      if (!p || !m || !v) continue;
      entries.push({ name, p, m, v, g, decay: this.weightDecay > 0 && this.decay(name, p) ? lr * this.weightDecay : 0 });
    }
    // where the backend can, one pass over every parameter that writes p, m, v where they lie (no
    // new tensors, no assign); the others (and every parameter elsewhere) as new tensors, assigned
    const done = inPlaceAdamW()?.(entries, common) ?? [];
    entries.forEach((e, i) => {
      if (done[i]) return;
      const [p1, m1, v1] = adamwUpdate(e.p, e.m, e.v, e.g, { ...common, decay: e.decay });
      (e.p as tf.Variable).assign(p1);
      (e.m as tf.Variable).assign(m1);
      (e.v as tf.Variable).assign(v1);
      tf.dispose([p1, m1, v1]);
    });
  }

  /** The state as named tensors (`m/<var>`, `v/<var>`); the step goes in the checkpoint's state.json. */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, t] of this.m) out[`m/${name}`] = t;
    for (const [name, t] of this.v) out[`v/${name}`] = t;
    return out;
  }

  /** Restores state saved by `state()`; tensors are copied, the caller keeps ownership. */
  load(state: Record<string, tf.Tensor>, step: number): void {
    for (const [key, t] of Object.entries(state)) {
      const slash = key.indexOf('/');
      const table = key.slice(0, slash) === 'm' ? this.m : this.v;
      const target = table.get(key.slice(slash + 1));
      if (!target) throw new Error(`optimizer state names an unknown variable '${key}'`);
      target.assign(t);
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/**
 * The global l2 norm of `grads` and the factor that brings it down to `maxNorm` (1 when it is
 * already within, when `maxNorm` is 0, or when the norm is not finite), for `AdamW.apply`.
 */
/** The sum of the squares of some gradients' entries, already computed where they were made. */
export interface KnownSquares {
  sum: number;
  names: ReadonlySet<string>;
}

export function clipScale(grads: Record<string, tf.Tensor>, maxNorm: number, known?: KnownSquares): { norm: number; scale: number } {
  const names = Object.keys(grads).filter((n) => !known?.names.has(n));
  let squares = known?.sum ?? 0;
  if (names.length > 0) {
    const sumT = tf.tidy(() => tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!)))));
    squares += sumT.dataSync()[0]!;
    sumT.dispose();
  }
  const norm = Math.sqrt(squares);
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return { norm, scale: 1 };
  return { norm, scale: maxNorm / (norm + 1e-6) };
}
