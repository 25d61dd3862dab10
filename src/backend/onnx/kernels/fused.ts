/**
 * maskgen's own fused kernels (src/nn/fused-kernels.ts) as one ONNX Runtime session each: GELU
 * forward (Mul, Sigmoid, Mul) and backward (seven element-wise nodes), LayerNorm forward and
 * backward (dx, dg, db in one run), so that an activation crosses from JS to ORT and back once
 * instead of once per op; and AdamW's update and the weights' moving average as WebAssembly SIMD
 * loops (simd.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import { ADAMW_KERNEL, type AdamWCoefficients, type AdamWEntry, EMA_KERNEL, GELU_GRAD_KERNEL, GELU_K, GELU_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL } from '../../../nn/fused-kernels.js';
import { allocate, compiled, runCompiled } from '../sessions.js';
import { float, int, ints, type GraphSpec, type NodeSpec } from '../graphs.js';
import { runToTensor, sizeOf, valuesOf, type KernelArgs } from './util.js';
import { exclusiveFloat32, peekFloat32, wroteInPlace } from '../backend.js';
import { adamwInto, emaInto, type AdamWNumbers } from './simd.js';

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

/** The mean of each row of [R, D], kept as [R, 1]. */
const mean1 = (i: string, o: string): NodeSpec => ({ op: 'ReduceMean', inputs: [i], outputs: [o], attrs: { axes: ints([1]), keepdims: int(1) } });

/** x̂ = (x − mean)·r with r = 1/√(var + eps), per row of [R, D]: nodes from 'x' to 'xh' (and 'r'). */
function normalizeNodes(eps: number): NodeSpec[] {
  return [
    { op: 'Constant', inputs: [], outputs: ['eps'], attrs: { value_float: float(eps) } },
    mean1('x', 'mean'),
    { op: 'Sub', inputs: ['x', 'mean'], outputs: ['d'] },
    { op: 'Mul', inputs: ['d', 'd'], outputs: ['d2'] },
    mean1('d2', 'var'),
    { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
    { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
    { op: 'Reciprocal', inputs: ['sd'], outputs: ['r'] },
    { op: 'Mul', inputs: ['d', 'r'], outputs: ['xh'] },
  ];
}

function rowsOf(x: tf.TensorInfo): [number, number] {
  const d = x.shape[x.shape.length - 1]!;
  return [sizeOf(x.shape) / d, d];
}

function layerNormForward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, g, b } = inputs as { x: tf.TensorInfo; g: tf.TensorInfo; b: tf.TensorInfo };
  const eps = Number(attrs?.eps);
  const [r, d] = rowsOf(x);
  const build = (): GraphSpec => ({
    nodes: [...normalizeNodes(eps), { op: 'Mul', inputs: ['xh', 'g'], outputs: ['xg'] }, { op: 'Add', inputs: ['xg', 'b'], outputs: ['y'] }],
    inputs: [
      { name: 'x', dtype: 'float32', dims: [r, d] },
      { name: 'g', dtype: 'float32', dims: [d] },
      { name: 'b', dtype: 'float32', dims: [d] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: [r, d] }],
  });
  return runToTensor(backend, `${LAYER_NORM_KERNEL}|${r},${d}|${eps}`, build, [valuesOf(backend, x), valuesOf(backend, g), valuesOf(backend, b)], [...x.shape], 'float32');
}

function layerNormBackward({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { dy, x, g } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; g: tf.TensorInfo };
  const eps = Number(attrs?.eps);
  const [r, d] = rowsOf(x);
  const sum0 = (i: string, o: string): NodeSpec => ({ op: 'ReduceSum', inputs: [i, 'axes0'], outputs: [o], attrs: { keepdims: int(0) } });
  // dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) with dx̂ = dy·g; dg = Σ_rows dy·x̂; db = Σ_rows dy
  const build = (): GraphSpec => ({
    nodes: [
      ...normalizeNodes(eps),
      sum0('dy', 'db'),
      { op: 'Mul', inputs: ['dy', 'xh'], outputs: ['dyxh'] },
      sum0('dyxh', 'dg'),
      { op: 'Mul', inputs: ['dy', 'g'], outputs: ['dxh'] },
      mean1('dxh', 'm1'),
      { op: 'Mul', inputs: ['dxh', 'xh'], outputs: ['dxhxh'] },
      mean1('dxhxh', 'm2'),
      { op: 'Sub', inputs: ['dxh', 'm1'], outputs: ['t1'] },
      { op: 'Mul', inputs: ['xh', 'm2'], outputs: ['t2'] },
      { op: 'Sub', inputs: ['t1', 't2'], outputs: ['t3'] },
      { op: 'Mul', inputs: ['t3', 'r'], outputs: ['dx'] },
    ],
    inputs: [
      { name: 'dy', dtype: 'float32', dims: [r, d] },
      { name: 'x', dtype: 'float32', dims: [r, d] },
      { name: 'g', dtype: 'float32', dims: [d] },
    ],
    outputs: [
      { name: 'dx', dtype: 'float32', dims: [r, d] },
      { name: 'dg', dtype: 'float32', dims: [d] },
      { name: 'db', dtype: 'float32', dims: [d] },
    ],
    initializers: [{ name: 'axes0', dtype: 'int64', dims: [1], values: [0] }],
  });
  const op = compiled(`${LAYER_NORM_GRAD_KERNEL}|${r},${d}|${eps}`, build);
  const dx = allocate('float32', r * d);
  const dg = allocate('float32', d);
  const db = allocate('float32', d);
  runCompiled(op, [valuesOf(backend, dy), valuesOf(backend, x), valuesOf(backend, g)], [dx, dg, db]);
  return [backend.makeTensorInfo([...x.shape], 'float32', dx), backend.makeTensorInfo([...g.shape], 'float32', dg), backend.makeTensorInfo([...g.shape], 'float32', db)];
}

/**
 * One AdamW update (nn/fused-kernels.ts adamwUpdate): p, m, v, g [n] and the step's nine
 * coefficients → p', m', v', copies of p, m, v updated by the SIMD loop (simd.ts). Memory-bound work
 * like this is faster outside ORT here (measured at the peer configuration, 4.8M weights in 139
 * tensors: ~35 ms a step as a JS loop against ~84 as a session), because the 1.14 binding copies
 * every output it writes once more.
 */
function adamw({ inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const { p, m, v, g, coef } = inputs as Record<'p' | 'm' | 'v' | 'g' | 'coef', tf.TensorInfo>;
  const n = sizeOf(p.shape);
  const [gs, b1, ob1, b2, ob2, step, ib2, eps, decay] = valuesOf(backend, coef) as Float32Array;
  const [pv, mv, vv, gv] = [p, m, v, g].map((t) => valuesOf(backend, t) as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const p1 = allocate('float32', n) as Float32Array;
  const m1 = allocate('float32', n) as Float32Array;
  const v1 = allocate('float32', n) as Float32Array;
  p1.set(pv);
  m1.set(mv);
  v1.set(vv);
  adamwInto(p1, m1, v1, gv, { gs: gs!, b1: b1!, ob1: ob1!, b2: b2!, ob2: ob2!, step: step!, ib2: ib2!, eps: eps!, decay: decay! });
  return [p1, m1, v1].map((o) => backend.makeTensorInfo([...p.shape], 'float32', o));
}

/**
 * AdamW over many parameters, in place (nn/fused-kernels.ts InPlaceAdamW): for each entry whose
 * p, m and v are the backend's own unshared arrays (backend.ts `exclusiveFloat32`), the loop of
 * `adamw` writing back into them. This saves, per parameter, three new tensors, three assigns and
 * the tfjs kernel call around them (measured on the refiner's denoiser, 2.5M weights in 103
 * tensors: 12 ms a step against 17–20 ms). The coefficients are rounded to float32 as `adamw`
 * receives them, so both give the same bits.
 */
export function adamwInPlace(entries: readonly AdamWEntry[], c: Omit<AdamWCoefficients, 'decay'>): boolean[] {
  const f = Math.fround;
  const common: Omit<AdamWNumbers, 'decay'> = {
    gs: f(c.gradScale),
    b1: f(c.beta1),
    ob1: f(1 - c.beta1),
    b2: f(c.beta2),
    ob2: f(1 - c.beta2),
    step: f(c.stepSize),
    ib2: f(c.invBias2),
    eps: f(c.eps),
  };
  return entries.map(({ p, m, v, g, decay }) => {
    const pv = exclusiveFloat32(p);
    const mv = exclusiveFloat32(m);
    const vv = exclusiveFloat32(v);
    if (!pv || !mv || !vv || g.dtype !== 'float32') return false;
    const gv = peekFloat32(g);
    const n = pv.length;
    if (mv.length !== n || vv.length !== n || gv.length !== n) return false;
    adamwInto(pv, mv, vv, gv, { ...common, decay: f(decay) });
    for (const t of [p, m, v]) wroteInPlace(t.dataId);
    return true;
  });
}

/** One step of a moving average (nn/fused-kernels.ts emaUpdate): a, w [n] and [d, 1 − d] → d·a + (1 − d)·w, by the SIMD loop. */
function ema({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { a, w, coef } = inputs as Record<'a' | 'w' | 'coef', tf.TensorInfo>;
  const n = sizeOf(a.shape);
  const [d, od] = valuesOf(backend, coef) as Float32Array;
  const out = allocate('float32', n) as Float32Array;
  out.set(valuesOf(backend, a) as Float32Array);
  emaInto(out, valuesOf(backend, w) as Float32Array, d!, od!);
  return backend.makeTensorInfo([...a.shape], 'float32', out);
}

/** Kernels with no cpu counterpart: registered for onnx on their own. */
export const fusedKernels: { name: string; run: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] }[] = [
  { name: GELU_KERNEL, run: geluForward },
  { name: GELU_GRAD_KERNEL, run: geluBackward },
  { name: LAYER_NORM_KERNEL, run: layerNormForward },
  { name: LAYER_NORM_GRAD_KERNEL, run: layerNormBackward },
  { name: ADAMW_KERNEL, run: adamw },
  { name: EMA_KERNEL, run: ema },
];
