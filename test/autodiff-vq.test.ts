import * as tf from '@tensorflow/tfjs';
import { describe, it } from 'vitest';
import { GraphLayers } from '../src/nn/onnx-layers.js';
import { fastTanh, patchify, unpatchify } from '../src/nn/layers.js';
import { LEAKY_SLOPE, discriminatorHingeLoss, generatorHingeLoss, leakyRelu } from '../src/vqgan/discriminator.js';
import { l2Normalize, stopGradient, straightThrough } from '../src/vqgan/quantizer.js';
import { expectSameGradients, normal } from './helpers/tape.js';

/**
 * The grad tape's ops for the ViT-VQGAN (the factorized codebook's lookup and losses, the decoder's
 * tanh, patches, the discriminator's activations and hinge losses), each against tfjs autograd on
 * the same numbers: the output, and every input's gradient for a random output gradient.
 */
describe('grad tape: the tokenizer’s ops against tfjs autograd', () => {
  it('l2 normalisation of rows (quantizer.ts l2Normalize)', () => {
    expectSameGradients({ x: normal([6, 5], 1) }, (t, v) => t.l2Normalize(v.x!), (x) => l2Normalize(x!));
  });

  it('the nearest-code lookup with codebook and commitment losses and the straight-through estimator', () => {
    // codebook loss ‖sg(zn) − q‖², commitment ‖zn − sg(q)‖² (weighted), and a projection of the
    // straight-through output so that its gradient (to zn, none to q) is checked too
    const w = normal([12, 4], 4);
    expectSameGradients(
      { z: normal([12, 4], 2), book: normal([7, 4], 3) },
      (t, v) => {
        const zn = t.l2Normalize(v.z!);
        const codes = t.l2Normalize(v.book!);
        const ids = t.argMax(t.matMul(zn, t.transpose(codes, [1, 0])), 1);
        const q = t.gather(codes, ids);
        const codebook = t.mean(t.square(t.sub(t.stopGradient(zn), q)));
        const commit = t.mean(t.square(t.sub(zn, t.stopGradient(q))));
        const st = t.mean(t.square(t.sub(t.straightThrough(zn, q), t.constant('w', w.dataSync() as Float32Array, w.shape))));
        return t.add(t.add(codebook, t.scale(commit, 0.25)), st);
      },
      (z, book) => {
        const zn = l2Normalize(z!);
        const codes = l2Normalize(book!);
        // the ids read back, as quantizer.ts does, so that tfjs's tape does not run through them
        const ids = tf.tensor1d(tf.argMax(tf.matMul(zn, codes, false, true), 1).dataSync() as Int32Array, 'int32');
        const q = tf.gather(codes, ids);
        const codebook = tf.mean(tf.square(tf.sub(stopGradient(zn), q)));
        const commit = tf.mean(tf.square(tf.sub(zn, stopGradient(q))));
        const st = tf.mean(tf.square(tf.sub(straightThrough(zn, q), w)));
        return tf.add(tf.add(codebook, tf.mul(commit, 0.25)), st);
      },
    );
    w.dispose();
  });

  it('tanh (layers.ts fastTanh, 2σ(2x) − 1)', () => {
    expectSameGradients({ x: tf.mul(normal([4, 9], 5), 2) }, (t, v) => t.tanh(v.x!), (x) => fastTanh(x!));
  });

  it('patchify and unpatchify (reshape and transpose) and a shift', () => {
    const nn = new GraphLayers({}, 'train');
    expectSameGradients(
      { x: normal([2, 8, 8, 3], 6), p: normal([2 * 16, 2 * 2 * 3], 7) },
      (t, v) => t.add(nn.patchify(t.shift(v.x!, -1), [2, 8, 3], 2), nn.patchify(nn.unpatchify(v.p!, [2, 4, 3], 2), [2, 8, 3], 2)),
      (x, y) => tf.add(patchify(tf.sub(x!, 1) as tf.Tensor4D, 2), patchify(unpatchify(y as tf.Tensor2D, 2, 2, 3), 2)),
      1e-4,
      nn.t,
    );
  });

  it('Concat along the batch axis (real and fake images in one discriminator batch) and Split back', () => {
    expectSameGradients(
      { a: normal([2, 3, 4], 11), b: normal([3, 3, 4], 12) },
      (t, v) => t.add(t.concat([v.a!, v.b!], 0), t.concat([t.split(t.concat([v.a!, v.a!], 2), 2, 2)[1]!, t.scale(v.b!, 2)], 0)),
      (a, b) => tf.add(tf.concat([a!, b!], 0), tf.concat([a!, tf.mul(b!, 2)], 0)),
    );
  });

  it('LeakyReLU (the discriminator’s max(x, 0.2x))', () => {
    expectSameGradients({ x: normal([3, 4, 5], 8) }, (t, v) => t.leakyRelu(v.x!, LEAKY_SLOPE), (x) => leakyRelu(x!));
  });

  it('the hinge losses of the discriminator and of the generator', () => {
    expectSameGradients(
      { real: normal([2, 3, 3, 1], 9), fake: normal([2, 3, 3, 1], 10) },
      (t, v) => {
        const d = t.add(t.mean(t.relu(t.shift(t.scale(v.real!, -1), 1))), t.mean(t.relu(t.shift(v.fake!, 1))));
        return t.add(d, t.scale(t.mean(v.fake!), -0.5));
      },
      (real, fake) => tf.add(discriminatorHingeLoss(real!, fake!), tf.mul(generatorHingeLoss(fake!), 0.5)),
    );
  });
});
