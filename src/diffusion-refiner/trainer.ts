/**
 * Training the refiner in two stages, one step at a time (computeGrads then applyGrads, like the
 * other trainers): the autoencoder on images (L1 reconstruction + a small latent L2 penalty), then the
 * denoiser (and its text encoder) on the frozen autoencoder's latents with the v-prediction loss,
 * conditioning augmentation and caption dropout.
 */
import * as tf from '@tensorflow/tfjs';
import { valueAndGrads } from '../nn/params.js';
import { Rng } from '../random.js';
import { compiledStepWithText, type StepText } from '../training/compiled-text.js';
import { textGraphWeights } from '../text/onnx-graph.js';
import { Optimized, scheduleOf, type Grads, type StepMetrics } from '../training/optimized.js';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { runTrainStep, trainSession } from '../backend/onnx/train-step.js';
import { LATENT_PENALTY, type ConvAutoencoder } from './autoencoder.js';
import { conditionEmbeddings } from './denoiser.js';
import { autoencoderTrainGraph, denoiserTrainGraph } from './onnx-train-graph.js';
import type { RefinerTrainConfig } from './config.js';
import type { Refiner } from './refiner.js';
import { addNoise, velocity } from './schedule.js';


export type { Grads, StepMetrics };

export class AutoencoderTrainer extends Optimized {
  /**
   * Whether gradients come from the whole step compiled to one ONNX Runtime session
   * (onnx-train-graph.ts) rather than tfjs autograd; default: on the onnx backend.
   */
  readonly compiled: boolean;

  constructor(readonly model: ConvAutoencoder, train: RefinerTrainConfig, o: { compiled?: boolean } = {}) {
    super(model.variables(), {
      lr: train.autoencoderLr,
      warmup: Math.min(train.warmup, Math.floor(train.autoencoderSteps / 10)),
      total: train.autoencoderSteps,
      minRatio: train.minLrRatio,
      clip: train.clip,
      weightDecay: 0,
    });
    this.compiled = o.compiled ?? compiledByDefault();
  }

  /** images [B, S, S, C] in [−1, 1]. */
  computeGrads(images: tf.Tensor4D): Grads {
    if (this.compiled) return this.compiledGrads(images);
    const { value, grads } = valueAndGrads(() => {
      const z = this.model.encode(images);
      const recon = this.model.decode(z);
      return tf.add(tf.mean(tf.abs(tf.sub(recon, images))), tf.mul(tf.mean(tf.square(z)), LATENT_PENALTY)) as tf.Scalar;
    }, this.vars);
    const loss = value.dataSync()[0]!;
    value.dispose();
    return { grads, loss };
  }

  trainStep(images: tf.Tensor4D): StepMetrics {
    return this.applyGrads(this.computeGrads(images));
  }

  /** The same loss and gradients from one compiled session (compiled once per batch shape). */
  private compiledGrads(images: tf.Tensor4D): Grads {
    const [b, s] = images.shape;
    const session = trainSession(this.model, `${b}x${s}`, () => autoencoderTrainGraph(this.model, b, s));
    const { grads, sumSquares, out } = runTrainStep(session, this.vars, { images: images.dataSync() as Float32Array });
    return { grads, loss: (out.loss as Float32Array)[0]!, squares: { sum: sumSquares, names: new Set(Object.keys(grads)) } };
  }
}

/** The refiner's trainable variables: the denoiser's and (when trainable) its text encoder's. */
export function denoiserVariables(refiner: Refiner): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(refiner.denoiser.variables())) out[`denoiser/${k}`] = v;
  if (refiner.text.trainable) for (const [k, v] of Object.entries(refiner.text.variables())) out[`text/${k}`] = v;
  return out;
}

export class DenoiserTrainer extends Optimized {
  private readonly rng: Rng;
  /**
   * Whether the denoiser's loss and gradients come from one compiled ONNX Runtime session
   * (onnx-train-graph.ts denoiserTrainGraph) rather than tfjs autograd; default: on the onnx backend.
   */
  readonly compiled: boolean;

  constructor(readonly refiner: Refiner, readonly train: RefinerTrainConfig, o: { compiled?: boolean } = {}) {
    super(denoiserVariables(refiner), scheduleOf(train));
    this.rng = this.rngs.noise = new Rng(train.seed + 13);
    this.compiled = o.compiled ?? compiledByDefault();
  }

  /**
   * One batch: `latents` (scaled, B × latentSize values), `low` (B low-resolution images in [−1, 1])
   * and B captions. Draws t uniformly, noises the latents, augments the low-resolution input with
   * noise of a random level, drops captions to "" at `condDropout`, and regresses v.
   */
  computeGrads(latents: Float32Array, low: Float32Array, captions: string[]): Grads {
    const r = this.refiner;
    const c = r.config;
    const b = captions.length;
    const per = r.latentSize;
    const lowPer = low.length / b;
    const T = c.timesteps;
    const xt = new Float32Array(b * per);
    const target = new Float32Array(b * per);
    const lowAug = new Float32Array(low);
    const timesteps = new Float32Array(b);
    const augment = new Float32Array(b);
    for (let i = 0; i < b; i++) {
      const t = this.rng.int(T);
      timesteps[i] = t;
      const x0 = latents.subarray(i * per, (i + 1) * per);
      const eps = this.rng.fillNormal(new Float32Array(per));
      xt.set(addNoise(x0, eps, r.alphasCumprod[t]!), i * per);
      target.set(velocity(x0, eps, r.alphasCumprod[t]!), i * per);
      const a = this.rng.next() * this.train.maxAugment;
      augment[i] = a;
      this.rng.fillNormal(lowAug.subarray(i * lowPer, (i + 1) * lowPer), a, true);
    }
    const prompts = captions.map((cap) => (this.rng.next() < this.train.condDropout ? '' : cap));
    if (this.compiled) return this.compiledGrads({ latents: xt, target, low: lowAug, timesteps, augment }, prompts);
    const side = c.size / 4;
    const lowSide = r.lowSize;
    const xT = tf.tensor4d(xt, [b, side, side, c.autoencoder.latentChannels]);
    const vT = tf.tensor4d(target, [b, side, side, c.autoencoder.latentChannels]);
    const lowT = tf.tensor4d(lowAug, [b, lowSide, lowSide, c.channels]);
    const { value, grads } = valueAndGrads(() => {
      const text = r.text.encode(prompts);
      const v = r.denoiser.predict({ latents: xT, low: lowT, timesteps, augment, text: { embeddings: text.embeddings, keyBias: text.keyBias } });
      return tf.mean(tf.square(tf.sub(v, vT))) as tf.Scalar;
    }, this.vars);
    const loss = value.dataSync()[0]!;
    tf.dispose([value, xT, vT, lowT]);
    return { grads, loss };
  }

  trainStep(latents: Float32Array, low: Float32Array, captions: string[]): StepMetrics {
    return this.applyGrads(this.computeGrads(latents, low, captions));
  }

  /**
   * The same batch (noised, augmented, its captions dropped) through one compiled session, the
   * prompts as `compiledStepWithText` gives them (as the transformer's trainer does): the builtin
   * encoder inside the session, another trainable one through the gradient of its embeddings.
   */
  private compiledGrads(
    batch: { latents: Float32Array; target: Float32Array; low: Float32Array; timesteps: Float32Array; augment: Float32Array },
    prompts: string[],
  ): Grads {
    const r = this.refiner;
    const model = r.denoiser;
    const b = prompts.length;
    const e = conditionEmbeddings(batch.timesteps, batch.augment);
    const run = (text: StepText) => {
      const o = { batch: b, textLength: text.length, textGrad: text.textGrad, textEncoder: text.encoder };
      const session = trainSession(model, `${b}x${text.length}|${text.key}`, () => denoiserTrainGraph(model, o));
      const step = runTrainStep(session, { ...model.variables(), ...textGraphWeights(text.encoder) }, {
        latents: batch.latents,
        target: batch.target,
        low: batch.low,
        time: e.time,
        augment: e.augment,
        ...text.feeds,
      });
      return {
        grads: step.grads,
        sumSquares: step.sumSquares,
        loss: (step.out.loss as Float32Array)[0]!,
        textGrad: text.textGrad ? tf.tensor2d(step.out['grad:text'] as Float32Array, [b * text.length, r.config.textDim]) : undefined,
      };
    };
    const { out, grads, squares } = compiledStepWithText(r.text, this.vars, prompts, 'denoiser/', run);
    return { grads, loss: out.loss, squares };
  }
}
