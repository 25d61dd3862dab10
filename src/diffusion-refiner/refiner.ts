/**
 * The refiner as one object, like a diffusers pipeline: autoencoder + denoiser + text encoder +
 * schedule. `refine` takes low-resolution images and prompts and returns images `factor` times
 * larger: noise in latent space → DDIM with classifier-free guidance → decode.
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from '../data/images.js';
import { UserError } from '../errors.js';
import { Rng } from '../random.js';
import type { TextEncoder, TextEncoding } from '../text/encoder.js';
import { ConvAutoencoder } from './autoencoder.js';
import { REFINE_DEFAULTS, type RefinerConfig } from './config.js';
import { Denoiser } from './denoiser.js';
import { velocityFunction } from './inference.js';
import { ddimSample } from './sampler.js';
import { cosineAlphasCumprod, guide } from './schedule.js';

export interface RefineOptions {
  /** DDIM steps (default 20). */
  steps?: number;
  /** Classifier-free guidance scale s: uncond + s·(cond − uncond); 1 = conditional only, 0 = unconditional. */
  guidance?: number;
  /** Conditioning augmentation noise std put on the low-resolution input at sampling (default 0.05). */
  augment?: number;
  /** Image i uses seed + i, so a result does not depend on the batch it was made in. */
  seed?: number;
  onStep?: (done: number, total: number) => void;
  /** Run the denoiser as one compiled ONNX Runtime session a step (default: on the onnx backend). */
  compiled?: boolean;
}

export class Refiner {
  readonly alphasCumprod: Float64Array;
  readonly lowSize: number;

  constructor(
    readonly config: RefinerConfig,
    readonly autoencoder: ConvAutoencoder,
    readonly denoiser: Denoiser,
    readonly text: TextEncoder,
  ) {
    this.alphasCumprod = cosineAlphasCumprod(config.timesteps);
    this.lowSize = config.size / config.factor;
  }

  /** A new, untrained refiner. */
  static create(config: RefinerConfig, text: TextEncoder, seed = 0): Refiner {
    return new Refiner(config, new ConvAutoencoder(config.autoencoder, config.channels, seed), new Denoiser(config, seed + 1), text);
  }

  /** Values per image of the latent grid. */
  get latentSize(): number {
    const s = this.config.size / 4;
    return s * s * this.config.autoencoder.latentChannels;
  }

  /** Scaled latents (unit variance) of images [B, S, S, C] in [−1, 1]. */
  encode(images: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.mul(this.autoencoder.encode(images), this.config.latentScale));
  }

  /** Images in [−1, 1] from scaled latents. */
  decode(latents: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.clipByValue(this.autoencoder.decode(tf.div(latents, this.config.latentScale) as tf.Tensor4D), -1, 1));
  }

  /**
   * low: [B, s/f, s/f, C] in [−1, 1] as a flat array; returns [B, S, S, C] in [−1, 1]. Await
   * `text.prepare(prompts)` first for a pretrained text encoder.
   */
  refine(low: Float32Array, prompts: string[], o: RefineOptions = {}): Float32Array {
    const c = this.config;
    const b = prompts.length;
    const lowPer = this.lowSize * this.lowSize * c.channels;
    if (low.length !== b * lowPer) throw new Error(`refine: ${low.length} low-resolution values for ${b} prompts of ${this.lowSize}×${this.lowSize}×${c.channels}`);
    const steps = o.steps ?? REFINE_DEFAULTS.steps;
    const scale = o.guidance ?? REFINE_DEFAULTS.guidance;
    const augment = o.augment ?? REFINE_DEFAULTS.augment;
    const seed = o.seed ?? 0;
    const per = this.latentSize;
    const side = c.size / 4;
    const lc = c.autoencoder.latentChannels;

    // Per-image noise: x_T and the augmentation noise on the low-resolution input.
    const noise = new Float32Array(b * per);
    const lowAug = new Float32Array(low);
    for (let i = 0; i < b; i++) {
      const rng = new Rng(seed + i);
      for (let j = 0; j < per; j++) noise[i * per + j] = rng.normal();
      for (let j = 0; j < lowPer; j++) lowAug[i * lowPer + j]! += augment * rng.normal();
    }

    // Which passes guidance needs: conditional, unconditional or both (batched together).
    const cond = scale !== 0;
    const uncond = scale !== 1;
    const passPrompts = [...(cond ? prompts : []), ...(uncond ? prompts.map(() => '') : [])];
    const passes = passPrompts.length / b;
    const text: TextEncoding = this.text.encode(passPrompts);
    const lowT = tf.tidy(() => {
      const t = tf.tensor4d(lowAug, [b, this.lowSize, this.lowSize, c.channels]);
      return passes === 2 ? tf.concat([t, t], 0) : t;
    });
    try {
      const velocity = velocityFunction(this.denoiser, { low: lowT, augment: new Float32Array(b * passes).fill(augment), text }, { compiled: o.compiled });
      const twice = passes === 2 ? new Float32Array(2 * b * per) : undefined;
      const latents = ddimSample({
        alphasCumprod: this.alphasCumprod,
        steps,
        noise,
        onStep: o.onStep,
        predict: (xt, t) => {
          if (!twice) return velocity(xt, t);
          twice.set(xt);
          twice.set(xt, b * per);
          const all = velocity(twice, t);
          return guide(all.subarray(0, b * per), all.subarray(b * per), scale);
        },
      });
      const images = tf.tidy(() => this.decode(tf.tensor4d(latents, [b, side, side, lc])));
      const out = images.dataSync() as Float32Array;
      images.dispose();
      return out;
    } finally {
      tf.dispose([text.embeddings, text.keyBias, lowT]);
    }
  }

  /**
   * `refine` on images (HWC, uint8 0–255 or float in [0, 1], at the input size): prepares the text
   * encoder for the prompts and returns float images in [0, 1], `factor` times larger.
   */
  async refineImages(images: RawImage<Float32Array | Uint8Array>[], prompts: string[], o: RefineOptions = {}): Promise<RawImage<Float32Array>[]> {
    if (images.length !== prompts.length) throw new Error(`refine: ${images.length} images for ${prompts.length} prompts`);
    const { lowSize, config } = this;
    const per = lowSize * lowSize * config.channels;
    const low = new Float32Array(images.length * per);
    images.forEach((im, i) => {
      if (im.width !== lowSize || im.height !== lowSize || im.channels !== config.channels) {
        throw new UserError(`the refiner takes ${lowSize}×${lowSize}×${config.channels} images, got ${im.width}×${im.height}×${im.channels}`);
      }
      const scale = im.data instanceof Uint8Array ? 2 / 255 : 2;
      for (let j = 0; j < per; j++) low[i * per + j] = im.data[j]! * scale - 1;
    });
    await this.text.prepare?.([...new Set(prompts), '']);
    const out = this.refine(low, prompts, o);
    const hi = config.size * config.size * config.channels;
    return images.map((_, i) => {
      const data = out.slice(i * hi, (i + 1) * hi);
      for (let j = 0; j < data.length; j++) data[j] = (data[j]! + 1) / 2;
      return { data, width: config.size, height: config.size, channels: config.channels };
    });
  }

  variables(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(this.autoencoder.variables())) out[`autoencoder/${k}`] = v;
    for (const [k, v] of Object.entries(this.denoiser.variables())) out[`denoiser/${k}`] = v;
    return out;
  }

  dispose(): void {
    this.autoencoder.dispose();
    this.denoiser.dispose();
    this.text.dispose();
  }
}
