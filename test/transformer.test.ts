import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/random.js';
import { TransformerConfigSchema } from '../src/transformer/config.js';
import { maskBatch, maskCountFor, maskedCrossEntropy } from '../src/transformer/masking.js';
import { MaskedTransformer } from '../src/transformer/model.js';

describe('training-time masking', () => {
  it('masks ceil(cos(π/2·r)·n) tokens, at least one', () => {
    expect(maskCountFor(64, 0)).toBe(64);
    expect(maskCountFor(64, 0.5)).toBe(Math.ceil(Math.cos(Math.PI / 4) * 64)); // 46
    expect(maskCountFor(64, 0.5)).toBe(46);
    expect(maskCountFor(64, 0.999)).toBe(1);
    expect(maskCountFor(64, 1)).toBe(1);
  });

  it('maskBatch sets exactly the weighted positions to the mask id and leaves the rest', () => {
    const tokens = Int32Array.from({ length: 3 * 16 }, (_, i) => i % 10);
    const { input, masked } = maskBatch(tokens, 3, 16, 99, new Rng(4));
    for (let i = 0; i < tokens.length; i++) {
      if (masked[i] === 1) expect(input[i]).toBe(99);
      else expect(input[i]).toBe(tokens[i]);
    }
    for (let b = 0; b < 3; b++) expect(masked.subarray(b * 16, (b + 1) * 16).reduce((a, v) => a + v, 0)).toBeGreaterThanOrEqual(1);
  });

  it('cross-entropy counts only masked positions, with label smoothing', () => {
    const logits = tf.tensor2d([
      [2, 0, 0],
      [0, 5, 0],
    ]);
    const targets = tf.tensor1d([0, 2], 'int32');
    const logp = (row: number[], k: number) => row[k]! - Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    // only the first position is masked: plain NLL of class 0 without smoothing
    const onlyFirst = maskedCrossEntropy(logits, targets, tf.tensor1d([1, 0]), 0).dataSync()[0]!;
    expect(onlyFirst).toBeCloseTo(-logp([2, 0, 0], 0), 5);
    // smoothing 0.1: target 0.9 + 0.1/3 on the true class, 0.1/3 elsewhere; mean over both positions
    const eps = 0.1;
    const smooth = (row: number[], t: number) => -[0, 1, 2].reduce((a, k) => a + ((k === t ? 1 - eps : 0) + eps / 3) * logp(row, k), 0);
    const both = maskedCrossEntropy(logits, targets, tf.tensor1d([1, 1]), eps).dataSync()[0]!;
    expect(both).toBeCloseTo((smooth([2, 0, 0], 0) + smooth([0, 5, 0], 2)) / 2, 5);
  });
});

describe('masked transformer', () => {
  const config = TransformerConfigSchema.parse({ codebookSize: 16, grid: 4, width: 32, depth: 2, heads: 2, mlpRatio: 2, textDim: 8 });

  it('maps a token grid and a text context to codebook logits', () => {
    const model = new MaskedTransformer(config, 0);
    const tokens = tf.tensor2d(Int32Array.from({ length: 2 * 16 }, (_, i) => (i % 3 === 0 ? model.maskId : i % 16)), [2, 16], 'int32');
    const text = { embeddings: tf.randomNormal([2 * 5, 8], 0, 1, 'float32', 1) as tf.Tensor2D, keyBias: tf.zeros([2, 5]) as tf.Tensor2D };
    const before = tf.memory().numTensors;
    const logits = model.logits(tokens, text);
    expect(logits.shape).toEqual([32, 16]);
    expect(tf.memory().numTensors).toBe(before + 1);
    logits.dispose();
    model.dispose();
  });

  it('ignores padded text tokens: changing them does not change the logits', () => {
    const model = new MaskedTransformer(config, 0);
    const tokens = tf.tensor2d(Int32Array.from({ length: 16 }, () => model.maskId), [1, 16], 'int32');
    const e1 = tf.randomNormal([5, 8], 0, 1, 'float32', 1);
    const e2 = tf.concat([e1.slice([0, 0], [3, 8]), tf.randomNormal([2, 8], 0, 1, 'float32', 9)]);
    const keyBias = tf.tensor2d([[0, 0, 0, -1e9, -1e9]]);
    const a = model.logits(tokens, { embeddings: e1 as tf.Tensor2D, keyBias });
    const b = model.logits(tokens, { embeddings: e2 as tf.Tensor2D, keyBias });
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()).map((v) => expect.closeTo(v, 5)));
    const c = model.logits(tokens, { embeddings: e2 as tf.Tensor2D, keyBias: tf.zeros([1, 5]) });
    expect(Math.max(...Array.from(tf.abs(tf.sub(c, a)).dataSync()))).toBeGreaterThan(1e-4);
    model.dispose();
  });
});
