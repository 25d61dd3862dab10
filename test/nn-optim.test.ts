import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AdamW, clipScale } from '../src/nn/optim.js';

describe('AdamW', () => {
  it('takes the textbook steps (bias-corrected moments, decoupled decay on matrices only)', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const b = tf.variable(tf.tensor1d([0.5]));
    const opt = new AdamW({ w, b }, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    // step 1, g = (0.5, −1) for w and 2 for b: m̂ = g, v̂ = g², so the update is lr·sign(g) (+ decay)
    opt.apply({ w: tf.tensor2d([[0.5, -1]]), b: tf.tensor1d([2]) }, lr);
    const w1 = Array.from(w.dataSync());
    expect(w1[0]).toBeCloseTo(1 - lr - lr * 0.1 * 1, 6);
    expect(w1[1]).toBeCloseTo(-2 + lr - lr * 0.1 * -2, 6);
    expect(b.dataSync()[0]).toBeCloseTo(0.5 - lr, 6); // no decay on a vector
    // step 2 with the gradient scaled by 0.5 (clipping): g' = 0.25 for w[0]
    opt.apply({ w: tf.tensor2d([[0.5, -1]]), b: tf.tensor1d([2]) }, lr, 0.5);
    const m = 0.9 * 0.05 + 0.1 * 0.25; // β1·m1 + (1 − β1)·g', with m1 = 0.1·0.5
    const v = 0.99 * 0.0025 + 0.01 * 0.0625;
    const step = (lr / (1 - 0.81)) * m / (Math.sqrt(v / (1 - 0.9801)) + 1e-8);
    expect(w.dataSync()[0]).toBeCloseTo(w1[0]! - step - lr * 0.1 * w1[0]!, 6);
    expect(Object.keys(opt.state()).sort()).toEqual(['m/b', 'm/w', 'v/b', 'v/w']);
    opt.dispose();
  });

  it('clipScale gives the global norm and the factor that brings it to the limit', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
    expect(clipScale(grads, 10)).toEqual({ norm: 5, scale: 1 });
    const { norm, scale } = clipScale(grads, 1);
    expect(norm).toBe(5);
    expect(scale).toBeCloseTo(0.2, 6);
    expect(clipScale(grads, 0).scale).toBe(1); // 0 = no clipping
  });
});
