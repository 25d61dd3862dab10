/**
 * maskgen's own fused kernels (src/nn/fused-kernels.ts) as one ONNX Runtime session each: GELU
 * forward (Mul, Sigmoid, Mul) and backward (seven element-wise nodes), so that a [2048, 1024]
 * activation crosses from JS to ORT and back once instead of once per op.
 */
import type * as tf from '@tensorflow/tfjs';
import { GELU_GRAD_KERNEL, GELU_K, GELU_KERNEL } from '../../../nn/fused-kernels.js';
import { float, type GraphSpec, type NodeSpec } from '../graphs.js';
import { runToTensor, sizeOf, valuesOf, type KernelArgs } from './util.js';

const k: NodeSpec = { op: 'Constant', inputs: [], outputs: ['k'], attrs: { value_float: float(GELU_K) } };
const one: NodeSpec = { op: 'Constant', inputs: [], outputs: ['one'], attrs: { value_float: float(1) } };

function geluForward({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const n = sizeOf(x.shape);
  const build = (): GraphSpec => ({
    nodes: [
      k,
      { op: 'Mul', inputs: ['x', 'k'], outputs: ['a'] },
      { op: 'Sigmoid', inputs: ['a'], outputs: ['s'] },
      { op: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
    ],
    inputs: [{ name: 'x', dtype: 'float32', dims: [n] }],
    outputs: [{ name: 'y', dtype: 'float32', dims: [n] }],
  });
  return runToTensor(backend, `${GELU_KERNEL}|${n}`, build, [valuesOf(backend, x)], [...x.shape], 'float32');
}

function geluBackward({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const dy = inputs.dy as tf.TensorInfo;
  const x = inputs.x as tf.TensorInfo;
  const n = sizeOf(x.shape);
  // dy · (s + kx·s·(1 − s)), s = σ(kx)
  const build = (): GraphSpec => ({
    nodes: [
      k,
      one,
      { op: 'Mul', inputs: ['x', 'k'], outputs: ['a'] },
      { op: 'Sigmoid', inputs: ['a'], outputs: ['s'] },
      { op: 'Sub', inputs: ['one', 's'], outputs: ['oms'] },
      { op: 'Mul', inputs: ['s', 'oms'], outputs: ['t'] },
      { op: 'Mul', inputs: ['a', 't'], outputs: ['u'] },
      { op: 'Add', inputs: ['s', 'u'], outputs: ['g'] },
      { op: 'Mul', inputs: ['dy', 'g'], outputs: ['y'] },
    ],
    inputs: [
      { name: 'dy', dtype: 'float32', dims: [n] },
      { name: 'x', dtype: 'float32', dims: [n] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: [n] }],
  });
  return runToTensor(backend, `${GELU_GRAD_KERNEL}|${n}`, build, [valuesOf(backend, dy), valuesOf(backend, x)], [...x.shape], 'float32');
}

/** Kernels with no cpu counterpart: registered for onnx on their own. */
export const fusedKernels: { name: string; run: (args: KernelArgs) => tf.TensorInfo }[] = [
  { name: GELU_KERNEL, run: geluForward },
  { name: GELU_GRAD_KERNEL, run: geluBackward },
];
