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
