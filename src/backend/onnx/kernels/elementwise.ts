/**
 * Element-wise kernels on ONNX Runtime. Unary ops run on the flattened tensor; binary ops on
 * shapes reduced to their broadcasting essentials (adjacent dims that broadcast the same way are
 * merged, size-1 dims dropped), so one session serves e.g. every [B·T, D] + [D] bias add.
 * Small tensors stay on the cpu kernels: below a few thousand elements a native call costs more
 * than the JS loop.
 */
import * as tf from '@tensorflow/tfjs';
import { float, type GraphSpec, type NodeSpec } from '../graphs.js';
import { dimsKey, isNum, mergeDims, runToTensor, sizeOf, valuesOf, type KernelArgs, type NumDtype, type OnnxKernel } from './util.js';

/** Below this many output elements, same-shape element-wise ops stay on the cpu kernel. */
export const MIN_ELEMENTWISE = 2048;
/** The same for broadcasting binary ops (the cpu kernel's broadcasting path costs ~0.1 µs an element). */
export const MIN_BROADCAST = 64;
/** The same for exp, log, sigmoid, tanh... (the cpu kernels take ~10 ns an element). */
export const MIN_TRANSCENDENTAL = 512;

type UnarySpec = {
  /** Nodes from 'x' to 'y'. */
  nodes: (attrs: tf.NamedAttrMap) => NodeSpec[];
  /** Attribute values that change the graph (for the cache key). */
  attrKey?: (attrs: tf.NamedAttrMap) => string;
  dtypes: readonly NumDtype[];
  /** Threshold, when not MIN_ELEMENTWISE. */
  min?: number;
};

const one = (op: string): UnarySpec['nodes'] => () => [{ op, inputs: ['x'], outputs: ['y'] }];

const UNARY: Record<string, UnarySpec> = {
  Exp: { nodes: one('Exp'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Log: { nodes: one('Log'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Sqrt: { nodes: one('Sqrt'), dtypes: ['float32'] },
  Rsqrt: {
    nodes: () => [
      { op: 'Sqrt', inputs: ['x'], outputs: ['s'] },
      { op: 'Reciprocal', inputs: ['s'], outputs: ['y'] },
    ],
    dtypes: ['float32'],
  },
  Reciprocal: { nodes: one('Reciprocal'), dtypes: ['float32'] },
  Sigmoid: { nodes: one('Sigmoid'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Tanh: { nodes: one('Tanh'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Erf: { nodes: one('Erf'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Relu: { nodes: one('Relu'), dtypes: ['float32'] },
  Elu: { nodes: () => [{ op: 'Elu', inputs: ['x'], outputs: ['y'], attrs: { alpha: float(1) } }], dtypes: ['float32'] },
  // the cpu kernel multiplies by a broadcast -1
  Neg: { nodes: one('Neg'), dtypes: ['float32', 'int32'], min: MIN_BROADCAST },
  Abs: { nodes: one('Abs'), dtypes: ['float32', 'int32'] },
  Square: { nodes: () => [{ op: 'Mul', inputs: ['x', 'x'], outputs: ['y'] }], dtypes: ['float32'] },
  Softplus: { nodes: one('Softplus'), dtypes: ['float32'], min: MIN_TRANSCENDENTAL },
  Step: {
    // tfjs: x > 0 ? 1 : alpha (NaN stays NaN)
    nodes: (a) => [
      ...constants({ zero: 0, one: 1, alpha: Number(a.alpha ?? 0) }),
      { op: 'Greater', inputs: ['x', 'zero'], outputs: ['pos'] },
      { op: 'Where', inputs: ['pos', 'one', 'alpha'], outputs: ['w'] },
      { op: 'IsNaN', inputs: ['x'], outputs: ['nan'] },
      { op: 'Where', inputs: ['nan', 'x', 'w'], outputs: ['y'] },
    ],
    attrKey: (a) => String(a.alpha ?? 0),
    dtypes: ['float32'],
  },
};

/** Constant nodes (scalars) named after the keys of `values`. */
function constants(values: Record<string, number>): NodeSpec[] {
  return Object.entries(values).map(([name, v]) => ({ op: 'Constant', inputs: [], outputs: [name], attrs: { value_float: float(v) } }));
}

function unaryKernel(name: string, spec: UnarySpec): OnnxKernel {
  return {
    name,
    run: (args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (!isNum(x.dtype) || !spec.dtypes.includes(x.dtype)) return null;
      const n = sizeOf(x.shape);
      if (n < (spec.min ?? MIN_ELEMENTWISE)) return null;
      const attrs = args.attrs ?? {};
      const dtype = x.dtype;
      const key = `${name}|${dtype}|${n}|${spec.attrKey ? spec.attrKey(attrs) : ''}`;
      const build = (): GraphSpec => ({
        nodes: spec.nodes(attrs),
        inputs: [{ name: 'x', dtype, dims: [n] }],
        outputs: [{ name: 'y', dtype, dims: [n] }],
      });
      return runToTensor(args.backend, key, build, [valuesOf(args.backend, x)], [...x.shape], dtype);
    },
  };
}

type BinarySpec = { nodes: () => NodeSpec[]; dtypes: readonly NumDtype[] };
const bin = (op: string, dtypes: readonly NumDtype[] = ['float32', 'int32']): BinarySpec => ({
  nodes: () => [{ op, inputs: ['a', 'b'], outputs: ['y'] }],
  dtypes,
});

const BINARY: Record<string, BinarySpec> = {
  Add: bin('Add'),
  Sub: bin('Sub'),
  Multiply: bin('Mul'),
  RealDiv: bin('Div', ['float32']),
  Pow: bin('Pow', ['float32']),
  SquaredDifference: {
    nodes: () => [
      { op: 'Sub', inputs: ['a', 'b'], outputs: ['d'] },
      { op: 'Mul', inputs: ['d', 'd'], outputs: ['y'] },
    ],
    dtypes: ['float32'],
  },
};

/**
 * The broadcast of a and b with their shapes reduced to the essentials: each output dim is tagged by
 * which of the inputs spans it (bit 0: a, bit 1: b), runs of equal tags merge, size-1 dims go.
 */
export function broadcastPlan(aShape: readonly number[], bShape: readonly number[]): { out: number[]; aDims: number[]; bDims: number[] } | null {
  let out: number[];
  try {
    out = tf.backend_util.assertAndGetBroadcastShape([...aShape], [...bShape]);
  } catch {
    return null;
  }
  const r = out.length;
  const flags = out.map((_, i) => {
    const da = aShape[i - (r - aShape.length)] ?? 1;
    const db = bShape[i - (r - bShape.length)] ?? 1;
    return (da !== 1 ? 1 : 0) | (db !== 1 ? 2 : 0);
  });
  const m = mergeDims(out, flags);
  return {
    out,
    aDims: m.dims.map((d, i) => (m.flags[i]! & 1 ? d : 1)),
    bDims: m.dims.map((d, i) => (m.flags[i]! & 2 ? d : 1)),
  };
}

function binaryKernel(name: string, spec: BinarySpec): OnnxKernel {
  return {
    name,
    run: (args: KernelArgs) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      if (a.dtype !== b.dtype || !isNum(a.dtype) || !spec.dtypes.includes(a.dtype)) return null;
      const p = broadcastPlan(a.shape, b.shape);
      if (!p) return null;
      const n = sizeOf(p.out);
      const same = sizeOf(a.shape) === n && sizeOf(b.shape) === n;
      if (n < (same ? MIN_ELEMENTWISE : MIN_BROADCAST)) return null;
      const dtype = a.dtype;
      const key = `${name}|${dtype}|${dimsKey(p.aDims)}|${dimsKey(p.bDims)}`;
      const outDims = p.aDims.map((d, i) => Math.max(d, p.bDims[i]!));
      const build = (): GraphSpec => ({
        nodes: spec.nodes(),
        inputs: [
          { name: 'a', dtype, dims: p.aDims },
          { name: 'b', dtype, dims: p.bDims },
        ],
        outputs: [{ name: 'y', dtype, dims: outDims }],
      });
      const backend = args.backend;
      return runToTensor(backend, key, build, [valuesOf(backend, a), valuesOf(backend, b)], p.out, dtype);
    },
  };
}

export const elementwiseKernels: OnnxKernel[] = [
  ...Object.entries(UNARY).map(([name, spec]) => unaryKernel(name, spec)),
  ...Object.entries(BINARY).map(([name, spec]) => binaryKernel(name, spec)),
];
