/**
 * Training the ViT-VQGAN, one step at a time. Gradients are computed in `computeGrads` and applied in
 * `applyGrads`, so that data-parallel workers could average them in between. Knows nothing of files
 * or the CLI: checkpoints go through `state()` / `load()`. On the onnx backend a step's gradients
 * (both phases) come from one compiled ONNX Runtime session (onnx-train-graph.ts), elsewhere or with
 * `compiled: false` from tfjs autograd; everything between steps (clipping, AdamW, code counts,
 * dead-code restarts, state) is the same for both.
 */
import * as tf from '@tensorflow/tfjs';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { runTrainStep, trainSession } from '../backend/onnx/train-step.js';
import { AdamW, clipScale, type KnownSquares } from '../nn/optim.js';
import { warmupCosine } from '../nn/schedules.js';
import { Rng, restoreRngs, saveRngs } from '../random.js';
import type { VqganTrainConfig } from './config.js';
import { PatchDiscriminator, discriminatorHingeLoss, generatorHingeLoss } from './discriminator.js';
import { codeHistogram, codebookUsage } from './metrics.js';
import type { VitVqgan } from './model.js';
import { DISC_PREFIX, tokenizerTrainGraph, trainGraphWeights } from './onnx-train-graph.js';

export interface TokenizerStepMetrics {
  loss: number;
  l2: number;
  l1: number;
  codebook: number;
  commit: number;
  /** Generator's adversarial loss and the discriminator's hinge loss (0 before the warm-up ends). */
  gAdv: number;
  dLoss: number;
  /** Share of the codebook used by this batch. */
  usage: number;
  gradNorm: number;
  lr: number;
  /** Codes re-seeded by dead-code restart at this step. */
  restarted: number;
}

export interface TokenizerGrads {
  gen: Record<string, tf.Tensor>;
  disc?: Record<string, tf.Tensor>;
  /** Loss terms of the step, in the order of LOSS_TERMS. */
  terms: number[];
  /** Code ids chosen for this batch, and the normalized encoder outputs (candidates for restarts). */
  indices: Int32Array;
  latents: Float32Array;
  /** The sum of the squares of `gen`, when the step computed it (compiled), so that clipping skips it. */
  squares?: KnownSquares;
}

const LOSS_TERMS = ['loss', 'l2', 'l1', 'codebook', 'commit', 'gAdv', 'dLoss'] as const;

export class TokenizerTrainer {
  step = 0;
  readonly disc?: PatchDiscriminator;
  private readonly opt: AdamW;
  private readonly discOpt?: AdamW;
  private counts: Float64Array;
  private readonly rng: Rng;
  /** The trainer's random generators by name (dead-code restarts): part of its state. */
  readonly rngs: Record<string, Rng>;
  /**
   * Whether a step's gradients (both phases, generator and discriminator) come from one compiled
   * ONNX Runtime session (onnx-train-graph.ts) rather than tfjs autograd; default: on the onnx backend.
   */
  readonly compiled: boolean;

  constructor(readonly model: VitVqgan, readonly train: VqganTrainConfig, o: { compiled?: boolean } = {}) {
    this.compiled = o.compiled ?? compiledByDefault();
    this.opt = new AdamW(model.variables(), { weightDecay: train.weightDecay, beta1: 0.9, beta2: 0.99 });
    if (train.adversarial.weight > 0) {
      this.disc = new PatchDiscriminator(model.config.channels, train.adversarial.width, train.seed + 1);
      this.discOpt = new AdamW(this.disc.variables(), { beta1: 0.5, beta2: 0.9 });
    }
    this.counts = new Float64Array(model.config.codebookSize);
    this.rng = new Rng(train.seed + 7);
    this.rngs = { restarts: this.rng };
  }

  adversarialOn(step = this.step): boolean {
    return this.disc !== undefined && step >= this.train.adversarial.start;
  }

  lr(step = this.step): number {
    const t = this.train;
    return warmupCosine(step, { lr: t.lr, warmup: t.warmup, total: t.steps, minRatio: t.minLrRatio });
  }

  /** Forward and backward on one batch of images [B, H, W, C] in [0, 1]. */
  computeGrads(images: tf.Tensor4D): TokenizerGrads {
    if (this.compiled) return this.compiledGrads(images);
    const t = this.train;
    const adv = this.adversarialOn();
    const disc = this.disc;
    let recon: tf.Tensor4D | undefined;
    let parts: tf.Tensor1D | undefined;
    let indices: tf.Tensor | undefined;
    let latents: tf.Tensor | undefined;
    const target = tf.tidy(() => tf.sub(tf.mul(images, 2), 1) as tf.Tensor4D);

    const { value, grads } = this.model.params.valueAndGrads(() => {
      const out = this.model.forward(images);
      const diff = tf.sub(out.recon, target);
      const l2 = tf.mean(tf.square(diff)) as tf.Scalar;
      const l1 = tf.mean(tf.abs(diff)) as tf.Scalar;
      let loss = tf.addN([tf.mul(l2, t.l2), tf.mul(l1, t.l1), tf.mul(out.codebookLoss, t.codebook), tf.mul(out.commitLoss, t.beta)]) as tf.Scalar;
      let gAdv = tf.scalar(0);
      if (adv && disc) {
        gAdv = generatorHingeLoss(disc.apply(out.recon));
        loss = tf.add(loss, tf.mul(gAdv, t.adversarial.weight));
      }
      recon = tf.keep(out.recon);
      indices = tf.keep(out.indices);
      latents = tf.keep(out.zn);
      parts = tf.keep(tf.stack([loss, l2, l1, out.codebookLoss, out.commitLoss, gAdv]) as tf.Tensor1D);
      return loss;
    });
    value.dispose();

    let discGrads: Record<string, tf.Tensor> | undefined;
    let dLoss = 0;
    if (adv && disc && recon) {
      const fake = recon;
      const d = disc.params.valueAndGrads(() => discriminatorHingeLoss(disc.apply(target), disc.apply(fake)));
      dLoss = d.value.dataSync()[0]!;
      d.value.dispose();
      discGrads = d.grads;
    }
    const terms = [...parts!.dataSync(), dLoss];
    const result: TokenizerGrads = {
      gen: grads,
      disc: discGrads,
      terms,
      indices: Int32Array.from(indices!.dataSync()),
      latents: latents!.dataSync() as Float32Array,
    };
    tf.dispose([recon!, parts!, indices!, latents!, target]);
    return result;
  }

  /** Clips and applies gradients, then does the step's dead-code bookkeeping. Disposes the grads. */
  applyGrads(g: TokenizerGrads): TokenizerStepMetrics {
    const lr = this.lr();
    const clip = clipScale(g.gen, this.train.clip, g.squares);
    this.opt.apply(g.gen, lr, clip.scale);
    tf.dispose(Object.values(g.gen));
    if (g.disc && this.discOpt) {
      this.discOpt.apply(g.disc, this.train.adversarial.lr);
      tf.dispose(Object.values(g.disc));
    }

    const batchCounts = codeHistogram(g.indices, this.model.config.codebookSize);
    for (let k = 0; k < batchCounts.length; k++) this.counts[k]! += batchCounts[k]!;
    this.step++;
    let restarted = 0;
    const every = this.train.restartEvery;
    if (every > 0 && this.step % every === 0) {
      // Only restart while the learning rate is still high enough for new codes to find a place.
      if (this.step < this.train.steps * 0.9) restarted = this.model.quantizer.restart(this.counts, g.latents, (n) => this.rng.int(n));
      this.counts.fill(0);
    }
    const m = Object.fromEntries(LOSS_TERMS.map((name, i) => [name, g.terms[i]!])) as Record<(typeof LOSS_TERMS)[number], number>;
    return { ...m, usage: codebookUsage(batchCounts), gradNorm: clip.norm, lr, restarted };
  }

  /** The same loss terms, gradients, ids and latents from one compiled session (one per batch size and phase). */
  private compiledGrads(images: tf.Tensor4D): TokenizerGrads {
    const b = images.shape[0];
    const disc = this.adversarialOn() ? this.disc : undefined;
    const t = this.train;
    const key = JSON.stringify([b, disc !== undefined, t.l2, t.l1, t.codebook, t.beta, t.adversarial.weight, t.adversarial.width]);
    const session = trainSession(this.model, key, () => tokenizerTrainGraph(this.model, t, b, disc));
    const { grads, sumSquares, out } = runTrainStep(session, trainGraphWeights(this.model, disc), { images: images.dataSync() as Float32Array });
    const gen: Record<string, tf.Tensor> = {};
    const discGrads: Record<string, tf.Tensor> = {};
    for (const [name, grad] of Object.entries(grads)) {
      if (name.startsWith(DISC_PREFIX)) discGrads[name.slice(DISC_PREFIX.length)] = grad;
      else gen[name] = grad;
    }
    const scalar = (name: string) => (out[name] ? (out[name] as Float32Array)[0]! : 0);
    return {
      gen,
      disc: disc ? discGrads : undefined,
      terms: LOSS_TERMS.map(scalar),
      indices: out.ids as Int32Array,
      latents: out.latents as Float32Array,
      squares: { sum: sumSquares, names: new Set(Object.keys(gen)) },
    };
  }

  trainStep(images: tf.Tensor4D): TokenizerStepMetrics {
    return this.applyGrads(this.computeGrads(images));
  }

  /**
   * Everything a checkpoint needs: weights (the model's, and the discriminator's as `disc/…`),
   * optimizer state, the step, and what is not a tensor: the generators' positions and the code
   * counts gathered since the last dead-code restart.
   */
  state(): { weights: Record<string, tf.Tensor>; optimizer: Record<string, tf.Tensor>; step: number; random: Record<string, number>; codeCounts: number[] } {
    const weights: Record<string, tf.Tensor> = {};
    const optimizer: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(this.model.variables())) weights[k] = v;
    for (const [k, v] of Object.entries(this.opt.state())) optimizer[`gen/${k}`] = v;
    if (this.disc && this.discOpt) {
      for (const [k, v] of Object.entries(this.disc.variables())) weights[`disc/${k}`] = v;
      for (const [k, v] of Object.entries(this.discOpt.state())) optimizer[`disc/${k}`] = v;
    }
    return { weights, optimizer, step: this.step, random: saveRngs(this.rngs), codeCounts: Array.from(this.counts) };
  }

  /**
   * Restores optimizer state, discriminator weights, the step, and (when given, as `state()` returned
   * them) the generators' positions and code counts. Model weights are assigned by the caller.
   */
  load(weights: Record<string, tf.Tensor>, optimizer: Record<string, tf.Tensor>, step: number, rest: { random?: unknown; codeCounts?: unknown } = {}): void {
    const pick = (src: Record<string, tf.Tensor>, prefix: string) =>
      Object.fromEntries(Object.entries(src).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    this.opt.load(pick(optimizer, 'gen/'), step);
    if (this.disc && this.discOpt) {
      const discWeights = pick(weights, 'disc/');
      for (const [k, v] of Object.entries(this.disc.variables())) {
        const w = discWeights[k];
        if (w) v.assign(w);
      }
      // The discriminator's optimizer has stepped once per step since the adversarial start.
      this.discOpt.load(pick(optimizer, 'disc/'), Math.max(0, step - this.train.adversarial.start));
    }
    this.step = step;
    restoreRngs(this.rngs, rest.random);
    const counts = rest.codeCounts;
    if (Array.isArray(counts) && counts.length === this.counts.length) this.counts = Float64Array.from(counts, Number);
  }

  dispose(): void {
    this.opt.dispose();
    this.discOpt?.dispose();
    this.disc?.dispose();
  }
}
