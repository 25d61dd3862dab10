/**
 * Reductions (Sum, Mean, Max, Min, Prod) and Softmax on ONNX Runtime. Shapes are reduced first:
 * adjacent dims that are both reduced or both kept merge and size-1 dims go, so a sum over the
 * leading axes of [B, T, D] runs as a ReduceSum over axis 0 of [B·T, D].
 */
import * as tf from '@tensorflow/tfjs';
import { int, ints, type GraphSpec, type NodeSpec } from '../graphs.js';
import { dimsKey, isNum, mergeDims, runToTensor, sizeOf, valuesOf, type KernelArgs, type NumDtype, type OnnxKernel } from './util.js';

/** Below this many input elements reductions stay on the cpu kernel. */
export const MIN_REDUCE = 4096;

interface ReduceSpec {
  op: string;
  /** The attribute holding the axes in tfjs (Max calls it reductionIndices). */
  axisAttr: string;
  dtypes: readonly NumDtype[];
}

const REDUCE: Record<string, ReduceSpec> = {
  Sum: { op: 'ReduceSum', axisAttr: 'axis', dtypes: ['float32', 'int32'] },
  Mean: { op: 'ReduceMean', axisAttr: 'axis', dtypes: ['float32'] },
  Max: { op: 'ReduceMax', axisAttr: 'reductionIndices', dtypes: ['float32', 'int32'] },
  Min: { op: 'ReduceMin', axisAttr: 'axis', dtypes: ['float32', 'int32'] },
  Prod: { op: 'ReduceProd', axisAttr: 'axis', dtypes: ['float32'] },
};

function reduceKernel(name: string, spec: ReduceSpec): OnnxKernel {
  return {
    name,
    run: (args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (!isNum(x.dtype) || !spec.dtypes.includes(x.dtype)) return null;
      const n = sizeOf(x.shape);
      if (n < MIN_REDUCE) return null;
      const attrs = args.attrs ?? {};
      const axes = tf.util.parseAxisParam(attrs[spec.axisAttr] as number | number[], x.shape);
      const keepDims = !!attrs.keepDims;
      const reduced = new Set(axes);
      const m = mergeDims(
        x.shape,
        x.shape.map((_, i) => (reduced.has(i) ? 1 : 0)),
      );
      const onnxAxes = m.flags.flatMap((f, i) => (f === 1 ? [i] : []));
      if (onnxAxes.length === 0) return null; // only size-1 dims reduced: a copy, leave it to cpu
      let outShape = tf.backend_util.computeOutAndReduceShapes(x.shape, axes)[0];
      if (keepDims) outShape = tf.backend_util.expandShapeToKeepDim(outShape, axes);
      const outDims = m.dims.filter((_, i) => m.flags[i] === 0);
      const dtype = x.dtype;
      const key = `${name}|${dtype}|${dimsKey(m.dims)}|${dimsKey(onnxAxes)}`;
      const build = (): GraphSpec => {
        const node: NodeSpec =
          spec.op === 'ReduceSum'
            ? { op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attrs: { keepdims: int(0) } }
            : { op: spec.op, inputs: ['x'], outputs: ['y'], attrs: { axes: ints(onnxAxes), keepdims: int(0) } };
        return {
          nodes: [node],
          inputs: [{ name: 'x', dtype, dims: m.dims }],
          outputs: [{ name: 'y', dtype, dims: outDims }],
          initializers: spec.op === 'ReduceSum' ? [{ name: 'axes', dtype: 'int64', dims: [onnxAxes.length], values: onnxAxes }] : [],
        };
      };
      return runToTensor(args.backend, key, build, [valuesOf(args.backend, x)], outShape, dtype);
    },
  };
}

function softmax(args: KernelArgs): tf.TensorInfo | null {
  const logits = args.inputs.logits as tf.TensorInfo;
  if (logits.dtype !== 'float32') return null;
  const rank = logits.shape.length;
  const dim = Number((args.attrs ?? {}).dim ?? -1);
  if (rank === 0 || (dim !== -1 && dim !== rank - 1)) return null;
  const n = sizeOf(logits.shape);
  if (n < 1024) return null;
  const cols = logits.shape[rank - 1]!;
  const rows = n / cols;
  const key = `Softmax|${rows},${cols}`;
  const build = (): GraphSpec => ({
    nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: int(1) } }],
    inputs: [{ name: 'x', dtype: 'float32', dims: [rows, cols] }],
    outputs: [{ name: 'y', dtype: 'float32', dims: [rows, cols] }],
  });
  return runToTensor(args.backend, key, build, [valuesOf(args.backend, logits)], [...logits.shape], 'float32');
}

export const reduceKernels: OnnxKernel[] = [
  ...Object.entries(REDUCE).map(([name, spec]) => reduceKernel(name, spec)),
  { name: 'Softmax', run: softmax },
];
