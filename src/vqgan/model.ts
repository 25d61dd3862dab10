/**
 * ViT-VQGAN (Yu et al. 2022): images → patches → ViT encoder → factorized l2-normalized codebook →
 * ViT decoder → patches → images. Images enter and leave as [B, H, W, C] in [0, 1]; inside, pixels
 * are scaled to [−1, 1] and the decoder ends in a tanh (computed as 2σ(2x) − 1).
 */
import * as tf from '@tensorflow/tfjs';
import { Block, LayerNorm, Linear, addPositions, fastTanh, patchify, unpatchify } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { type VqganConfig, tokensPerSide } from './config.js';
import { FactorizedQuantizer, type Quantized } from './quantizer.js';

export interface VqganOutput extends Quantized {
  /** Reconstruction in [−1, 1], [B, H, W, C]. */
  recon: tf.Tensor4D;
}

export class VitVqgan {
  readonly params: ParamStore;
  readonly grid: number;
  private readonly patchEmbed: Linear;
  private readonly encPos: tf.Variable;
  private readonly encBlocks: Block[];
  private readonly encNorm: LayerNorm;
  private readonly toCode: Linear;
  readonly quantizer: FactorizedQuantizer;
  private readonly fromCode: Linear;
  private readonly decPos: tf.Variable;
  private readonly decBlocks: Block[];
  private readonly decNorm: LayerNorm;
  private readonly toPixels: Linear;

  constructor(readonly config: VqganConfig, seed = 0) {
    const c = config;
    const p = (this.params = new ParamStore(seed));
    const n = (this.grid = tokensPerSide(c)) ** 2;
    const patchDim = c.patchSize * c.patchSize * c.channels;
    const dw = c.decoderWidth ?? c.width;
    const dd = c.decoderDepth ?? c.depth;

    this.patchEmbed = new Linear(p.scope('enc.patch'), patchDim, c.width);
    this.encPos = p.get('enc.pos', [n, c.width], { normal: 0.02 });
    this.encBlocks = Array.from({ length: c.depth }, (_, i) => new Block(p.scope(`enc.blocks.${i}`), c.width, c.heads, c.mlpRatio, c.depth));
    this.encNorm = new LayerNorm(p.scope('enc.norm'), c.width);
    this.toCode = new Linear(p.scope('enc.to_code'), c.width, c.codeDim);

    this.quantizer = new FactorizedQuantizer(p.scope('quant'), c.codebookSize, c.codeDim);

    this.fromCode = new Linear(p.scope('dec.from_code'), c.codeDim, dw);
    this.decPos = p.get('dec.pos', [n, dw], { normal: 0.02 });
    this.decBlocks = Array.from({ length: dd }, (_, i) => new Block(p.scope(`dec.blocks.${i}`), dw, c.heads, c.mlpRatio, dd));
    this.decNorm = new LayerNorm(p.scope('dec.norm'), dw);
    this.toPixels = new Linear(p.scope('dec.to_pixels'), dw, patchDim);
  }

  /** Continuous latents in the lookup space (before normalization), [B·N, codeDim]. */
  encodeLatents(images: tf.Tensor4D): tf.Tensor2D {
    const b = images.shape[0];
    return tf.tidy(() => {
      const x01 = tf.sub(tf.mul(images, 2), 1) as tf.Tensor4D;
      let h = addPositions(this.patchEmbed.apply(patchify(x01, this.config.patchSize)), this.encPos, b);
      for (const block of this.encBlocks) h = block.apply(h, b);
      return this.toCode.apply(this.encNorm.apply(h));
    });
  }

  /** Decodes vectors of the lookup space [B·N, codeDim] to images in [−1, 1]. */
  decodeLatents(z: tf.Tensor2D, batch: number): tf.Tensor4D {
    return tf.tidy(() => {
      let h = addPositions(this.fromCode.apply(z), this.decPos, batch);
      for (const block of this.decBlocks) h = block.apply(h, batch);
      const patches = fastTanh(this.toPixels.apply(this.decNorm.apply(h)));
      return unpatchify(patches, batch, this.config.patchSize, this.config.channels);
    });
  }

  /** The full training forward pass: encode, quantize (straight-through), decode. */
  forward(images: tf.Tensor4D): VqganOutput {
    const q = this.quantizer.quantize(this.encodeLatents(images));
    return { ...q, recon: this.decodeLatents(q.zq, images.shape[0]) };
  }

  /** Images [B, H, W, C] in [0, 1] → token grid [B, h, w] (int32). */
  encode(images: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const idx = this.quantizer.nearest(this.encodeLatents(images));
      return tf.reshape(tf.cast(idx, 'int32'), [images.shape[0], this.grid, this.grid]);
    });
  }

  /** Token grid [B, h, w] → images [B, H, W, C] in [0, 1]. */
  decode(tokens: tf.Tensor3D): tf.Tensor4D {
    const b = tokens.shape[0];
    return tf.tidy(() => {
      const z = this.quantizer.lookup(tf.reshape(tokens, [-1]) as tf.Tensor1D);
      return tf.clipByValue(tf.mul(tf.add(this.decodeLatents(z, b), 1), 0.5), 0, 1) as tf.Tensor4D;
    });
  }

  /** Encode then decode, images in [0, 1]. */
  reconstruct(images: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.decode(this.encode(images)));
  }

  variables(): Record<string, tf.Variable> {
    return this.params.variables();
  }

  dispose(): void {
    this.params.dispose();
  }
}
