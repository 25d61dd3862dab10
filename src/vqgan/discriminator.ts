/**
 * A small convolutional patch discriminator (as in VQGAN): strided 4×4 convolutions with leaky ReLU,
 * ending in one logit per patch. Input images in [−1, 1], [B, H, W, C].
 */
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../nn/params.js';

interface ConvLayer {
  w: tf.Variable;
  b: tf.Variable;
  stride: number;
}

/** The slope of the leaky ReLU below 0. */
export const LEAKY_SLOPE = 0.2;

/** max(x, 0.2x). */
export function leakyRelu<T extends tf.Tensor>(x: T): T {
  return tf.maximum(x, tf.mul(x, LEAKY_SLOPE)) as T;
}

export class PatchDiscriminator {
  readonly params: ParamStore;
  private readonly layers: ConvLayer[] = [];

  constructor(channels: number, width: number, seed = 1) {
    const p = (this.params = new ParamStore(seed));
    const spec: [number, number, number, number][] = [
      // [kernel, in, out, stride]
      [4, channels, width, 2],
      [4, width, width * 2, 2],
      [3, width * 2, width * 4, 1],
      [3, width * 4, 1, 1],
    ];
    spec.forEach(([k, cin, cout, stride], i) => {
      const s = p.scope(`conv${i}`);
      this.layers.push({ w: s.get('w', [k, k, cin, cout], { normal: Math.sqrt(2 / (k * k * cin)) * 0.5 }), b: s.get('b', [cout], 'zeros'), stride });
    });
  }

  /** Each layer's stride; layer i's weights are `conv{i}.w` [k, k, in, out] and `conv{i}.b`. */
  get strides(): number[] {
    return this.layers.map((l) => l.stride);
  }

  /** Patch logits [B, h, w, 1]. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    let h = x;
    this.layers.forEach((l, i) => {
      h = tf.add(tf.conv2d(h, l.w as tf.Tensor4D, l.stride, 'same'), l.b) as tf.Tensor4D;
      if (i < this.layers.length - 1) h = leakyRelu(h);
    });
    return h;
  }

  variables(): Record<string, tf.Variable> {
    return this.params.variables();
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Hinge loss for the discriminator: mean relu(1 − D(real)) + mean relu(1 + D(fake)). */
export function discriminatorHingeLoss(real: tf.Tensor, fake: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mean(tf.relu(tf.sub(1, real))), tf.mean(tf.relu(tf.add(1, fake)))) as tf.Scalar);
}

/** The generator's side of the hinge loss: −mean D(fake). */
export function generatorHingeLoss(fake: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(fake)) as tf.Scalar;
}
