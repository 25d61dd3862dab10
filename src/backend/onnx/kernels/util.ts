/** Shared helpers for the onnx backend's kernels. */
import * as tf from '@tensorflow/tfjs';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { GraphSpec } from '../graphs.js';
import { allocate, compiled, runCompiled } from '../sessions.js';

export type Backend = MathBackendCPU;
export type Values = Float32Array | Int32Array;
export type NumDtype = 'float32' | 'int32';

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: Backend;
  attrs?: tf.NamedAttrMap;
}
export type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** A kernel of ours plus the cpu kernel it falls back to. */
export interface OnnxKernel {
  name: string;
  /** Returns null to let the cpu kernel handle the call (unsupported dtype, tiny or empty input...). */
  run: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The cpu backend's values of `t` as a typed array of its dtype (float32 / int32 only). */
export function valuesOf(backend: Backend, t: tf.TensorInfo): Values {
  const v = backend.data.get(t.dataId).values as unknown;
  if (t.dtype === 'float32') return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
  if (v instanceof Int32Array) return v;
  return Int32Array.from(v as ArrayLike<number>);
}

export function isNum(dtype: tf.DataType): dtype is NumDtype {
  return dtype === 'float32' || dtype === 'int32';
}

/**
 * Runs the model `key` (built by `build` on first use) on `inputs` and returns a tensor info of
 * `shape` and `dtype` that the cpu backend owns.
 */
export function runToTensor(
  backend: Backend,
  key: string,
  build: () => GraphSpec,
  inputs: readonly Values[],
  shape: number[],
  dtype: NumDtype,
  threaded = false,
): tf.TensorInfo {
  const op = compiled(key, build, threaded);
  const out = allocate(dtype, sizeOf(shape));
  runCompiled(op, inputs, [out]);
  return backend.makeTensorInfo(shape, dtype, out);
}

/**
 * Merges adjacent dimensions that behave the same way, for broadcasting: `flags[i]` says how
 * dimension i of the output is treated (e.g. which inputs broadcast along it); dims of size 1 are
 * dropped. Returns the merged sizes and their flags.
 */
export function mergeDims(dims: readonly number[], flags: readonly number[]): { dims: number[]; flags: number[] } {
  const outDims: number[] = [];
  const outFlags: number[] = [];
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i]!;
    if (d === 1) continue;
    const f = flags[i]!;
    if (outDims.length > 0 && outFlags[outFlags.length - 1] === f) outDims[outDims.length - 1]! *= d;
    else {
      outDims.push(d);
      outFlags.push(f);
    }
  }
  return { dims: outDims, flags: outFlags };
}

/** "2048,256" */
export const dimsKey = (d: readonly number[]): string => d.join(',');
