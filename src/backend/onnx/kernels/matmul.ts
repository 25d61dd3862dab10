/**
 * BatchMatMul and _FusedMatMul on ONNX Runtime, every transpose flag without an explicit transpose:
 * - no batch on b (rank-2 b, or b's batch dims all 1) and a not transposed: a's batch folds into its
 *   rows, one Gemm [B·M, K] × [K, N] (b transposed through Gemm's transB);
 * - both without batch: one Gemm with transA / transB;
 * - otherwise a batched MatMul, or com.microsoft FusedMatMul when a flag is set (numpy broadcasting
 *   of the batch dims, as tfjs does).
 * _FusedMatMul adds the bias (as Gemm's C when it is a row vector) and the activation in the same graph.
 *
 * These per-shape sessions run on the calling thread. With more than one thread configured, products
 * of some size go instead to the one threaded session of engine.ts (see there for why only one).
 */
import * as tf from '@tensorflow/tfjs';
import { MS_DOMAIN, float, int, type GraphSpec, type NodeSpec, type InitializerSpec, type ValueSpec } from '../graphs.js';
import { engineMatMul } from '../engine.js';
import { allocate, sessionConfig } from '../sessions.js';
import { dimsKey, runToTensor, sizeOf, valuesOf, type Backend, type KernelArgs, type OnnxKernel, type Values } from './util.js';

interface Plan {
  key: string;
  transA: boolean;
  transB: boolean;
  /** Multiply-adds × 2. */
  flops: number;
  nodes: NodeSpec[];
  aDims: number[];
  bDims: number[];
  /** Shape the product node writes. */
  prodDims: number[];
  outShape: number[];
}

function plan(aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean): Plan | null {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return null;
  const m = transA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const k = transA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const kb = transB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const n = transB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (k !== kb) return null;
  const batchA = aShape.slice(0, -2);
  const batchB = bShape.slice(0, -2);
  let outBatch: number[];
  try {
    outBatch = tf.backend_util.assertAndGetBroadcastShape(batchA, batchB);
  } catch {
    return null;
  }
  const outShape = [...outBatch, m, n];
  if (m === 0 || n === 0 || k === 0 || sizeOf(outShape) === 0) return null;
  const sa = sizeOf(batchA);
  const sb = sizeOf(batchB);
  const flags = `${transA ? 1 : 0}${transB ? 1 : 0}`;
  const common = { transA, transB, flops: 2 * sizeOf(outShape) * k, outShape };
  if (sb === 1 && (!transA || sa === 1)) {
    const aDims = transA ? [k, m] : [sa * m, k];
    const bDims = transB ? [n, k] : [k, n];
    const attrs = { ...(transA ? { transA: int(1) } : {}), ...(transB ? { transB: int(1) } : {}) };
    return {
      ...common,
      key: `${flags}|${dimsKey(aDims)}|${dimsKey(bDims)}`,
      nodes: [{ op: 'Gemm', inputs: ['a', 'b'], outputs: ['prod'], attrs }],
      aDims,
      bDims,
      prodDims: [sa * m, n],
    };
  }
  let aDims: number[];
  let bDims: number[];
  let prodBatch: number[];
  if (sa === sb && batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i])) {
    // same batch: flatten it to one dim
    aDims = [sa, aShape[ra - 2]!, aShape[ra - 1]!];
    bDims = [sb, bShape[rb - 2]!, bShape[rb - 1]!];
    prodBatch = [sa];
  } else {
    // broadcast batch: same rank, ORT broadcasts like numpy (and tfjs)
    const rank = Math.max(ra, rb);
    aDims = [...new Array<number>(rank - ra).fill(1), ...aShape];
    bDims = [...new Array<number>(rank - rb).fill(1), ...bShape];
    prodBatch = outBatch;
  }
  const node: NodeSpec =
    transA || transB
      ? { op: 'FusedMatMul', domain: MS_DOMAIN, inputs: ['a', 'b'], outputs: ['prod'], attrs: { transA: int(transA ? 1 : 0), transB: int(transB ? 1 : 0), alpha: float(1) } }
      : { op: 'MatMul', inputs: ['a', 'b'], outputs: ['prod'] };
  return {
    ...common,
    key: `${flags}|${dimsKey(aDims)}|${dimsKey(bDims)}`,
    nodes: [node],
    aDims,
    bDims,
    prodDims: [...prodBatch, m, n],
  };
}

/**
 * Products this large go to the threaded engine when there are threads. Below it they run on
 * per-shape single-thread sessions: the engine's ~20 µs a call and its spinning worker don't pay for
 * a generation step's products ([128, 256]×[256, 1024] is 67 MFLOP): measured on the peer model,
 * 4 MiFLOP → 375 ms per generated image, 128 MiFLOP → 297 ms, while training (products of ≥ 268
 * MFLOP) stays at ~2,900 tokens/s either way.
 */
export const ENGINE_MIN_FLOPS = 128 * 2 ** 20;

function useEngine(p: Plan): boolean {
  return p.flops >= ENGINE_MIN_FLOPS && sessionConfig().threads > 1;
}

/** The product (+ row bias) on the threaded engine. */
function onEngine(backend: Backend, p: Plan, a: tf.TensorInfo, b: tf.TensorInfo, bias: tf.TensorInfo | undefined): tf.TensorInfo {
  const out = allocate('float32', sizeOf(p.outShape)) as Float32Array;
  const n = p.outShape[p.outShape.length - 1]!;
  const c = bias ? { data: valuesOf(backend, bias) as Float32Array, dims: [n] } : null;
  engineMatMul(valuesOf(backend, a) as Float32Array, p.aDims, valuesOf(backend, b) as Float32Array, p.bDims, p.transA, p.transB, c, out, p.prodDims);
  return backend.makeTensorInfo(p.outShape, 'float32', out);
}

function batchMatMul(args: KernelArgs): tf.TensorInfo | null {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const p = plan(a.shape, b.shape, !!transposeA, !!transposeB);
  if (!p) return null;
  if (useEngine(p)) return onEngine(args.backend, p, a, b, undefined);
  const build = (): GraphSpec => ({
    nodes: p.nodes.map((n) => ({ ...n, outputs: ['y'] })),
    inputs: [
      { name: 'a', dtype: 'float32', dims: p.aDims },
      { name: 'b', dtype: 'float32', dims: p.bDims },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: p.prodDims }],
  });
  const backend = args.backend;
  return runToTensor(backend, `MatMul|${p.key}`, build, [valuesOf(backend, a), valuesOf(backend, b)], p.outShape, 'float32');
}

type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu' | 'prelu';
const ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu']);

/** Nodes applying `activation` to `x`, writing `y`. */
export function activationNodes(
  activation: Activation,
  x: string,
  y: string,
  leakyreluAlpha: number,
  initializers: InitializerSpec[],
): NodeSpec[] {
  switch (activation) {
    case 'linear':
      return [{ op: 'Identity', inputs: [x], outputs: [y] }];
    case 'relu':
      return [{ op: 'Relu', inputs: [x], outputs: [y] }];
    case 'relu6':
      initializers.push({ name: 'clip_lo', dtype: 'float32', dims: [], values: [0] }, { name: 'clip_hi', dtype: 'float32', dims: [], values: [6] });
      return [{ op: 'Clip', inputs: [x, 'clip_lo', 'clip_hi'], outputs: [y] }];
    case 'elu':
      return [{ op: 'Elu', inputs: [x], outputs: [y], attrs: { alpha: float(1) } }];
    case 'sigmoid':
      return [{ op: 'Sigmoid', inputs: [x], outputs: [y] }];
    case 'leakyrelu':
      return [{ op: 'LeakyRelu', inputs: [x], outputs: [y], attrs: { alpha: float(leakyreluAlpha) } }];
    case 'prelu':
      return [{ op: 'PRelu', inputs: [x, 'prelu'], outputs: [y] }];
  }
}

function fusedMatMul(args: KernelArgs): tf.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string; leakyreluAlpha?: number };
  const activation = (attrs.activation ?? 'linear') as Activation;
  if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  if (!ACTIVATIONS.has(activation)) return null;
  if (bias && bias.dtype !== 'float32') return null;
  if (activation === 'prelu' && (!preluActivationWeights || preluActivationWeights.dtype !== 'float32')) return null;
  const p = plan(a.shape, b.shape, !!attrs.transposeA, !!attrs.transposeB);
  if (!p) return null;
  const n = p.outShape[p.outShape.length - 1]!;
  const alpha = attrs.leakyreluAlpha ?? 0.2;
  const biasIsRow = !!bias && sizeOf(bias.shape) === n && bias.shape.length > 0 && bias.shape[bias.shape.length - 1] === n;
  // the product's natural shape works for a row bias and the element-wise activations; anything that
  // broadcasts along other dims (a full bias, prelu weights) is applied after a reshape to outShape
  const needsOutShape = (!!bias && !biasIsRow) || activation === 'prelu';
  if (activation === 'linear' && !needsOutShape && useEngine(p)) return onEngine(args.backend, p, a, b, bias);
  const key =
    `FusedMatMul|${p.key}|${activation}${activation === 'leakyrelu' ? alpha : ''}` +
    `|${bias ? dimsKey(bias.shape) : '-'}|${activation === 'prelu' ? dimsKey(preluActivationWeights!.shape) : ''}`;
  const build = (): GraphSpec => {
    const inputs: ValueSpec[] = [
      { name: 'a', dtype: 'float32', dims: p.aDims },
      { name: 'b', dtype: 'float32', dims: p.bDims },
    ];
    const initializers: InitializerSpec[] = [];
    const nodes: NodeSpec[] = [];
    let cur = 'prod';
    const prod = p.nodes[0]!;
    if (bias && biasIsRow && prod.op === 'Gemm') {
      inputs.push({ name: 'bias', dtype: 'float32', dims: [n] });
      nodes.push({ ...prod, inputs: ['a', 'b', 'bias'] });
    } else {
      nodes.push(prod);
      if (bias) inputs.push({ name: 'bias', dtype: 'float32', dims: biasIsRow ? [n] : bias.shape });
    }
    if (needsOutShape) {
      initializers.push({ name: 'out_shape', dtype: 'int64', dims: [p.outShape.length], values: p.outShape });
      nodes.push({ op: 'Reshape', inputs: [cur, 'out_shape'], outputs: ['prod_r'] });
      cur = 'prod_r';
    }
    if (bias && !(biasIsRow && prod.op === 'Gemm')) {
      nodes.push({ op: 'Add', inputs: [cur, 'bias'], outputs: ['biased'] });
      cur = 'biased';
    }
    if (activation === 'prelu') inputs.push({ name: 'prelu', dtype: 'float32', dims: preluActivationWeights!.shape });
    nodes.push(...activationNodes(activation, cur, 'y', alpha, initializers));
    return {
      nodes,
      inputs,
      outputs: [{ name: 'y', dtype: 'float32', dims: needsOutShape ? p.outShape : p.prodDims }],
      initializers,
    };
  };
  const backend = args.backend;
  const feeds: Values[] = [valuesOf(backend, a), valuesOf(backend, b)];
  if (bias) feeds.push(valuesOf(backend, bias));
  if (activation === 'prelu') feeds.push(valuesOf(backend, preluActivationWeights!));
  return runToTensor(backend, key, build, feeds, p.outShape, 'float32');
}

export const matMulKernels: OnnxKernel[] = [
  { name: 'BatchMatMul', run: batchMatMul },
  { name: '_FusedMatMul', run: fusedMatMul },
];
