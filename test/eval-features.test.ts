/**
 * Penultimate-layer features of the judging classifier: shape, determinism across batch sizes,
 * and that two visibly different groups of images lie further apart than images within a group.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildClassifier, classifierFeatures, classifierFeatureStats, classify } from '../src/eval/classifier.js';
import { featureStats } from '../src/eval/frechet.js';
import { Rng } from '../src/random.js';

const SIZE = 16;
const CHANNELS = 3;

/** `count` images in [0, 1]: a bright square near the centre on a dark background, or (bright = false) dark noise only. */
function group(count: number, bright: boolean, rng: Rng): Float32Array {
  const per = SIZE * SIZE * CHANNELS;
  const out = new Float32Array(count * per);
  for (let i = 0; i < count; i++) {
    const side = 6 + rng.int(3);
    const x0 = 4 + rng.int(3);
    const y0 = 4 + rng.int(3);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        for (let k = 0; k < CHANNELS; k++) {
          const inside = bright && x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
          out[i * per + (y * SIZE + x) * CHANNELS + k] = inside ? 0.9 + 0.1 * rng.next() : 0.1 * rng.next();
        }
  }
  return out;
}

function meanPairDistance(f: Float32Array, dim: number, a: number[], b: number[]): number {
  let sum = 0;
  let pairs = 0;
  for (const i of a)
    for (const j of b) {
      if (i === j) continue;
      let d = 0;
      for (let k = 0; k < dim; k++) d += (f[i * dim + k]! - f[j * dim + k]!) ** 2;
      sum += Math.sqrt(d);
      pairs++;
    }
  return sum / pairs;
}

describe('classifierFeatures', () => {
  it('gives 128 non-negative features per image, the same whatever the batch size', () => {
    const model = buildClassifier({ size: SIZE, channels: CHANNELS, classes: 4 }, 1);
    const images = group(10, true, new Rng(1));
    const tensorsBefore = tf.memory().numTensors;
    const { features, dim } = classifierFeatures(model, images, { size: SIZE, channels: CHANNELS });
    expect(dim).toBe(128);
    expect(features.length).toBe(10 * 128);
    expect(features.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    expect(features.some((v) => v > 0)).toBe(true);
    const again = classifierFeatures(model, images, { size: SIZE, channels: CHANNELS }, 3);
    expect(again.dim).toBe(128);
    for (let i = 0; i < features.length; i++) expect(again.features[i]).toBeCloseTo(features[i]!, 5);
    // No tensors leak beyond the (cached) feature model, which owns no weights of its own.
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // The classifier itself is untouched.
    expect(classify(model, images, { size: SIZE, channels: CHANNELS }).length).toBe(10);
    expect(() => classifierFeatures(model, images.subarray(1), { size: SIZE, channels: CHANNELS })).toThrow(/not whole/);
    // Their mean and covariance, one side of a Fréchet distance, over the 10 images.
    const stats = classifierFeatureStats(model, images, { size: SIZE, channels: CHANNELS });
    const direct = featureStats(features, 10, 128);
    expect(stats.count).toBe(10);
    for (let i = 0; i < 128; i++) expect(stats.mean[i]).toBeCloseTo(direct.mean[i]!, 5);
    model.dispose();
  });

  it('puts bright squares and dark backgrounds further apart than images within a group', () => {
    const model = buildClassifier({ size: SIZE, channels: CHANNELS, classes: 4 }, 2);
    const rng = new Rng(2);
    const n = 12;
    const images = new Float32Array(2 * n * SIZE * SIZE * CHANNELS);
    images.set(group(n, true, rng), 0);
    images.set(group(n, false, rng), n * SIZE * SIZE * CHANNELS);
    const { features, dim } = classifierFeatures(model, images, { size: SIZE, channels: CHANNELS }, 5);
    const bright = Array.from({ length: n }, (_, i) => i);
    const dark = Array.from({ length: n }, (_, i) => n + i);
    const within = Math.max(meanPairDistance(features, dim, bright, bright), meanPairDistance(features, dim, dark, dark));
    const between = meanPairDistance(features, dim, bright, dark);
    expect(between).toBeGreaterThan(1.5 * within);
    model.dispose();
  });
});
