/**
 * Data movement: Transpose on ONNX Runtime (the cpu kernel computes an index per element), and
 * GatherV2 / UnsortedSegmentSum as plain row copies and row sums in JS: an embedding lookup and its
 * gradient. (The cpu backend's UnsortedSegmentSum makes a masked copy of the whole input for every
 * segment, O(segments × size); a codebook of 512 turns one embedding gradient into seconds.)
 */
import * as tf from '@tensorflow/tfjs';
import { ints, type GraphSpec } from '../graphs.js';
import { dimsKey, isNum, runToTensor, sizeOf, valuesOf, type KernelArgs, type OnnxKernel } from './util.js';

export const MIN_TRANSPOSE = 1024;

/**
 * The permutation reduced to its essentials: size-1 dims dropped and runs of input dims that stay
 * adjacent and in order in the output merged. Returns the reduced input dims and permutation.
 * (Callers squeeze size-1 dims out first, so that dims on either side of one count as adjacent.)
 */
export function reducePermutation(shape: readonly number[], perm: readonly number[]): { dims: number[]; perm: number[] } {
  const kept = perm.filter((p) => shape[p] !== 1);
  // groups of consecutive input dims, in output order
  const groups: number[][] = [];
  for (const p of kept) {
    const last = groups[groups.length - 1];
    if (last && last[last.length - 1]! + 1 === p) last.push(p);
    else groups.push([p]);
  }
  const order = [...groups].sort((a, b) => a[0]! - b[0]!);
  const dims = order.map((g) => g.reduce((n, p) => n * shape[p]!, 1));
  const index = new Map(order.map((g, i) => [g, i] as const));
  return { dims, perm: groups.map((g) => index.get(g)!) };
}

function transpose(args: KernelArgs): tf.TensorInfo | null {
  const x = args.inputs.x as tf.TensorInfo;
  if (!isNum(x.dtype)) return null;
  const n = sizeOf(x.shape);
  if (n < MIN_TRANSPOSE) return null;
  const perm = (args.attrs ?? {}).perm as number[];
  const outShape = perm.map((p) => x.shape[p]!);
  // size-1 dims are not "between" anything: renumber the input without them first
  const squeezedIndex: number[] = [];
  let k = 0;
  for (let i = 0; i < x.shape.length; i++) squeezedIndex.push(x.shape[i] === 1 ? -1 : k++);
  const sShape = x.shape.filter((d) => d !== 1);
  const sPerm = perm.filter((p) => x.shape[p] !== 1).map((p) => squeezedIndex[p]!);
  const r = reducePermutation(sShape, sPerm);
  const dtype = x.dtype;
  const backend = args.backend;
  if (r.perm.every((p, i) => p === i)) {
    // only size-1 dims move: the data is unchanged
    return backend.makeTensorInfo(outShape, dtype, valuesOf(backend, x).slice());
  }
  const key = `Transpose|${dtype}|${dimsKey(r.dims)}|${dimsKey(r.perm)}`;
  const build = (): GraphSpec => ({
    nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['y'], attrs: { perm: ints(r.perm) } }],
    inputs: [{ name: 'x', dtype, dims: r.dims }],
    outputs: [{ name: 'y', dtype, dims: r.perm.map((p) => r.dims[p]!) }],
  });
  return runToTensor(backend, key, build, [valuesOf(backend, x)], outShape, dtype);
}

function gatherV2(args: KernelArgs): tf.TensorInfo | null {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  if (!isNum(x.dtype) || !isNum(indices.dtype)) return null;
  if (Number(attrs.batchDims ?? 0) !== 0) return null;
  const backend = args.backend;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
  const dimSize = x.shape[axis]!;
  const idx = valuesOf(backend, indices);
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]!;
    if (!(v >= 0 && v <= dimSize - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dimSize - 1}]`);
  }
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const xv = valuesOf(backend, x);
  const out = x.dtype === 'int32' ? new Int32Array(sizeOf(outShape)) : new Float32Array(sizeOf(outShape));
  const m = idx.length;
  for (let o = 0; o < outer; o++) {
    const src = o * dimSize * inner;
    const dst = o * m * inner;
    for (let j = 0; j < m; j++) {
      const from = src + idx[j]! * inner;
      const to = dst + j * inner;
      if (inner >= 16) out.set(xv.subarray(from, from + inner), to);
      else for (let t = 0; t < inner; t++) out[to + t] = xv[from + t]!;
    }
  }
  return backend.makeTensorInfo(outShape, x.dtype, out);
}

function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo | null {
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = Number((args.attrs ?? {}).numSegments);
  if (!isNum(x.dtype) || !isNum(segmentIds.dtype)) return null;
  const k = segmentIds.shape.length;
  if (k > x.shape.length || segmentIds.shape.some((d, i) => d !== x.shape[i])) return null;
  const backend = args.backend;
  const ids = valuesOf(backend, segmentIds);
  const xv = valuesOf(backend, x);
  const inner = sizeOf(x.shape.slice(k));
  const acc = new Float64Array(numSegments * inner);
  for (let r = 0; r < ids.length; r++) {
    const s = ids[r]!;
    if (!(s >= 0 && s < numSegments)) continue;
    const to = s * inner;
    const from = r * inner;
    for (let t = 0; t < inner; t++) acc[to + t]! += xv[from + t]!;
  }
  const out = x.dtype === 'int32' ? Int32Array.from(acc) : Float32Array.from(acc);
  return backend.makeTensorInfo([numSegments, ...x.shape.slice(k)], x.dtype, out);
}

export const layoutKernels: OnnxKernel[] = [
  { name: 'Transpose', run: transpose },
  { name: 'GatherV2', run: gatherV2 },
  { name: 'UnsortedSegmentSum', run: unsortedSegmentSum },
];
