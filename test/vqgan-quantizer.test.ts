import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ParamStore } from '../src/nn/params.js';
import { codeHistogram, codebookUsage, perplexity, psnr, ssim } from '../src/vqgan/metrics.js';
import { patchify, unpatchify } from '../src/nn/layers.js';
import { FactorizedQuantizer, l2Normalize } from '../src/vqgan/quantizer.js';

describe('factorized quantizer', () => {
  it('picks the code of highest cosine similarity, whatever the input length', () => {
    const q = new FactorizedQuantizer(new ParamStore(0), 4, 2);
    q.codebook.assign(tf.tensor2d([[1, 0], [0, 1], [-1, 0], [0, -3]]));
    const z = tf.tensor2d([[5, 0.1], [0.2, 0.3], [-0.01, 0], [1, -100], [0.3, 0.31]]);
    expect(Array.from(q.nearest(z).dataSync())).toEqual([0, 1, 2, 3, 1]);
    const out = q.quantize(z);
    expect(Array.from(out.indices.dataSync())).toEqual([0, 1, 2, 3, 1]);
    // quantized vectors are the normalized codes
    const zq = out.zq.arraySync();
    expect(zq[3]![0]).toBeCloseTo(0, 6);
    expect(zq[3]![1]).toBeCloseTo(-1, 6);
    q.codebook.dispose();
  });

  it('passes the gradient straight through to the inputs and trains the codes by the codebook loss', () => {
    const q = new FactorizedQuantizer(new ParamStore(1), 8, 4);
    const z = tf.variable(tf.randomNormal([6, 4], 0, 1, 'float32', 3));
    const w = tf.randomNormal([6, 4], 0, 1, 'float32', 4);
    // straight-through: the gradient wrt the input is that of sum(w ⊙ normalize(z)), as if no lookup happened
    const viaQuantizer = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(q.quantize(x as tf.Tensor2D).zq, w)))(z);
    const asIdentity = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(l2Normalize(x), w)))(z);
    const a = Array.from(viaQuantizer.dataSync());
    expect(a.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    expect(a).toEqual(Array.from(asIdentity.dataSync()).map((v) => expect.closeTo(v, 5)));
    // the codebook gets gradient only from the codebook loss, and only for the codes in use
    const { grads } = tf.variableGrads(() => q.quantize(z as unknown as tf.Tensor2D).codebookLoss, [q.codebook]);
    const g = grads[q.codebook.name]!.arraySync() as number[][];
    const used = new Set(Array.from(q.nearest(z as unknown as tf.Tensor2D).dataSync()));
    g.forEach((row, k) => {
      const norm = Math.hypot(...row);
      if (used.has(k)) expect(norm).toBeGreaterThan(0);
      else expect(norm).toBe(0);
    });
  });

  it('restarts dead codes from encoder outputs', () => {
    const q = new FactorizedQuantizer(new ParamStore(2), 3, 2);
    q.codebook.assign(tf.tensor2d([[1, 0], [0, 1], [1, 1]]));
    const candidates = new Float32Array([0.6, 0.8, -1, 0]);
    const n = q.restart([5, 0, 2], candidates, () => 1);
    expect(n).toBe(1);
    expect(q.codebook.arraySync()).toEqual([[1, 0], [-1, 0], [1, 1]]);
  });
});

describe('patches', () => {
  it('patchify puts each patch in a row in raster order, and unpatchify inverts it', () => {
    const x = tf.tensor4d(Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => i), [2, 4, 4, 3]);
    const p = patchify(x, 2);
    expect(p.shape).toEqual([8, 12]);
    // first patch of image 0: rows 0–1, cols 0–1
    const first = Array.from(p.slice([0, 0], [1, 12]).dataSync());
    expect(first).toEqual([0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17]);
    // second patch: cols 2–3
    expect(Array.from(p.slice([1, 0], [1, 3]).dataSync())).toEqual([6, 7, 8]);
    expect(Array.from(unpatchify(p, 2, 2, 3).dataSync())).toEqual(Array.from(x.dataSync()));
  });
});

describe('metrics', () => {
  it('PSNR of a known error', () => {
    const a = new Float32Array(100).fill(0.5);
    const b = a.map((v) => v + 0.1);
    expect(psnr(a, b)).toBeCloseTo(20, 4);
    expect(psnr(a, a)).toBe(Infinity);
  });

  it('SSIM is 1 for identical images and falls with noise and with a contrast change', () => {
    const h = 16;
    const img = new Float32Array(h * h).map((_, i) => ((i % h) + Math.floor(i / h)) / (2 * h));
    expect(ssim(img, img, h, h, 1)).toBeCloseTo(1, 6);
    const noisy = img.map((v, i) => v + (i % 3 === 0 ? 0.1 : -0.05));
    const flat = img.map((v) => 0.5 + (v - 0.5) * 0.2);
    const s1 = ssim(img, noisy, h, h, 1);
    const s2 = ssim(img, flat, h, h, 1);
    expect(s1).toBeLessThan(0.95);
    expect(s2).toBeLessThan(0.95);
    expect(s1).toBeGreaterThan(0);
  });

  it('usage and perplexity of a code histogram', () => {
    const counts = codeHistogram([0, 0, 1, 1, 2, 2, 3, 3], 8);
    expect(codebookUsage(counts)).toBe(0.5);
    expect(perplexity(counts)).toBeCloseTo(4, 6);
    expect(perplexity(codeHistogram([5, 5, 5], 8))).toBeCloseTo(1, 6);
  });
});
