/**
 * An exponential moving average of a set of weights (Polyak averaging), as image generators keep
 * for sampling: after each optimizer step, avg ← d · avg + (1 − d) · w with d = `emaDecayAt`. The
 * averaged weights are what a bundle ships; the trained ones go on training.
 */
import * as tf from '@tensorflow/tfjs';
import { emaUpdate } from './fused-kernels.js';
import { emaDecayAt } from './schedules.js';

/** The prefix of the average's tensors in a checkpoint's optimizer state. */
export const EMA_PREFIX = 'ema/';

export class Ema {
  private readonly avg = new Map<string, tf.Variable>();
  /** Updates since the average was (re)started. */
  updates = 0;

  constructor(private readonly vars: Record<string, tf.Variable>, readonly decay: number) {
    emaDecayAt(0, decay); // validates
    this.restart();
  }

  /** Starts the average over at the weights as they are now. */
  restart(): void {
    for (const t of this.avg.values()) t.dispose();
    this.avg.clear();
    for (const [name, v] of Object.entries(this.vars)) {
      const copy = v.clone();
      this.avg.set(name, tf.variable(copy, false));
      copy.dispose();
    }
    this.updates = 0;
  }

  /** One step of the average toward the current weights. */
  update(): void {
    const d = emaDecayAt(this.updates, this.decay);
    for (const [name, a] of this.avg) {
      const next = emaUpdate(a, this.vars[name]!, d);
      a.assign(next);
      next.dispose();
    }
    this.updates++;
  }

  /** The average as named tensors (`ema/<var>`); the count of updates goes in the checkpoint's state. */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [name, t] of this.avg) out[EMA_PREFIX + name] = t;
    return out;
  }

  /** Restores what `state()` gave (tensors copied; the caller keeps them). */
  load(state: Record<string, tf.Tensor>, updates: number): void {
    for (const [key, t] of Object.entries(state)) {
      const target = this.avg.get(key.slice(EMA_PREFIX.length));
      if (!key.startsWith(EMA_PREFIX) || !target) throw new Error(`EMA state names an unknown variable '${key}'`);
      target.assign(t);
    }
    this.updates = updates;
  }

  /** Runs `fn` with the averaged values in the variables, then puts the trained values back. */
  async swapped<T>(fn: () => Promise<T>): Promise<T> {
    const trained = Object.fromEntries(Object.entries(this.vars).map(([k, v]) => [k, v.clone()]));
    try {
      for (const [name, a] of this.avg) this.vars[name]!.assign(a);
      return await fn();
    } finally {
      for (const [name, t] of Object.entries(trained)) this.vars[name]!.assign(t);
      tf.dispose(Object.values(trained));
    }
  }

  /** Copies the average into the variables for good (training is over). */
  commit(): void {
    for (const [name, a] of this.avg) this.vars[name]!.assign(a);
  }

  dispose(): void {
    for (const t of this.avg.values()) t.dispose();
    this.avg.clear();
  }
}
