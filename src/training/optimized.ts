/**
 * What every trainer shares: AdamW over a fixed set of named variables, a warm-up + cosine learning
 * rate, global-norm clipping, and the state (weights, optimizer moments, step, the positions of its
 * random generators) that checkpoints save and `--resume` restores.
 */
import * as tf from '@tensorflow/tfjs';
import { AdamW, clipScale, type KnownSquares } from '../nn/optim.js';
import { EMA_PREFIX, Ema } from '../nn/ema.js';
import { restoreRngs, saveRngs, type Rng } from '../random.js';
import { warmupCosine } from '../nn/schedules.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { assignWeights } from '../io/tensors.js';

export interface StepMetrics {
  loss: number;
  gradNorm: number;
  lr: number;
}

export interface Grads {
  grads: Record<string, tf.Tensor>;
  loss: number;
  /** Squares already summed for some of `grads` (e.g. inside a compiled step), so clipping skips them. */
  squares?: KnownSquares;
}

export interface OptimizedSchedule {
  lr: number;
  warmup: number;
  total: number;
  minRatio: number;
  clip: number;
  weightDecay: number;
  beta2?: number;
  /** Keep an exponential moving average of the weights with this decay (0 or absent: none); see nn/ema.ts. */
  ema?: number;
}

/** The schedule of a training section (`lr`, `warmup`, `steps`, `minLrRatio`, `clip`, `weightDecay`). */
export function scheduleOf(t: { lr: number; warmup: number; steps: number; minLrRatio: number; clip: number; weightDecay: number; ema?: number }, beta2?: number): OptimizedSchedule {
  return { lr: t.lr, warmup: t.warmup, total: t.steps, minRatio: t.minLrRatio, clip: t.clip, weightDecay: t.weightDecay, beta2, ema: t.ema };
}

/** AdamW + warm-up/cosine + clipping over a fixed set of variables, with state for checkpoints. */
export class Optimized {
  step = 0;
  /** The trainer's random generators (masking, noise, caption dropout), by name: part of its state. */
  readonly rngs: Record<string, Rng> = {};
  private readonly opt: AdamW;
  /** The moving average of the weights, when the schedule asks for one. */
  readonly ema?: Ema;

  constructor(readonly vars: Record<string, tf.Variable>, private readonly sched: OptimizedSchedule) {
    this.opt = new AdamW(vars, { weightDecay: sched.weightDecay, beta1: 0.9, beta2: sched.beta2 ?? 0.99 });
    if (sched.ema) this.ema = new Ema(vars, sched.ema);
  }

  lr(step = this.step): number {
    return warmupCosine(step, this.sched);
  }

  /** Clips and applies gradients (disposing them). */
  applyGrads(g: Grads): StepMetrics {
    const lr = this.lr();
    const clip = clipScale(g.grads, this.sched.clip, g.squares);
    this.opt.apply(g.grads, lr, clip.scale);
    tf.dispose(Object.values(g.grads));
    this.ema?.update();
    this.step++;
    return { loss: g.loss, gradNorm: clip.norm, lr };
  }

  /** What a checkpoint keeps: the weights, the optimizer's moments (and the weights' average, `ema/…`), the step, the generators. */
  state(): { weights: Record<string, tf.Tensor>; optimizer: Record<string, tf.Tensor>; step: number; random: Record<string, number>; emaUpdates?: number } {
    const optimizer = { ...this.opt.state(), ...this.ema?.state() };
    return { weights: { ...this.vars }, optimizer, step: this.step, random: saveRngs(this.rngs), ...(this.ema ? { emaUpdates: this.ema.updates } : {}) };
  }

  /**
   * Restores optimizer state and step (weights are assigned by the caller). The average of the
   * weights is restored when the state has it; else (a run that turns it on when resumed) it starts
   * at the weights as they are.
   */
  load(optimizer: Record<string, tf.Tensor>, step: number, emaUpdates = 0): void {
    const moments: Record<string, tf.Tensor> = {};
    const average: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(optimizer)) (k.startsWith(EMA_PREFIX) ? average : moments)[k] = t;
    this.opt.load(moments, step);
    this.step = step;
    if (this.ema) {
      this.ema.restart();
      if (Object.keys(average).length > 0) this.ema.load(average, emaUpdates);
    }
  }

  /** Runs `fn` with the averaged weights in the variables when there is an average (e.g. to save a bundle), else as they are. */
  withAverage<T>(fn: () => Promise<T>): Promise<T> {
    return this.ema ? this.ema.swapped(fn) : fn();
  }

  /**
   * Continues from a training checkpoint: its weights into the variables, its optimizer state and
   * step into the optimizer, its `state.random` into the generators. The checkpoint's tensors are
   * disposed. `where` names it in errors.
   */
  restore(ckpt: Checkpoint, where: string): void {
    assignWeights(this.vars, ckpt.weights, where);
    this.load(ckpt.optimizer ?? {}, Number(ckpt.state?.step ?? 0), Number(ckpt.state?.emaUpdates ?? 0));
    restoreRngs(this.rngs, ckpt.state?.random);
    tf.dispose(Object.values(ckpt.optimizer ?? {}));
  }

  dispose(): void {
    this.opt.dispose();
    this.ema?.dispose();
  }
}

