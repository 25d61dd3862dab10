/**
 * The factorized, l2-normalized codebook of ViT-VQGAN (Yu et al. 2022, §3.2): encoder outputs are
 * projected to a low-dimensional lookup space, inputs and codes are l2-normalized, and the nearest
 * code is the one of highest cosine similarity. Gradients pass straight through the lookup.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '../nn/params.js';

export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-12))) as T);
}

/** Identity forward; no gradient flows back (tfjs has no stop_gradient op). */
export const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as <T extends tf.Tensor>(x: T) => T;

/** Forward `q`, backward the gradient straight to `z` (z + sg(q − z), in one op). */
export const straightThrough = tf.customGrad(((_z: tf.Tensor, q: tf.Tensor) => ({
  value: tf.clone(q),
  gradFunc: (dy: tf.Tensor) => [dy, tf.zerosLike(dy)],
})) as unknown as Parameters<typeof tf.customGrad>[0]) as <T extends tf.Tensor>(z: T, q: T) => T;

export interface Quantized {
  /** Quantized vectors with straight-through gradient to the inputs, [M, d]. */
  zq: tf.Tensor2D;
  /** Normalized inputs, [M, d]. */
  zn: tf.Tensor2D;
  /** Index of the chosen code per row, [M]. */
  indices: tf.Tensor1D;
  /** ‖sg(z) − q‖² (moves codes) and ‖z − sg(q)‖² (commits the encoder). */
  codebookLoss: tf.Scalar;
  commitLoss: tf.Scalar;
}

export class FactorizedQuantizer {
  readonly codebook: tf.Variable;

  constructor(p: ParamStore, readonly size: number, readonly dim: number) {
    this.codebook = p.get('codebook', [size, dim], { normal: 1 });
  }

  /** Normalized codes, [K, d]. */
  codes(): tf.Tensor2D {
    return l2Normalize(this.codebook as tf.Tensor2D);
  }

  /** Nearest code (by cosine) for each row of z [M, d]. */
  nearest(z: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => tf.argMax(tf.matMul(l2Normalize(z), tf.transpose(this.codes())), 1) as tf.Tensor1D);
  }

  quantize(z: tf.Tensor2D): Quantized {
    const zn = l2Normalize(z);
    const codes = this.codes();
    // Ids are read back and re-made so the tape does not run through argMax and the gather's indices.
    const ids = tf.tidy(() => tf.argMax(tf.matMul(zn, tf.transpose(codes)), 1));
    const indices = tf.tensor1d(ids.dataSync() as Int32Array, 'int32');
    ids.dispose();
    const q = tf.gather(codes, indices) as tf.Tensor2D;
    const codebookLoss = tf.mean(tf.square(tf.sub(stopGradient(zn), q))) as tf.Scalar;
    const commitLoss = tf.mean(tf.square(tf.sub(zn, stopGradient(q)))) as tf.Scalar;
    return { zq: straightThrough(zn, q), zn, indices, codebookLoss, commitLoss };
  }

  /** Normalized codes for given indices, [M, d]. */
  lookup(indices: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => tf.gather(this.codes(), indices) as tf.Tensor2D);
  }

  /**
   * Dead-code restart: every code whose entry in `counts` is 0 is re-seeded with one of the
   * `candidates` (normalized encoder outputs, [M·d] row-major), picked by `pick`. Returns how many.
   */
  restart(counts: ArrayLike<number>, candidates: Float32Array, pick: (n: number) => number): number {
    const m = candidates.length / this.dim;
    if (m === 0) return 0;
    const book = this.codebook.dataSync().slice() as Float32Array;
    let restarted = 0;
    for (let k = 0; k < this.size; k++) {
      if (counts[k]! > 0) continue;
      const row = pick(m);
      for (let j = 0; j < this.dim; j++) book[k * this.dim + j] = candidates[row * this.dim + j]!;
      restarted++;
    }
    if (restarted > 0) tf.tidy(() => this.codebook.assign(tf.tensor2d(book, [this.size, this.dim])));
    return restarted;
  }
}
