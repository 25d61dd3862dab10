/**
 * The building blocks shared by the ViT-VQGAN, the masked transformer and the refiner, written for
 * speed on every tfjs backend (see shared/PERF-NOTES.md): activations are kept as 2-D [rows, width]
 * so that every linear layer is one plain 2-D matMul; GELU is the sigmoid form x·σ(1.702x) (tanh and
 * pow are slow on wasm); LayerNorm uses tf.moments.
 */
import * as tf from '@tensorflow/tfjs';
import { gelu, layerNorm } from './fused-kernels.js';
import type { ParamStore } from './params.js';

export class Linear {
  readonly w: tf.Variable;
  readonly b?: tf.Variable;

  constructor(p: ParamStore, readonly inDim: number, readonly outDim: number, opts: { bias?: boolean; std?: number } = {}) {
    this.w = p.get('w', [inDim, outDim], { normal: opts.std ?? 0.02 });
    if (opts.bias ?? true) this.b = p.get('b', [outDim], 'zeros');
  }

  /** x [rows, in] → [rows, out] */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.fused.matMul({ a: x, b: this.w as tf.Tensor2D, bias: this.b }) as tf.Tensor2D;
  }
}

export class LayerNorm {
  readonly g: tf.Variable;
  readonly b: tf.Variable;

  constructor(p: ParamStore, dim: number, private readonly eps = 1e-5) {
    this.g = p.get('g', [dim], 'ones');
    this.b = p.get('b', [dim], 'zeros');
  }

  apply<T extends tf.Tensor>(x: T): T {
    return layerNorm(x, this.g, this.b, this.eps);
  }
}

export { gelu } from './fused-kernels.js';

/** tanh(x) as 2σ(2x) − 1 (tanh is ~6× slower than sigmoid on wasm). */
export function fastTanh<T extends tf.Tensor>(x: T): T {
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) as T;
}

export class Mlp {
  readonly fc: Linear;
  readonly proj: Linear;

  constructor(p: ParamStore, dim: number, hidden: number, projStd: number) {
    this.fc = new Linear(p.scope('fc'), dim, hidden);
    this.proj = new Linear(p.scope('proj'), hidden, dim, { std: projStd });
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.proj.apply(gelu(this.fc.apply(x)));
  }
}

/**
 * Multi-head attention over 2-D activations. Queries come from `x` ([B·T, D]); keys and values from
 * `context` ([B·S, Dc]), which is `x` itself for self-attention. `keyBias` ([B, S], 0 to attend and a
 * large negative number to ignore) masks padded keys.
 */
export class Attention {
  readonly q: Linear;
  readonly kv: Linear;
  readonly proj: Linear;

  constructor(p: ParamStore, readonly dim: number, readonly heads: number, projStd: number, contextDim = dim) {
    if (dim % heads !== 0) throw new Error(`attention width ${dim} is not divisible by ${heads} heads`);
    this.q = new Linear(p.scope('q'), dim, dim);
    this.kv = new Linear(p.scope('kv'), contextDim, 2 * dim);
    this.proj = new Linear(p.scope('proj'), dim, dim, { std: projStd });
  }

  /** `keyBias` [B, S] is added to every query's scores; [B, T, S] (e.g. paint-with-words) per query. */
  apply(x: tf.Tensor2D, batch: number, context?: tf.Tensor2D, keyBias?: tf.Tensor2D | tf.Tensor3D): tf.Tensor2D {
    const h = this.heads;
    const dh = this.dim / h;
    const t = x.shape[0] / batch;
    const ctx = context ?? x;
    const s = ctx.shape[0] / batch;
    // [B·T, D] → [B, H, T, dh], with the 1/√dh scale folded into q
    const q = tf.transpose(tf.reshape(tf.mul(this.q.apply(x), 1 / Math.sqrt(dh)), [batch, t, h, dh]), [0, 2, 1, 3]);
    // [B·S, 2D] → [2, B, H, S, dh]
    const kv = tf.transpose(tf.reshape(this.kv.apply(ctx), [batch, s, 2, h, dh]), [2, 0, 3, 1, 4]);
    const [k, v] = tf.unstack(kv, 0) as [tf.Tensor4D, tf.Tensor4D];
    let scores = tf.matMul(q, k, false, true); // [B, H, T, S]
    if (keyBias) scores = tf.add(scores, tf.reshape(keyBias, keyBias.rank === 3 ? [batch, 1, t, s] : [batch, 1, 1, s]));
    const out = tf.matMul(tf.softmax(scores), v); // [B, H, T, dh]
    return this.proj.apply(tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * t, this.dim]));
  }
}

/** A pre-LN transformer block: self-attention, optional cross-attention, MLP, each residual. */
export class Block {
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly lnCross?: LayerNorm;
  readonly cross?: Attention;
  readonly ln2: LayerNorm;
  readonly mlp: Mlp;

  constructor(p: ParamStore, dim: number, heads: number, mlpRatio: number, depth: number, contextDim?: number) {
    const projStd = 0.02 / Math.sqrt(2 * depth);
    this.ln1 = new LayerNorm(p.scope('ln1'), dim);
    this.attn = new Attention(p.scope('attn'), dim, heads, projStd);
    if (contextDim !== undefined) {
      this.lnCross = new LayerNorm(p.scope('ln_cross'), dim);
      this.cross = new Attention(p.scope('cross'), dim, heads, projStd, contextDim);
    }
    this.ln2 = new LayerNorm(p.scope('ln2'), dim);
    this.mlp = new Mlp(p.scope('mlp'), dim, dim * mlpRatio, projStd);
  }

  /**
   * `context`/`contextBias` feed the cross-attention (when the block has one); `selfBias` ([B, T], 0 or
   * a large negative number) masks padded positions out of the self-attention's keys ([B, T, T]: per
   * query, e.g. a causal mask).
   */
  apply(x: tf.Tensor2D, batch: number, context?: tf.Tensor2D, contextBias?: tf.Tensor2D | tf.Tensor3D, selfBias?: tf.Tensor2D | tf.Tensor3D): tf.Tensor2D {
    x = tf.add(x, this.attn.apply(this.ln1.apply(x), batch, undefined, selfBias));
    if (this.cross && this.lnCross && context) {
      x = tf.add(x, this.cross.apply(this.lnCross.apply(x), batch, context, contextBias));
    }
    return tf.add(x, this.mlp.apply(this.ln2.apply(x)));
  }
}

/** Adds a learned [T, D] table to every sequence of a [B·T, D] batch. */
export function addPositions(x: tf.Tensor2D, pos: tf.Tensor, batch: number): tf.Tensor2D {
  const [rows, dim] = x.shape;
  return tf.reshape(tf.add(tf.reshape(x, [batch, rows / batch, dim]), pos), [rows, dim]);
}

/** [B, S, S, C] → [B·N, p·p·C], patches in raster order, each patch (row, col, channel) flattened. */
export function patchify(x: tf.Tensor4D, p: number): tf.Tensor2D {
  const [b, s, , c] = x.shape;
  const g = s / p;
  return tf.tidy(() =>
    tf.reshape(tf.transpose(tf.reshape(x, [b * g, p, g, p * c]), [0, 2, 1, 3]), [b * g * g, p * p * c]),
  );
}

/** The inverse of patchify. */
export function unpatchify(x: tf.Tensor2D, batch: number, p: number, c: number): tf.Tensor4D {
  const g = Math.round(Math.sqrt(x.shape[0] / batch));
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(x, [batch * g, g, p, p * c]), [0, 2, 1, 3]), [batch, g * p, g * p, c]));
}

/** A 2-D convolution, NHWC, 'same' padding, weights [k, k, in, out] (He-initialised). */
export class Conv2d {
  readonly w: tf.Variable;
  readonly b: tf.Variable;

  constructor(p: ParamStore, readonly inCh: number, readonly outCh: number, readonly kernel = 3, readonly stride = 1, opts: { std?: number } = {}) {
    this.w = p.get('w', [kernel, kernel, inCh, outCh], { normal: opts.std ?? Math.sqrt(2 / (kernel * kernel * inCh)) });
    this.b = p.get('b', [outCh], 'zeros');
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.add(tf.conv2d(x, this.w as tf.Tensor4D, this.stride, 'same'), this.b) as tf.Tensor4D;
  }
}

/** Nearest-neighbour ×2 upsampling by broadcasting (differentiable on every backend). */
export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => tf.reshape(tf.mul(tf.reshape(x, [b * h, 1, w, 1, c]), tf.ones([1, 2, 1, 2, 1])), [b, 2 * h, 2 * w, c]));
}
