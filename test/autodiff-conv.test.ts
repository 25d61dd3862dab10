import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { GradTape, samePadding } from '../src/backend/onnx/autodiff.js';
import { upsample2x } from '../src/nn/layers.js';
import { HWIO_TO_OIHW, NCHW_TO_NHWC, NHWC_TO_NCHW, expectSameGradients, normal } from './helpers/tape.js';

/**
 * The grad tape's convolutional ops and loss pieces, each in a graph of its own, against tfjs
 * autograd on the same numbers: the op's output, and the gradient of every input for a random
 * output gradient. The tape works NCHW (as ONNX's Conv does), tfjs NHWC: the graph transposes at
 * its edges, so the gradients compared are of the same NHWC tensors.
 */
describe('grad tape: convolutional ops against tfjs autograd', () => {
  it('pads as tfjs does for "same" (the odd pad row at the end)', () => {
    expect(samePadding(8, 3, 1)).toEqual([8, 1, 1]);
    expect(samePadding(8, 3, 2)).toEqual([4, 0, 1]);
    expect(samePadding(7, 3, 2)).toEqual([4, 1, 1]);
    expect(samePadding(8, 1, 2)).toEqual([4, 0, 0]);
    expect(samePadding(8, 4, 1)).toEqual([8, 1, 2]);
  });

  // [kernel, stride, side, input channels]: 3×3 at stride 1 and 2 (even and odd sides), 1×1 (at
  // stride 2 its weight gradient's convolution reaches one row past the kernel), an even kernel; from
  // 8 input channels the weight gradient is a GEMM a tap over the flat padded images, cut into
  // phases at stride 2 (3×3, and 4×4 with its uneven padding, on even and odd sides)
  const cases: [number, number, number, number][] = [
    [3, 1, 6, 3],
    [3, 2, 8, 3],
    [3, 2, 7, 3],
    [1, 1, 5, 3],
    [1, 2, 6, 3],
    [4, 1, 5, 3],
    [3, 1, 6, 8],
    [4, 1, 5, 9],
    [3, 2, 8, 8],
    [3, 2, 7, 9],
    [4, 2, 8, 8],
    [4, 2, 7, 8],
  ];
  for (const [k, s, side, cin] of cases) {
    it(`Conv ${k}×${k}, stride ${s}, ${side}×${side}, ${cin} channels in: output and the input, weight and bias gradients`, () => {
      const cout = 4;
      expectSameGradients(
        { x: normal([2, side, side, cin], 1), w: normal([k, k, cin, cout], 2), b: normal([cout], 3) },
        (t, v) => t.transpose(t.conv(t.transpose(v.x!, NHWC_TO_NCHW), t.transpose(v.w!, HWIO_TO_OIHW), v.b!, s), NCHW_TO_NHWC),
        (x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, 'same'), b!),
      );
    });
  }

  it('nearest ×2 upsampling (layers.ts upsample2x) and its gradient', () => {
    expectSameGradients(
      { x: normal([2, 3, 4, 5], 4) },
      (t, v) => t.transpose(t.upsample2x(t.transpose(v.x!, NHWC_TO_NCHW)), NCHW_TO_NHWC),
      (x) => upsample2x(x as tf.Tensor4D),
    );
  });

  it('the L1 reconstruction loss mean(|a − b|), gradients to both sides', () => {
    expectSameGradients(
      { a: normal([2, 3, 4, 2], 5), b: normal([2, 3, 4, 2], 6) },
      (t, v) => t.mean(t.abs(t.sub(v.a!, v.b!))),
      (a, b) => tf.mean(tf.abs(tf.sub(a!, b!))),
    );
  });

  it('an L2 penalty λ·mean(z²) added to another loss, and Sub with broadcasting', () => {
    expectSameGradients(
      { z: normal([2, 4, 3], 8), m: normal([4, 1], 9) },
      (t, v) => t.add(t.mean(t.sub(v.z!, v.m!)), t.scale(t.mean(t.square(v.z!)), 0.3)),
      (z, m) => tf.add(tf.mean(tf.sub(z!, m!)), tf.mul(tf.mean(tf.square(z!)), 0.3)),
    );
  });

  it('GELU and a strided conv chained, as the autoencoder stacks them', () => {
    expectSameGradients(
      { x: normal([1, 8, 8, 2], 10), w1: normal([3, 3, 2, 3], 11), b1: normal([3], 12), w2: normal([3, 3, 3, 2], 13), b2: normal([2], 14) },
      (t, v) => {
        const h = t.quickGelu(t.conv(t.transpose(v.x!, NHWC_TO_NCHW), t.transpose(v.w1!, HWIO_TO_OIHW), v.b1!, 2), 1.702);
        return t.transpose(t.conv(t.upsample2x(h), t.transpose(v.w2!, HWIO_TO_OIHW), v.b2!, 1), NCHW_TO_NHWC);
      },
      (x, w1, b1, w2, b2) => {
        const c1 = tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 2, 'same'), b1!);
        const h = tf.mul(c1, tf.sigmoid(tf.mul(c1, 1.702))) as tf.Tensor4D;
        return tf.add(tf.conv2d(upsample2x(h), w2 as tf.Tensor4D, 1, 'same'), b2!);
      },
    );
  });

  it('refuses a conv whose channels do not match', () => {
    const t = new GradTape();
    const x = t.input('x', 'float32', [1, 3, 4, 4], true);
    const w = t.input('w', 'float32', [2, 5, 3, 3], true);
    expect(() => t.conv(x, w, t.input('b', 'float32', [2]), 1)).toThrow(/conv of \[1,3,4,4\] with \[2,5,3,3\]/);
  });
});
