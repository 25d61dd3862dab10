import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/**
 * Sets every variable to N(0, std²) noise (seeded), so that a model's output is far from what its
 * initial values give (tiny attention logits, a zero output layer) and comparisons mean something.
 */
export function scrambleWeights(vars: Record<string, tf.Variable>, seed: number, std = 0.3): void {
  let i = 0;
  for (const v of Object.values(vars)) v.assign(tf.randomNormal(v.shape, 0, std, 'float32', seed * 1000 + i++));
}

/** max |actual − expected| ≤ tol · max |expected|, and expected's largest value is at least `minScale`. */
export function expectCloseRelative(actual: Float32Array, expected: Float32Array, tol = 1e-4, minScale = 0.5): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  expect(scale).toBeGreaterThanOrEqual(minScale);
  expect(worst / scale).toBeLessThan(tol);
}
