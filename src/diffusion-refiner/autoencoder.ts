/**
 * The refiner's latent space: a small convolutional autoencoder trained here on the high-resolution
 * images. Why this one: the tokenizer's ViT-VQGAN works at the base resolution with l2-normalised
 * codes, and a second ViT-VQGAN at 64 px would cost more to train on this CPU than the denoiser
 * itself; a conv autoencoder with a 4× smaller latent grid (side/4 × side/4 × latentChannels) trains in
 * minutes, reconstructs sharper than bicubic upsampling of the half-size image, and its latents are
 * smooth enough for Gaussian diffusion (no quantization, a small L2 penalty keeps their scale; the
 * refiner divides by their measured std).
 *
 * Images enter and leave as [B, S, S, C] in [−1, 1]; latents are [B, S/4, S/4, latentChannels].
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d, gelu, upsample2x } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';

/** Weight of mean(z²) in the autoencoder's training loss: keeps the latent scale bounded without shaping it. */
export const LATENT_PENALTY = 1e-4;

type AutoencoderShape = { channels: number[]; latentChannels: number };

/** h + conv(gelu(conv(gelu(h)))) at a fixed width. */
class ResBlock {
  private readonly c1: Conv2d;
  private readonly c2: Conv2d;

  constructor(p: ParamStore, ch: number) {
    this.c1 = new Conv2d(p.scope('c1'), ch, ch);
    this.c2 = new Conv2d(p.scope('c2'), ch, ch, 3, 1, { std: 0.02 });
  }

  apply(h: tf.Tensor4D): tf.Tensor4D {
    return tf.add(h, this.c2.apply(gelu(this.c1.apply(gelu(h))))) as tf.Tensor4D;
  }
}

export class ConvAutoencoder {
  readonly params: ParamStore;
  private readonly enc: { inConv: Conv2d; down1: Conv2d; mid1: ResBlock; down2: Conv2d; mid2: ResBlock; out: Conv2d };
  private readonly dec: { inConv: Conv2d; mid2: ResBlock; up2: Conv2d; mid1: ResBlock; up1: Conv2d; out: Conv2d };

  constructor(readonly config: AutoencoderShape, readonly imageChannels: number, seed = 0) {
    const p = (this.params = new ParamStore(seed));
    const [c0, c1, c2] = config.channels as [number, number, number];
    const e = p.scope('enc');
    this.enc = {
      inConv: new Conv2d(e.scope('in'), imageChannels, c0),
      down1: new Conv2d(e.scope('down1'), c0, c1, 3, 2),
      mid1: new ResBlock(e.scope('mid1'), c1),
      down2: new Conv2d(e.scope('down2'), c1, c2, 3, 2),
      mid2: new ResBlock(e.scope('mid2'), c2),
      out: new Conv2d(e.scope('out'), c2, config.latentChannels, 1),
    };
    const d = p.scope('dec');
    this.dec = {
      inConv: new Conv2d(d.scope('in'), config.latentChannels, c2),
      mid2: new ResBlock(d.scope('mid2'), c2),
      up2: new Conv2d(d.scope('up2'), c2, c1),
      mid1: new ResBlock(d.scope('mid1'), c1),
      up1: new Conv2d(d.scope('up1'), c1, c0),
      out: new Conv2d(d.scope('out'), c0, imageChannels, 3, 1, { std: 0.02 }),
    };
  }

  /** images [B, S, S, C] in [−1, 1] → latents [B, S/4, S/4, latentChannels]. */
  encode(x: tf.Tensor4D): tf.Tensor4D {
    const e = this.enc;
    return tf.tidy(() => {
      let h = gelu(e.inConv.apply(x));
      h = e.mid1.apply(e.down1.apply(h));
      h = e.mid2.apply(e.down2.apply(gelu(h)));
      return e.out.apply(gelu(h));
    });
  }

  /** latents → images [B, S, S, C], about [−1, 1] (not clipped). */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    const d = this.dec;
    return tf.tidy(() => {
      let h = d.mid2.apply(d.inConv.apply(z));
      h = d.mid1.apply(d.up2.apply(upsample2x(gelu(h))));
      h = gelu(d.up1.apply(upsample2x(gelu(h))));
      return d.out.apply(h);
    });
  }

  variables(): Record<string, tf.Variable> {
    return this.params.variables();
  }

  dispose(): void {
    this.params.dispose();
  }
}
