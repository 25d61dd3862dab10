/**
 * The refiner's denoiser: a small diffusion transformer (DiT, Peebles & Xie 2023) over the latent
 * grid. Each token is a p×p patch of the noisy latent concatenated with the matching block of the
 * low-resolution image (the conditioning image enters as channels, SR3-style); the timestep and the
 * conditioning-augmentation level enter as sinusoidal embeddings through an MLP, added to every token;
 * the prompt enters through cross-attention in every block. The output is the v-prediction for each
 * latent cell.
 */
import * as tf from '@tensorflow/tfjs';
import { Block, LayerNorm, Linear, Mlp, addPositions, patchify, unpatchify } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import type { TextContext } from '../transformer/model.js';
import type { RefinerConfig } from './config.js';
import { sinusoidalEmbedding } from './schedule.js';

/** Width of the sinusoidal timestep and augmentation embeddings. */
export const FREQ_DIM = 128;

/**
 * The sinusoidal embeddings [B, FREQ_DIM] of each example's timestep (in the schedule's units) and
 * augmentation level (×1000, so that both span the embedding's periods).
 */
export function conditionEmbeddings(timesteps: ArrayLike<number>, augment: ArrayLike<number>): { time: Float32Array; augment: Float32Array } {
  return { time: sinusoidalEmbedding(timesteps, FREQ_DIM), augment: sinusoidalEmbedding(Array.from(augment, (a) => a * 1000), FREQ_DIM) };
}

export interface DenoiserInput {
  /** Noisy latents [B, g·p, g·p, latentChannels] (already scaled to unit variance). */
  latents: tf.Tensor4D;
  /** Low-resolution images [B, s/f, s/f, C] in [−1, 1] (with their augmentation noise). */
  low: tf.Tensor4D;
  /** Timestep of each example (0 … T−1). */
  timesteps: ArrayLike<number>;
  /** Std of the augmentation noise on each example's low-resolution image. */
  augment: ArrayLike<number>;
  text: TextContext;
}

export class Denoiser {
  readonly params: ParamStore;
  /** Tokens per side and per image. */
  readonly grid: number;
  readonly tokens: number;
  readonly latentSide: number;
  /** Side of the low-resolution block that goes with each token. */
  readonly lowBlock: number;
  private readonly inProj: Linear;
  private readonly pos: tf.Variable;
  private readonly timeMlp: Mlp;
  private readonly timeIn: Linear;
  private readonly augIn: Linear;
  private readonly blocks: Block[];
  private readonly norm: LayerNorm;
  private readonly out: Linear;

  constructor(readonly config: RefinerConfig, seed = 0) {
    const c = config;
    const d = c.denoiser;
    const p = (this.params = new ParamStore(seed));
    const latentC = c.autoencoder.latentChannels;
    this.latentSide = c.size / 4;
    this.grid = this.latentSide / d.patch;
    this.tokens = this.grid * this.grid;
    this.lowBlock = c.size / c.factor / this.grid;
    const inDim = d.patch * d.patch * latentC + this.lowBlock * this.lowBlock * c.channels;
    this.inProj = new Linear(p.scope('in'), inDim, d.width);
    this.pos = p.get('pos', [this.tokens, d.width], { normal: 0.02 });
    this.timeIn = new Linear(p.scope('time_in'), FREQ_DIM, d.width);
    this.augIn = new Linear(p.scope('aug_in'), FREQ_DIM, d.width);
    this.timeMlp = new Mlp(p.scope('cond_mlp'), d.width, d.width * 2, 0.02);
    this.blocks = Array.from({ length: d.depth }, (_, i) => new Block(p.scope(`blocks.${i}`), d.width, d.heads, d.mlpRatio, d.depth, c.textDim));
    this.norm = new LayerNorm(p.scope('norm'), d.width);
    // Zero-initialised output, as DiT: the untrained model predicts v = 0.
    this.out = new Linear(p.scope('out'), d.width, d.patch * d.patch * latentC, { std: 0 });
  }

  /** v-prediction [B, g·p, g·p, latentChannels]. */
  predict(x: DenoiserInput): tf.Tensor4D {
    const c = this.config;
    const b = x.latents.shape[0];
    const w = c.denoiser.width;
    return tf.tidy(() => {
      const e = conditionEmbeddings(x.timesteps, x.augment);
      const tEmb = tf.tensor2d(e.time, [b, FREQ_DIM]);
      const aEmb = tf.tensor2d(e.augment, [b, FREQ_DIM]);
      const cond = this.timeMlp.apply(tf.add(this.timeIn.apply(tEmb), this.augIn.apply(aEmb))); // [B, W]
      const tokens = tf.concat([patchify(x.latents, c.denoiser.patch), patchify(x.low, this.lowBlock)], 1);
      let h = addPositions(this.inProj.apply(tokens), this.pos, b);
      h = tf.reshape(tf.add(tf.reshape(h, [b, this.tokens, w]), tf.reshape(cond, [b, 1, w])), [b * this.tokens, w]);
      for (const block of this.blocks) h = block.apply(h, b, x.text.embeddings, x.text.keyBias);
      return unpatchify(this.out.apply(this.norm.apply(h)), b, c.denoiser.patch, c.autoencoder.latentChannels);
    });
  }

  variables(): Record<string, tf.Variable> {
    return this.params.variables();
  }

  dispose(): void {
    this.params.dispose();
  }
}
