/**
 * The denoiser as the sampler calls it: noisy latents at timestep t → v-prediction, for one fixed
 * conditioning (low-resolution images, augmentation levels, text) over all the sampling steps.
 *
 * On the onnx backend the whole forward pass is one ONNX Runtime session (onnx-graph.ts), compiled
 * on first use for each batch size and text length and kept while the weights stay the same; on
 * every other backend the model runs as tfjs ops (see transformer/inference.ts for why).
 */
import * as tf from '@tensorflow/tfjs';
import { cachedModelSession, compiledByDefault, type ModelSession } from '../backend/onnx/model-session.js';
import type { TextContext } from '../transformer/model.js';
import { conditionEmbeddings, type Denoiser } from './denoiser.js';
import { denoiserGraph } from './onnx-graph.js';

/** Latents [B, g·p, g·p, latentC] (flat) at timestep t → v, the same shape. */
export type VelocityFn = (latents: Float32Array, t: number) => Float32Array;

export interface DenoiserCondition {
  /** Low-resolution images [B, s/f, s/f, C] in [−1, 1], their augmentation noise added. */
  low: tf.Tensor4D;
  /** Each row's augmentation level. */
  augment: ArrayLike<number>;
  /** B·L rows of text. */
  text: TextContext;
}

export function velocityFunction(model: Denoiser, cond: DenoiserCondition, o: { compiled?: boolean } = {}): VelocityFn {
  const batch = cond.low.shape[0];
  const length = cond.text.keyBias.shape[1];
  if (cond.text.keyBias.shape[0] !== batch || cond.augment.length !== batch) {
    throw new Error(`denoiser: ${batch} low-resolution images with ${cond.text.keyBias.shape[0]} texts and ${cond.augment.length} augmentation levels`);
  }
  const size = batch * model.latentSide * model.latentSide * model.config.autoencoder.latentChannels;
  const check = (latents: Float32Array) => {
    if (latents.length !== size) throw new Error(`denoiser: expected ${size} latent values, got ${latents.length}`);
    return latents;
  };
  if (o.compiled ?? compiledByDefault()) {
    let session: ModelSession | undefined;
    let feeds: Record<string, Float32Array> | undefined;
    return (latents, t) => {
      session ??= compiledDenoiser(model, batch, length);
      feeds ??= {
        low: cond.low.dataSync() as Float32Array,
        text: cond.text.embeddings.dataSync() as Float32Array,
        text_bias: cond.text.keyBias.dataSync() as Float32Array,
      };
      const e = conditionEmbeddings(new Float32Array(batch).fill(t), cond.augment);
      return session.run({ ...feeds, time: e.time, augment: e.augment, latents: check(latents) }).v as Float32Array;
    };
  }
  const side = model.latentSide;
  const lc = model.config.autoencoder.latentChannels;
  return (latents, t) =>
    tf.tidy(
      () =>
        model
          .predict({ latents: tf.tensor4d(check(latents), [batch, side, side, lc]), low: cond.low, timesteps: new Float32Array(batch).fill(t), augment: cond.augment, text: cond.text })
          .dataSync() as Float32Array,
    );
}

/** The session for `model` at this batch size and text length (compiled again once its weights change). */
export function compiledDenoiser(model: Denoiser, batch: number, textLength: number): ModelSession {
  return cachedModelSession(model, model.variables(), `${batch}x${textLength}`, () => denoiserGraph(model, batch, textLength));
}
