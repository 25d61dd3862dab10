/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay, global-norm gradient clipping, and its
 * state as named tensors so that checkpoints can save it and `--resume` restore it exactly.
 * Gradients are computed elsewhere and handed in, so that data-parallel workers can average them first.
 */
import * as tf from '@tensorflow/tfjs';

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

  /** One update with learning rate `lr`. Grads are keyed like the variables; missing ones are skipped. */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.step++;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const c1 = 1 - Math.pow(b1, this.step);
    const c2 = 1 - Math.pow(b2, this.step);
    tf.tidy(() => {
      for (const [name, g] of Object.entries(grads)) {
        const p = this.vars[name];
        const m = this.m.get(name);
        const v = this.v.get(name);
        if (!p || !m || !v) continue;
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        m.assign(m1);
        v.assign(v1);
        let update = tf.div(tf.mul(m1, lr / c1), tf.add(tf.sqrt(tf.div(v1, c2)), this.eps));
        if (this.weightDecay > 0 && this.decay(name, p)) update = tf.add(update, tf.mul(p, lr * this.weightDecay));
        p.assign(tf.sub(p, update));
      }
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
 * Scales gradients so that their global l2 norm is at most `maxNorm`. Returns the new gradients
 * (the old ones are disposed) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: number } {
  const names = Object.keys(grads);
  const normT = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!))))));
  const norm = normT.dataSync()[0]!;
  normT.dispose();
  if (!(maxNorm > 0) || norm <= maxNorm || !Number.isFinite(norm)) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const out: Record<string, tf.Tensor> = {};
  for (const n of names) {
    out[n] = tf.mul(grads[n]!, scale);
    grads[n]!.dispose();
  }
  return { grads: out, norm };
}
