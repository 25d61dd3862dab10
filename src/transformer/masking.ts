/**
 * Training-time masking (MaskGIT / Muse): per example a mask ratio cos(π/2 · r), r ~ U(0, 1), at
 * least one token masked; and the cross-entropy over masked positions only, with label smoothing.
 */
import * as tf from '@tensorflow/tfjs';
import { maskRatio } from '../decoding/schedules.js';
import type { Rng } from '../random.js';

/** How many of n tokens to mask for a draw r ∈ [0, 1): ceil(cos(π/2 · r) · n), at least 1. */
export function maskCountFor(n: number, r: number): number {
  return Math.min(n, Math.max(1, Math.ceil(maskRatio(r) * n)));
}

/**
 * Masks a batch of token grids: returns the input tokens with masked positions set to `maskId`
 * and a weight per position (1 where masked, else 0).
 */
export function maskBatch(tokens: Int32Array, batch: number, n: number, maskId: number, rng: Rng): { input: Int32Array; masked: Float32Array } {
  const input = Int32Array.from(tokens);
  const masked = new Float32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    const count = maskCountFor(n, rng.next());
    const order = rng.permutation(n);
    for (let i = 0; i < count; i++) {
      const j = b * n + order[i]!;
      input[j] = maskId;
      masked[j] = 1;
    }
  }
  return { input, masked };
}

/**
 * Mean cross-entropy over the positions whose weight is 1, with label smoothing ε: the target is
 * (1 − ε) on the true token plus ε/K spread over all K.
 */
export function maskedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D, smoothing: number): tf.Scalar {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const target = tf.add(tf.mul(tf.oneHot(targets, k), 1 - smoothing), smoothing / k);
    const perToken = tf.neg(tf.sum(tf.mul(target, logp), 1));
    return tf.div(tf.sum(tf.mul(perToken, weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/**
 * The autoregressive objective's input: each grid shifted right by one in raster order, `bos` (the
 * [MASK] id) first, so that position i sees tokens 0 … i − 1 under the causal mask and predicts token i.
 */
export function shiftRight(tokens: Int32Array, batch: number, n: number, bos: number): Int32Array {
  const out = new Int32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    out[b * n] = bos;
    out.set(tokens.subarray(b * n, (b + 1) * n - 1), b * n + 1);
  }
  return out;
}
