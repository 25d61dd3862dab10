/**
 * Kernels a backend may provide to run a composite op in one call: `MaskgenGelu` (x·σ(1.702x)) and
 * its gradient `MaskgenGeluGrad` (dy·(s + 1.702x·s·(1 − s)), s = σ(1.702x)); `MaskgenLayerNorm`
 * (over the last axis, with gain and bias) and `MaskgenLayerNormGrad` (dx, dg, db). The model code asks for
 * them by name when the current backend registered them (the onnx backend does: one ONNX Runtime
 * session instead of three tfjs ops forward and seven backward) and composes the same formula from
 * plain ops everywhere else, so the result is the same on every backend.
 */
import * as tf from '@tensorflow/tfjs';

export const GELU_KERNEL = 'MaskgenGelu';
export const GELU_GRAD_KERNEL = 'MaskgenGeluGrad';
/** The slope of the sigmoid approximation of GELU. */
export const GELU_K = 1.702;

function hasKernels(...names: string[]): boolean {
  const backend = tf.getBackend();
  return names.every((n) => tf.getKernel(n, backend) !== undefined);
}

const fusedGelu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x: saved[0]! }) as tf.Tensor,
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** GELU, sigmoid approximation: x·σ(1.702x), fused where the backend can. */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (x.dtype === 'float32' && hasKernels(GELU_KERNEL, GELU_GRAD_KERNEL)) return fusedGelu(x) as T;
  return tf.mul(x, tf.sigmoid(tf.mul(x, GELU_K))) as T;
}

export const LAYER_NORM_KERNEL = 'MaskgenLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'MaskgenLayerNormGrad';

function fusedLayerNorm(eps: number) {
  return tf.customGrad(((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, g]);
    return {
      value: tf.engine().runKernel(LAYER_NORM_KERNEL, { x, g, b }, { eps }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, x: saved[0]!, g: saved[1]! }, { eps }) as tf.Tensor[],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
}
const fusedLayerNorms = new Map<number, ReturnType<typeof fusedLayerNorm>>();

/** (x − mean)/√(var + eps)·g + b over the last axis, fused where the backend can. */
export function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, b: tf.Tensor, eps: number): T {
  if (x.dtype === 'float32' && hasKernels(LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL)) {
    let f = fusedLayerNorms.get(eps);
    if (!f) fusedLayerNorms.set(eps, (f = fusedLayerNorm(eps)));
    return (f as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor)(x, g, b) as T;
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(g).add(b) as T;
  });
}

export const ADAMW_KERNEL = 'MaskgenAdamW';
export const EMA_KERNEL = 'MaskgenEma';

/** The numbers of one AdamW update, the same for every parameter of a step. */
export interface AdamWCoefficients {
  /** Gradients are multiplied by this first (global-norm clipping). */
  gradScale: number;
  beta1: number;
  beta2: number;
  /** lr / (1 − β1^t). */
  stepSize: number;
  /** 1 / (1 − β2^t). */
  invBias2: number;
  eps: number;
  /** lr · weight decay for this parameter (0: none). */
  decay: number;
}

/**
 * One AdamW update of parameter p with moments m, v and gradient g:
 *   g' = s·g,  m' = β1·m + (1 − β1)·g',  v' = β2·v + (1 − β2)·g'²,
 *   p' = p − stepSize·m' / (√(v'·invBias2) + eps) − decay·p.
 * Returns [p', m', v']; one kernel call on backends that register `MaskgenAdamW` (the onnx backend),
 * about twelve ops elsewhere.
 */
export function adamwUpdate(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, c: AdamWCoefficients): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (p.dtype === 'float32' && hasKernels(ADAMW_KERNEL)) {
    return tf.tidy(() => {
      const coef = tf.tensor1d([c.gradScale, c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.stepSize, c.invBias2, c.eps, c.decay]);
      return tf.engine().runKernel(ADAMW_KERNEL, { p, m, v, g, coef }) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
    });
  }
  return tf.tidy(() => {
    const gs = c.gradScale === 1 ? g : tf.mul(g, c.gradScale);
    const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(gs, 1 - c.beta1));
    const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(gs), 1 - c.beta2));
    let update = tf.div(tf.mul(m1, c.stepSize), tf.add(tf.sqrt(tf.mul(v1, c.invBias2)), c.eps));
    if (c.decay !== 0) update = tf.add(update, tf.mul(p, c.decay));
    return [tf.sub(p, update), m1, v1];
  });
}

/** One parameter of a whole AdamW step: its weight, moments and gradient, and its lr · weight decay. */
export interface AdamWEntry {
  p: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  g: tf.Tensor;
  decay: number;
}

/**
 * A backend's AdamW step over many parameters at once that writes p, m and v where they lie, with
 * `adamwUpdate`'s formula and float32 coefficients (so that its results equal `adamwUpdate`'s to
 * the bit); for each entry, whether it could (a buffer something else may see is left alone).
 */
export type InPlaceAdamW = (entries: readonly AdamWEntry[], c: Omit<AdamWCoefficients, 'decay'>) => boolean[];

const inPlaceAdamWs = new Map<string, InPlaceAdamW>();

/** Registers `fn` as `backend`'s in-place AdamW (the onnx backend does). */
export function registerInPlaceAdamW(backend: string, fn: InPlaceAdamW): void {
  inPlaceAdamWs.set(backend, fn);
}

/** The current backend's in-place AdamW, if it has one. */
export function inPlaceAdamW(): InPlaceAdamW | undefined {
  return inPlaceAdamWs.get(tf.getBackend());
}

/**
 * One step of a moving average: a' = d·a + (1 − d)·w. One kernel call (one pass over a and w) on
 * backends that register `MaskgenEma` (the onnx backend), three ops elsewhere.
 */
export function emaUpdate(a: tf.Tensor, w: tf.Tensor, d: number): tf.Tensor {
  if (a.dtype === 'float32' && hasKernels(EMA_KERNEL)) {
    return tf.tidy(() => tf.engine().runKernel(EMA_KERNEL, { a, w, coef: tf.tensor1d([d, 1 - d]) }) as tf.Tensor);
  }
  return tf.tidy(() => tf.add(tf.mul(a, d), tf.mul(w, 1 - d)));
}
