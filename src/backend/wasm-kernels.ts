/**
 * Kernels registered for the `wasm` backend (@tensorflow/tfjs-backend-wasm 4.22), so that training
 * works there and runs on its fast path. See shared/PERF-NOTES.md for the measurements behind this.
 *
 * 1. Kernels the wasm backend lacks that training needs:
 *    - `UnsortedSegmentSum` (the gradient of `gather`: embeddings),
 *    - `Conv2DBackpropFilter` (the weight gradient of conv2d and conv2dTranspose): im2col of the
 *      input, then one non-transposed 2-D XNNPACK product per chunk of images,
 *    - `DepthwiseConv2dNativeBackpropInput` / `...BackpropFilter` (depthwise / separable convs),
 *    - `Einsum` (forward only: tfjs 4.22 has no Einsum gradient on any backend).
 * 2. Faster versions of kernels it has:
 *    - `BatchMatMul`: the built-in kernel uses XNNPACK only for a rank-2 product with no transpose
 *      flags and falls onto a scalar loop otherwise (10–40× slower), and every matMul gradient
 *      uses the flags. Here transpose flags become an explicit transpose, rank-3 × rank-2 (a shared
 *      B) becomes one 2-D product, and a real batch is a loop of 2-D XNNPACK products inside the
 *      one kernel.
 *    - `_FusedMatMul`: the same route, with a [N] bias and relu/relu6 fused into the XNNPACK
 *      product (the built-in's scalar path, taken with any transpose flag, also adds the wrong
 *      bias element from the second row on).
 *    - `Sum` / `Mean` over leading or middle axes: the built-in transposes the reduced axes to the
 *      end first (~15 ns an element); here the reduction runs in place over [outer, reduced, inner].
 *    - `Conv2DBackpropInput` (the input gradient of conv2d, the forward of conv2dTranspose): the
 *      built-in is a scalar loop (~4 GFLOP/s); here a conv2d with the flipped filter (stride 1) or
 *      a 2-D product and col2im (strides > 1).
 * 3. A fix: `MaxPoolGrad`, whose built-in version starts its running max at FLT_MIN and so sends
 *    the gradient of an all-negative window to the wrong pixel.
 *
 * Autograd is unchanged: gradients are registered per kernel name, not per backend. Every
 * intermediate buffer is released before a kernel returns, so `tf.memory()` does not grow.
 *
 * The kernels call the wasm backend's own kernel functions (`tf.getKernel(name, 'wasm')`), its
 * exported C entry point `BatchMatMul` on tensors registered as views into the heap (a batch
 * element, a chunk of rows), and plain loops over typed-array views of the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { DataId, DataType, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { maxPoolGradInto, type MaxPoolGradAttrs } from './max-pool-grad.js';

const BACKEND = 'wasm';

// ---------------------------------------------------------------------------------------------
// The parts of the wasm backend (BackendWasm) used here. Not a public API of tfjs-backend-wasm,
// so they are declared by hand and checked once per backend instance (`wasmBackend`).

interface HeapEntry {
  /** Id of the tensor on the C++ side. */
  id: number;
  /** Byte offset of its data in the wasm heap. */
  memoryOffset: number;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

interface WasmModuleLike {
  HEAPU8: Uint8Array;
  cwrap(ident: string, returnType: string | null, argTypes: string[]): (...args: unknown[]) => unknown;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

interface WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: DataId): HeapEntry | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
  incRef(dataId: DataId): void;
}

type MatMulFn = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number,
) => void;

/** The C entry point `BatchMatMul`, wrapped once per wasm module. */
const matMulFns = new WeakMap<object, MatMulFn>();

function wasmBackend(backend: unknown): WasmBackendLike {
  const be = backend as WasmBackendLike;
  if (
    be == null ||
    be.wasm == null ||
    typeof be.wasm.cwrap !== 'function' ||
    be.wasm.tfjs == null ||
    typeof be.wasm.tfjs.registerTensor !== 'function' ||
    typeof be.makeOutput !== 'function' ||
    typeof be.dataIdNextNumber !== 'number'
  ) {
    throw new Error('maskgen wasm kernels: the backend does not look like tfjs-backend-wasm 4.x');
  }
  return be;
}

function matMulFn(be: WasmBackendLike): MatMulFn {
  let fn = matMulFns.get(be.wasm);
  if (fn === undefined) {
    fn = be.wasm.cwrap('BatchMatMul', null, [
      'number', // a_id
      'array', // a_shape
      'number', // a_shape.length
      'number', // b_id
      'array', // b_shape
      'number', // b_shape.length
      'number', // transpose_a
      'number', // transpose_b
      'number', // out_id
    ]) as MatMulFn;
    matMulFns.set(be.wasm, fn);
  }
  return fn;
}

function entry(be: WasmBackendLike, t: TensorInfo): HeapEntry {
  const e = be.dataIdMap.get(t.dataId);
  if (e === undefined) throw new Error('maskgen wasm kernels: tensor data not found on the wasm backend');
  return e;
}

const shapeBytes = (shape: number[]): Uint8Array => new Uint8Array(new Int32Array(shape).buffer);

/**
 * out[m,n] = a[m,k] · b[k,n] on XNNPACK (the only fast path of the wasm matMul), all three given by
 * C-side tensor ids. XNNPACK caches its packed copy of `b` under b's id until that id is disposed,
 * so `b` must be an id whose data never changes (a real tensor, or a fresh view).
 */
function matMul2d(be: WasmBackendLike, aId: number, m: number, k: number, bId: number, n: number, outId: number): void {
  matMulFn(be)(aId, shapeBytes([1, m, k]), 3, bId, shapeBytes([1, k, n]), 3, 0, 0, outId);
}

/** Registers `size` elements at `byteOffset` of the heap as a C-side tensor (no copy); see dropView. */
function view(be: WasmBackendLike, byteOffset: number, size: number): number {
  const id = be.dataIdNextNumber++;
  be.wasm.tfjs.registerTensor(id, size, byteOffset);
  return id;
}

/** Unregisters a view (and the XNNPACK operators cached on it) without freeing the memory. */
function dropView(be: WasmBackendLike, id: number): void {
  be.wasm.tfjs.disposeData(id);
}

/**
 * A typed-array view of a tensor's data in the wasm heap. Take views only after the last
 * allocation of a kernel: an allocation can grow the heap and detach earlier views.
 */
function heapF32(be: WasmBackendLike, t: TensorInfo): Float32Array {
  return new Float32Array(be.wasm.HEAPU8.buffer, entry(be, t).memoryOffset, sizeOf(t.shape));
}

function heapI32(be: WasmBackendLike, t: TensorInfo): Int32Array {
  return new Int32Array(be.wasm.HEAPU8.buffer, entry(be, t).memoryOffset, sizeOf(t.shape));
}

function sizeOf(shape: number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}

function release(be: WasmBackendLike, ...ts: (TensorInfo | null | undefined)[]): void {
  for (const t of ts) if (t != null) be.disposeData(t.dataId);
}

// ---------------------------------------------------------------------------------------------
// Registry: the built-in kernels we replace are kept, so the new ones can fall back on them.

interface Store {
  /** The wasm backend's own kernels that were replaced, by kernel name. */
  originals: Map<string, KernelConfig>;
  /** The configs registered here (to recognise them on a second call). */
  ours: WeakSet<KernelConfig>;
}

const STORE_KEY = Symbol.for('maskgen.wasmKernels');

function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store | undefined>;
  let s = g[STORE_KEY];
  if (s === undefined) {
    s = { originals: new Map(), ours: new WeakSet() };
    g[STORE_KEY] = s;
  }
  return s;
}

/** The wasm backend's own kernel `name` (the built-in one, even where it was replaced here). */
function original(name: string): KernelConfig {
  const k = store().originals.get(name) ?? tf.getKernel(name, BACKEND);
  if (k === undefined) throw new Error(`maskgen wasm kernels: kernel '${name}' is not registered for wasm`);
  return k;
}

type Inputs = Record<string, TensorInfo>;

/** Runs the wasm backend's own kernel `name`. Its output belongs to the caller. */
function runOriginal(be: WasmBackendLike, name: string, inputs: Inputs, attrs: NamedAttrMap = {}): TensorInfo {
  const out = original(name).kernelFunc({ inputs, backend: be as never, attrs });
  if (Array.isArray(out)) throw new Error(`maskgen wasm kernels: kernel '${name}' returned several outputs`);
  return out;
}

/** Runs the kernel registered now for wasm under `name` (ours where we replaced it). */
function runCurrent(be: WasmBackendLike, name: string, inputs: Inputs, attrs: NamedAttrMap = {}): TensorInfo {
  const k = tf.getKernel(name, BACKEND) ?? original(name);
  const out = k.kernelFunc({ inputs, backend: be as never, attrs });
  if (Array.isArray(out)) throw new Error(`maskgen wasm kernels: kernel '${name}' returned several outputs`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul

/**
 * float32 x with its last two axes swapped, as a new contiguous tensor. The built-in Transpose
 * takes 7–17 ns an element on tall matrices (rows ≫ columns, e.g. activations [tokens, features]),
 * a blocked loop here ~1.5; on wide or small ones the built-in is as fast or faster.
 */
function transposeLast2(be: WasmBackendLike, x: TensorInfo): TensorInfo {
  const r = x.shape.length;
  const R = x.shape[r - 2];
  const C = x.shape[r - 1];
  if (R > C && x.dtype === 'float32') {
    const out = be.makeOutput([...x.shape.slice(0, -2), C, R], 'float32');
    const src = heapF32(be, x);
    const dst = heapF32(be, out);
    const B = 16;
    for (let base = 0; base < src.length; base += R * C) {
      for (let c0 = 0; c0 < C; c0 += B) {
        const c1 = Math.min(C, c0 + B);
        for (let r0 = 0; r0 < R; r0 += B) {
          const r1 = Math.min(R, r0 + B);
          for (let c = c0; c < c1; c++) {
            const d = base + c * R;
            for (let i = r0; i < r1; i++) dst[d + i] = src[base + i * C + c];
          }
        }
      }
    }
    return out;
  }
  const perm = x.shape.map((_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return runOriginal(be, 'Transpose', { x }, { perm });
}

/** For each flat index of `outShape`, the flat index of the broadcast input of shape `inShape`. */
function broadcastIndices(outShape: number[], inShape: number[]): Int32Array {
  const total = sizeOf(outShape);
  const res = new Int32Array(total);
  const rank = outShape.length;
  const off = rank - inShape.length;
  const inStrides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    inStrides[i + off] = inShape[i] === 1 ? 0 : s;
    s *= inShape[i];
  }
  const idx = new Array<number>(rank).fill(0);
  for (let f = 0; f < total; f++) {
    let v = 0;
    for (let d = 0; d < rank; d++) v += idx[d] * inStrides[d];
    res[f] = v;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return res;
}

interface MatMulDims {
  m: number;
  k: number;
  n: number;
  aBatch: number[];
  bBatch: number[];
  outBatch: number[];
}

function matMulDims(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): MatMulDims {
  const ar = a.shape.length;
  const br = b.shape.length;
  if (ar < 2 || br < 2) throw new Error(`matMul needs rank ≥ 2 inputs, got shapes [${a.shape}] and [${b.shape}]`);
  const m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const ka = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const n = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if (ka !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${ka}) and (${kb}) of Tensors with shapes ${a.shape} and ` +
        `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  return { m, k: ka, n, aBatch, bBatch, outBatch };
}

/** float32 matMul with any transpose flags and broadcast batch dims, on XNNPACK 2-D products. */
function matMulFast(be: WasmBackendLike, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo {
  const { m, k, n, aBatch, bBatch, outBatch } = matMulDims(a, b, transposeA, transposeB);
  const batch = sizeOf(outBatch);
  if (batch > 1 && m * k * n < 4096 && tf.util.arraysEqual(aBatch, bBatch)) {
    // Many tiny products: the built-in scalar loop beats ~1.5 µs of set-up per XNNPACK product
    // (it handles equal batches; it misreads broadcast ones).
    const out = runOriginal(be, 'BatchMatMul', { a, b }, { transposeA, transposeB });
    out.shape = [...outBatch, m, n];
    return out;
  }
  const out = be.makeOutput([...outBatch, m, n], 'float32');
  if (batch * m * n === 0) return out;
  if (k === 0) {
    heapF32(be, out).fill(0);
    return out;
  }
  const aC = transposeA ? transposeLast2(be, a) : a;
  const bC = transposeB ? transposeLast2(be, b) : b;
  try {
    const ae = entry(be, aC);
    const bEntry = entry(be, bC);
    const oe = entry(be, out);
    const batchA = sizeOf(aBatch);
    const batchB = sizeOf(bBatch);
    if (batchB === 1) {
      // One B for every batch: the batch of A is just more rows, [batchA·m, k] · [k, n].
      matMul2d(be, ae.id, batchA * m, k, bEntry.id, n, oe.id);
    } else {
      const ai = broadcastIndices(outBatch, aBatch);
      const bi = broadcastIndices(outBatch, bBatch);
      for (let i = 0; i < batch; i++) {
        const aId = batchA === 1 ? ae.id : view(be, ae.memoryOffset + ai[i] * m * k * 4, m * k);
        const bId = view(be, bEntry.memoryOffset + bi[i] * k * n * 4, k * n);
        const oId = view(be, oe.memoryOffset + i * m * n * 4, m * n);
        try {
          matMul2d(be, aId, m, k, bId, n, oId);
        } finally {
          if (aId !== ae.id) dropView(be, aId);
          dropView(be, bId);
          dropView(be, oId);
        }
      }
    }
  } finally {
    if (aC !== a) release(be, aC);
    if (bC !== b) release(be, bC);
  }
  return out;
}

const batchMatMulKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { a, b } = inputs as Inputs;
  const { transposeA, transposeB } = attrs as { transposeA?: boolean; transposeB?: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    return runOriginal(be, 'BatchMatMul', { a, b }, attrs as NamedAttrMap);
  }
  return matMulFast(be, a, b, !!transposeA, !!transposeB);
};

// ---------------------------------------------------------------------------------------------
// _FusedMatMul

function applyActivation(
  be: WasmBackendLike,
  x: TensorInfo,
  activation: string,
  preluWeights: TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): TensorInfo {
  let y: TensorInfo;
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      y = runOriginal(be, 'Relu', { x });
      break;
    case 'relu6':
      y = runOriginal(be, 'Relu6', { x });
      break;
    case 'elu':
      y = runOriginal(be, 'Elu', { x });
      break;
    case 'sigmoid':
      y = runOriginal(be, 'Sigmoid', { x });
      break;
    case 'leakyrelu':
      y = runOriginal(be, 'LeakyRelu', { x }, { alpha: leakyreluAlpha ?? 0.2 });
      break;
    case 'prelu':
      if (preluWeights == null) throw new Error('fused matMul: prelu activation needs preluActivationWeights');
      y = runOriginal(be, 'Prelu', { x, alpha: preluWeights });
      break;
    default:
      throw new Error(`fused matMul: activation '${activation}' is not supported`);
  }
  release(be, x);
  return y;
}

const fusedMatMulKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { a, b, bias, preluActivationWeights } = inputs as Partial<Inputs> & { a: TensorInfo; b: TensorInfo };
  const {
    transposeA = false,
    transposeB = false,
    activation = 'linear',
    leakyreluAlpha,
  } = attrs as { transposeA?: boolean; transposeB?: boolean; activation?: string; leakyreluAlpha?: number };
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    return runOriginal(be, '_FusedMatMul', inputs as Inputs, attrs as NamedAttrMap);
  }
  const { m, k, n, aBatch, bBatch, outBatch } = matMulDims(a, b, transposeA, transposeB);
  const rowBias = bias == null || (bias.shape.length === 1 && bias.shape[0] === n);
  const clampOnly = activation === 'linear' || activation === 'relu' || activation === 'relu6';
  if (sizeOf(bBatch) === 1 && rowBias && clampOnly && k > 0 && sizeOf(outBatch) * m * n > 0) {
    // One XNNPACK product with the bias and the clamp fused in, through the built-in kernel.
    const aC = transposeA ? transposeLast2(be, a) : a;
    const bC = transposeB ? transposeLast2(be, b) : b;
    try {
      const a3: TensorInfo = { dataId: aC.dataId, shape: [1, sizeOf(aBatch) * m, k], dtype: 'float32' };
      const b3: TensorInfo = { dataId: bC.dataId, shape: [1, k, n], dtype: 'float32' };
      const fusedInputs: Inputs = { a: a3, b: b3 };
      if (bias != null) fusedInputs.bias = bias;
      const out = runOriginal(be, '_FusedMatMul', fusedInputs, {
        ...(attrs as NamedAttrMap),
        transposeA: false,
        transposeB: false,
      });
      out.shape = [...outBatch, m, n];
      return out;
    } finally {
      if (aC !== a) release(be, aC);
      if (bC !== b) release(be, bC);
    }
  }
  let y = matMulFast(be, a, b, transposeA, transposeB);
  if (bias != null) {
    const z = runOriginal(be, 'Add', { a: y, b: bias });
    release(be, y);
    y = z;
  }
  return applyActivation(be, y, activation, preluActivationWeights, leakyreluAlpha);
};

// ---------------------------------------------------------------------------------------------
// Sum / Mean over leading or middle axes

/**
 * When the reduced axes (ignoring axes of size 1) are one contiguous block, x is viewed as
 * [outer, reduced, inner]; null otherwise.
 */
function reductionPlan(shape: number[], axes: number[]): { outer: number; reduced: number; inner: number } | null {
  const isAxis = new Array<boolean>(shape.length).fill(false);
  for (const a of axes) isAxis[a] = true;
  let first = -1;
  let last = -1;
  for (let i = 0; i < shape.length; i++) {
    if (isAxis[i] && shape[i] !== 1) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return null;
  for (let i = first; i <= last; i++) if (!isAxis[i] && shape[i] !== 1) return null;
  let outer = 1;
  let reduced = 1;
  let inner = 1;
  for (let i = 0; i < shape.length; i++) {
    if (isAxis[i]) reduced *= shape[i];
    else if (i < first) outer *= shape[i];
    else inner *= shape[i];
  }
  return { outer, reduced, inner };
}

function reduceOutShape(shape: number[], axes: number[], keepDims: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (!axes.includes(i)) out.push(shape[i]);
    else if (keepDims) out.push(1);
  }
  return out;
}

/**
 * Sum (scale 1) or mean (scale 1/reduced) of float32 x over axes forming one block that is not the
 * innermost one, straight over the [outer, reduced, inner] layout, accumulating in float64.
 * Returns null where the built-in kernel is as good (innermost axes) or cannot be beaten.
 */
function reduceBlock(be: WasmBackendLike, x: TensorInfo, axis: unknown, keepDims: boolean, mean: boolean): TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const plan = reductionPlan(x.shape, axes);
  if (plan === null || plan.inner === 1) return null;
  const { outer, reduced, inner } = plan;
  const out = be.makeOutput(reduceOutShape(x.shape, axes, keepDims), 'float32');
  const xs = heapF32(be, x);
  const os = heapF32(be, out);
  const acc = new Float64Array(inner);
  const scale = mean ? 1 / reduced : 1;
  for (let p = 0; p < outer; p++) {
    acc.fill(0);
    let off = p * reduced * inner;
    let r = 0;
    for (; r + 4 <= reduced; r += 4) {
      const o1 = off + inner;
      const o2 = o1 + inner;
      const o3 = o2 + inner;
      for (let c = 0; c < inner; c++) acc[c] += xs[off + c] + xs[o1 + c] + (xs[o2 + c] + xs[o3 + c]);
      off += 4 * inner;
    }
    for (; r < reduced; r++) {
      for (let c = 0; c < inner; c++) acc[c] += xs[off + c];
      off += inner;
    }
    const o = p * inner;
    for (let c = 0; c < inner; c++) os[o + c] = acc[c] * scale;
  }
  return out;
}

const sumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { x } = inputs as Inputs;
  const { axis, keepDims } = attrs as { axis: number | number[]; keepDims?: boolean };
  return reduceBlock(be, x, axis, !!keepDims, false) ?? runOriginal(be, 'Sum', { x }, attrs as NamedAttrMap);
};

const meanKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { x } = inputs as Inputs;
  const { axis, keepDims } = attrs as { axis: number | number[]; keepDims?: boolean };
  return reduceBlock(be, x, axis, !!keepDims, true) ?? runOriginal(be, 'Mean', { x }, attrs as NamedAttrMap);
};

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum (the gradient of gather)

const unsortedSegmentSumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { x, segmentIds } = inputs as Inputs;
  const { numSegments } = attrs as { numSegments: number };
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`unsortedSegmentSum on wasm supports float32 and int32, not ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') throw new Error('unsortedSegmentSum: segmentIds must be int32');
  const nIds = sizeOf(segmentIds.shape);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = sizeOf(innerShape);
  const out = be.makeOutput([numSegments, ...innerShape], x.dtype);
  const xs = x.dtype === 'float32' ? heapF32(be, x) : heapI32(be, x);
  const os = x.dtype === 'float32' ? heapF32(be, out) : heapI32(be, out);
  const ids = heapI32(be, segmentIds);
  os.fill(0);
  for (let i = 0; i < nIds; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue; // as in TensorFlow: out-of-range ids are dropped
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) os[dst + j] += xs[src + j];
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// Convolution gradients

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** NCHW → NHWC (a new tensor), or x itself when it already is NHWC. */
function toNHWC(be: WasmBackendLike, x: TensorInfo, dataFormat: string | undefined): TensorInfo {
  if (dataFormat !== 'NCHW') return x;
  return runOriginal(be, 'Transpose', { x }, { perm: [0, 2, 3, 1] });
}

/** Largest number of images whose im2col rows fit in `budget` floats (at least 1). */
function imagesPerChunk(rowsPerImage: number, rowLen: number, batch: number, budget = 1 << 22): number {
  return Math.max(1, Math.min(batch, Math.floor(budget / Math.max(1, rowsPerImage * rowLen))));
}

interface ConvGeometry {
  N: number;
  H: number;
  W: number;
  Cin: number;
  OH: number;
  OW: number;
  Cout: number;
  KH: number;
  KW: number;
  sH: number;
  sW: number;
  dH: number;
  dW: number;
  top: number;
  left: number;
}

function convGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    N: info.batchSize,
    H: info.inHeight,
    W: info.inWidth,
    Cin: info.inChannels,
    OH: info.outHeight,
    OW: info.outWidth,
    Cout: info.outChannels,
    KH: info.filterHeight,
    KW: info.filterWidth,
    sH: info.strideHeight,
    sW: info.strideWidth,
    dH: info.dilationHeight,
    dW: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/**
 * For output pixels r0 .. r0+rows-1 (counted over images, rows, columns) and filter tap (kh, kw):
 * the element offset in x (NHWC) of the input pixel that tap reads, or -1 where it reads padding.
 */
function tapOffsets(g: ConvGeometry, r0: number, rows: number, kh: number, kw: number, res: Int32Array): void {
  const per = g.OH * g.OW;
  for (let r = 0; r < rows; r++) {
    const rr = r0 + r;
    const b = Math.floor(rr / per);
    const rem = rr - b * per;
    const oh = Math.floor(rem / g.OW);
    const ow = rem - oh * g.OW;
    const ih = oh * g.sH + kh * g.dH - g.top;
    const iw = ow * g.sW + kw * g.dW - g.left;
    res[r] = ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? -1 : ((b * g.H + ih) * g.W + iw) * g.Cin;
  }
}

/**
 * dW[(kh,kw,ci), co] = Σ_r x[pixel r reads through tap (kh,kw), ci] · dy[r, co], as
 * colsT[(kh,kw,ci), r] · dy[r, co]: one non-transposed 2-D XNNPACK product per chunk of images,
 * the long output-pixel axis as the inner dimension and the filter size as the output rows
 * (XNNPACK runs that orientation ~2.5× faster than dyᵀ · cols).
 */
const conv2DBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { x: x0, dy: dy0 } = inputs as Inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: RoundingMode;
    filterShape: [number, number, number, number];
  };
  if (x0.dtype !== 'float32' || dy0.dtype !== 'float32') throw new Error('conv2d filter gradient on wasm needs float32');
  const x = toNHWC(be, x0, dataFormat);
  const dy = toNHWC(be, dy0, dataFormat);
  const temps: TensorInfo[] = [];
  try {
    const g = convGeometry(
      tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        'channelsLast',
      ),
    );
    const K = g.KH * g.KW * g.Cin;
    const rowsPerImage = g.OH * g.OW;
    const out = be.makeOutput([g.KH, g.KW, g.Cin, g.Cout], 'float32');
    if (K * g.Cout === 0) return out;
    if (g.N * rowsPerImage === 0) {
      heapF32(be, out).fill(0);
      return out;
    }
    const chunk = imagesPerChunk(rowsPerImage, K, g.N);
    const maxRows = chunk * rowsPerImage;
    const colsT = be.makeOutput([K, maxRows], 'float32');
    temps.push(colsT);
    const part = g.N > chunk ? be.makeOutput([K, g.Cout], 'float32') : null;
    if (part) temps.push(part);
    const colsE = entry(be, colsT);
    const dyE = entry(be, dy);
    const offs = new Int32Array(maxRows);
    const RB = 64;
    for (let n0 = 0; n0 < g.N; n0 += chunk) {
      const rows = Math.min(chunk, g.N - n0) * rowsPerImage;
      const r0 = n0 * rowsPerImage;
      // Views are taken after every allocation above; nothing below allocates on the heap.
      const xs = heapF32(be, x);
      const cs = heapF32(be, colsT);
      for (let kh = 0; kh < g.KH; kh++) {
        for (let kw = 0; kw < g.KW; kw++) {
          tapOffsets(g, r0, rows, kh, kw, offs);
          const rowBase = (kh * g.KW + kw) * g.Cin;
          // Blocks of RB pixels keep their source channels in cache while the rows are written.
          for (let b0 = 0; b0 < rows; b0 += RB) {
            const b1 = Math.min(rows, b0 + RB);
            for (let ci = 0; ci < g.Cin; ci++) {
              const base = (rowBase + ci) * rows;
              for (let r = b0; r < b1; r++) {
                const o = offs[r];
                cs[base + r] = o < 0 ? 0 : xs[o + ci];
              }
            }
          }
        }
      }
      const target = n0 === 0 ? out : (part as TensorInfo);
      // Fresh views: XNNPACK caches its packed B under the id, and colsT is rewritten per chunk.
      const aId = view(be, colsE.memoryOffset, K * rows);
      const bId = view(be, dyE.memoryOffset + r0 * g.Cout * 4, rows * g.Cout);
      try {
        matMul2d(be, aId, K, rows, bId, g.Cout, entry(be, target).id);
      } finally {
        dropView(be, aId);
        dropView(be, bId);
      }
      if (n0 > 0) {
        const os = heapF32(be, out);
        const ps = heapF32(be, part as TensorInfo);
        for (let i = 0; i < os.length; i++) os[i] += ps[i];
      }
    }
    return out;
  } finally {
    release(be, ...temps);
    if (x !== x0) release(be, x);
    if (dy !== dy0) release(be, dy);
  }
};

/**
 * dx of conv2d (also the forward pass of conv2dTranspose). The built-in kernel is a scalar loop
 * (~4 GFLOP/s). Stride 1: a forward conv2d of dy with the spatially flipped, in/out-swapped filter
 * (XNNPACK). Otherwise: cols[r, (kh,kw,ci)] = dy[r, co] · W[(kh,kw,ci), co]ᵀ as one 2-D product per
 * chunk of images, then each column added back to the input pixel it came from (col2im).
 */
const conv2DBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { dy, filter } = inputs as Inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: RoundingMode;
    inputShape: [number, number, number, number];
  };
  if (dataFormat === 'NCHW' || dy.dtype !== 'float32' || filter.dtype !== 'float32') {
    return runOriginal(be, 'Conv2DBackpropInput', { dy, filter }, attrs as NamedAttrMap);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const g = convGeometry(info);
  const K = g.KH * g.KW * g.Cin;
  const temps: TensorInfo[] = [];
  try {
    // W[(kh,kw,ci), co] as Wt[co, (kh,kw,ci)] (stride > 1), or flipped and swapped (stride 1)
    const bottom = info.padInfo.bottom;
    const right = info.padInfo.right;
    const flipPads = [g.KH - 1 - g.top, g.KH - 1 - bottom, g.KW - 1 - g.left, g.KW - 1 - right];
    if (g.sH === 1 && g.sW === 1 && flipPads.every((p) => p >= 0)) {
      const wf = be.makeOutput([g.KH, g.KW, g.Cout, g.Cin], 'float32');
      temps.push(wf);
      const ws = heapF32(be, filter);
      const fs = heapF32(be, wf);
      for (let kh = 0; kh < g.KH; kh++) {
        for (let kw = 0; kw < g.KW; kw++) {
          const src = ((g.KH - 1 - kh) * g.KW + (g.KW - 1 - kw)) * g.Cin * g.Cout;
          const dst = (kh * g.KW + kw) * g.Cout * g.Cin;
          for (let ci = 0; ci < g.Cin; ci++) {
            for (let co = 0; co < g.Cout; co++) fs[dst + co * g.Cin + ci] = ws[src + ci * g.Cout + co];
          }
        }
      }
      const out = runOriginal(
        be,
        'Conv2D',
        { x: dy, filter: wf },
        {
          strides: 1,
          pad: [
            [0, 0],
            [flipPads[0], flipPads[1]],
            [flipPads[2], flipPads[3]],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: 1,
        } as unknown as NamedAttrMap,
      );
      if (!tf.util.arraysEqual(out.shape, inputShape)) {
        release(be, out);
        throw new Error(`conv2d input gradient: got shape [${out.shape}], expected [${inputShape}]`);
      }
      return out;
    }
    const out = be.makeOutput(inputShape, 'float32');
    const rowsPerImage = g.OH * g.OW;
    if (K * g.N * rowsPerImage === 0 || g.Cout === 0) {
      heapF32(be, out).fill(0);
      return out;
    }
    const wt = be.makeOutput([g.Cout, K], 'float32');
    temps.push(wt);
    const chunk = imagesPerChunk(rowsPerImage, K, g.N);
    const maxRows = chunk * rowsPerImage;
    const cols = be.makeOutput([maxRows, K], 'float32');
    temps.push(cols);
    {
      const ws = heapF32(be, filter);
      const ts = heapF32(be, wt);
      for (let k = 0; k < K; k++) for (let co = 0; co < g.Cout; co++) ts[co * K + k] = ws[k * g.Cout + co];
    }
    const dyE = entry(be, dy);
    const colsE = entry(be, cols);
    const wtE = entry(be, wt);
    heapF32(be, out).fill(0);
    const offs = new Int32Array(g.KH * g.KW * maxRows);
    for (let n0 = 0; n0 < g.N; n0 += chunk) {
      const rows = Math.min(chunk, g.N - n0) * rowsPerImage;
      const r0 = n0 * rowsPerImage;
      const aId = view(be, dyE.memoryOffset + r0 * g.Cout * 4, rows * g.Cout);
      const oId = view(be, colsE.memoryOffset, rows * K);
      try {
        matMul2d(be, aId, rows, g.Cout, wtE.id, K, oId);
      } finally {
        dropView(be, aId);
        dropView(be, oId);
      }
      for (let kk = 0; kk < g.KH * g.KW; kk++) {
        tapOffsets(g, r0, rows, Math.floor(kk / g.KW), kk % g.KW, offs.subarray(kk * maxRows, kk * maxRows + rows));
      }
      const cs = heapF32(be, cols);
      const dx = heapF32(be, out);
      const Cin = g.Cin;
      const KK = g.KH * g.KW;
      for (let r = 0; r < rows; r++) {
        let src = r * K;
        for (let kk = 0; kk < KK; kk++, src += Cin) {
          const o = offs[kk * maxRows + r];
          if (o < 0) continue;
          for (let ci = 0; ci < Cin; ci++) dx[o + ci] += cs[src + ci];
        }
      }
    }
    return out;
  } finally {
    release(be, ...temps);
  }
};

interface DepthwiseAttrs {
  strides: number | [number, number];
  pad: Pad;
  dimRoundingMode?: RoundingMode;
  dilations?: number | [number, number];
}

function depthwiseInfo(
  xShape: number[],
  filterShape: number[],
  a: DepthwiseAttrs,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
    'channelsLast',
  );
}

/** dx of a depthwise conv2d: dx[b,ih,iw,c] = Σ dy[b,oh,ow,c·mult+q] · w[kh,kw,c,q]. */
const depthwiseBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { dy, filter } = inputs as Inputs;
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const info = depthwiseInfo(a.inputShape, filter.shape, a);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const mult = CO / C;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = be.makeOutput([N, H, W, C], 'float32');
  const dys = heapF32(be, dy);
  const ws = heapF32(be, filter);
  const dx = heapF32(be, out);
  dx.fill(0);
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((b * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const dxOff = ((b * H + ih) * W + iw) * C;
            const wOff = (kh * KW + kw) * CO;
            for (let c = 0; c < C; c++) {
              let s = 0;
              for (let q = 0; q < mult; q++) s += dys[dyOff + c * mult + q] * ws[wOff + c * mult + q];
              dx[dxOff + c] += s;
            }
          }
        }
      }
    }
  }
  return out;
};

/** dw of a depthwise conv2d: dw[kh,kw,c,q] = Σ x[b,ih,iw,c] · dy[b,oh,ow,c·mult+q]. */
const depthwiseBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { x, dy } = inputs as Inputs;
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const info = depthwiseInfo(x.shape, a.filterShape, a);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const mult = CO / C;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = be.makeOutput(a.filterShape, 'float32');
  const xs = heapF32(be, x);
  const dys = heapF32(be, dy);
  const dw = heapF32(be, out);
  const acc = new Float64Array(KH * KW * CO);
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((b * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((b * H + ih) * W + iw) * C;
            const wOff = (kh * KW + kw) * CO;
            for (let c = 0; c < C; c++) {
              const xv = xs[xOff + c];
              for (let q = 0; q < mult; q++) acc[wOff + c * mult + q] += xv * dys[dyOff + c * mult + q];
            }
          }
        }
      }
    }
  }
  dw.set(acc);
  return out;
};

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad, which the wasm backend gets wrong

/**
 * The built-in MaxPoolGrad starts its running max at FLT_MIN (the smallest positive float), so a
 * window whose values are all negative sends its gradient to the wrong pixel. Here: the first
 * maximum of each window (as on the cpu backend) gets dy.
 */
const maxPoolGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { dy, input } = inputs as Inputs;
  const out = be.makeOutput(input.shape, 'float32');
  const dx = heapF32(be, out);
  dx.fill(0);
  maxPoolGradInto(heapF32(be, input), heapF32(be, dy), dx, input.shape, attrs as unknown as MaxPoolGradAttrs);
  return out;
};

// ---------------------------------------------------------------------------------------------
// Einsum (forward): transpose and broadcast each operand to the full index space, multiply,
// and sum out contracted indices as soon as they are no longer needed (as tfjs-backend-cpu does).

const einsumKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const be = wasmBackend(backend);
  const { equation } = attrs as { equation: string };
  const tensors = Object.keys(inputs)
    .sort((p, q) => Number(p) - Number(q))
    .map((key) => (inputs as Inputs)[key]);
  const bu = tf.backend_util;
  const { allDims, summedDims, idDims } = bu.decodeEinsumEquation(equation, tensors.length);
  bu.checkEinsumDimSizes(allDims.length, idDims, tensors as unknown as tf.Tensor[]);
  const { path, steps } = bu.getEinsumComputePath(summedDims, idDims);
  let out: TensorInfo | null = null;
  let numDimsRemaining = allDims.length;
  // Intermediate results, by data id; reshaped aliases share the id of what they alias.
  const owned = new Map<DataId, TensorInfo>();
  const own = (t: TensorInfo): TensorInfo => {
    owned.set(t.dataId, t);
    return t;
  };
  const free = (t: TensorInfo): void => {
    const o = owned.get(t.dataId);
    if (o !== undefined) {
      owned.delete(t.dataId);
      release(be, o);
    }
  };
  try {
    for (let i = 0; i < steps.length; i++) {
      for (const idTerm of steps[i]) {
        const { permutationIndices: perm, expandDims } = bu.getEinsumPermutation(numDimsRemaining, idDims[idTerm]);
        let x = tensors[idTerm];
        if (!bu.isIdentityPermutation(perm)) {
          const t = runOriginal(be, 'Transpose', { x }, { perm });
          if (t.dataId === x.dataId) {
            // a no-op transpose (only axes of size 1 move): the kernel returned x with a new shape
            release(be, t);
            x = { dataId: x.dataId, shape: t.shape, dtype: x.dtype };
          } else {
            x = own(t);
          }
        }
        const target = x.shape.slice();
        for (const d of expandDims) target.splice(d, 0, 1);
        if (!tf.util.arraysEqual(x.shape, target)) x = { dataId: x.dataId, shape: target, dtype: x.dtype };
        if (out === null) {
          out = x;
        } else {
          const prod = own(runOriginal(be, 'Multiply', { a: x, b: out }));
          free(x);
          free(out);
          out = prod;
        }
      }
      if (i < steps.length - 1) {
        if (path[i] >= 0 && out !== null) {
          const axis = path[i] - (allDims.length - numDimsRemaining);
          const s = own(runCurrent(be, 'Sum', { x: out }, { axis, keepDims: false }));
          free(out);
          out = s;
        }
        numDimsRemaining--;
      }
    }
    if (out === null) throw new Error(`einsum: nothing to compute in '${equation}'`);
    const mine = owned.get(out.dataId);
    if (mine !== undefined) {
      owned.delete(out.dataId);
      return { dataId: mine.dataId, shape: out.shape, dtype: out.dtype };
    }
    // The result is (a reshape of) an input: hand back a copy of its own.
    const copy = runOriginal(be, 'Identity', { x: out });
    copy.shape = out.shape;
    return copy;
  } finally {
    for (const t of owned.values()) release(be, t);
  }
};

// ---------------------------------------------------------------------------------------------

interface OurKernel {
  name: string;
  kernelFunc: KernelFunc;
}

const KERNELS: OurKernel[] = [
  { name: 'BatchMatMul', kernelFunc: batchMatMulKernel },
  { name: '_FusedMatMul', kernelFunc: fusedMatMulKernel },
  { name: 'Sum', kernelFunc: sumKernel },
  { name: 'Mean', kernelFunc: meanKernel },
  { name: 'UnsortedSegmentSum', kernelFunc: unsortedSegmentSumKernel },
  { name: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilterKernel },
  { name: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInputKernel },
  { name: 'DepthwiseConv2dNativeBackpropInput', kernelFunc: depthwiseBackpropInputKernel },
  { name: 'DepthwiseConv2dNativeBackpropFilter', kernelFunc: depthwiseBackpropFilterKernel },
  { name: 'MaxPoolGrad', kernelFunc: maxPoolGradKernel },
  { name: 'Einsum', kernelFunc: einsumKernel },
];

/** Names of the kernels registered for wasm by registerWasmKernels. */
export const WASM_KERNEL_NAMES: readonly string[] = KERNELS.map((k) => k.name);

/**
 * Registers the kernels above for the 'wasm' backend, replacing the built-in ones where they
 * exist. Call it after importing '@tensorflow/tfjs-backend-wasm' (before or after
 * `tf.setBackend('wasm')`); calling it again does nothing.
 */
export function registerWasmKernels(): void {
  if (tf.getKernel('Transpose', BACKEND) === undefined) {
    throw new Error("registerWasmKernels: import '@tensorflow/tfjs-backend-wasm' first");
  }
  const s = store();
  for (const { name, kernelFunc } of KERNELS) {
    const current = tf.getKernel(name, BACKEND);
    if (current !== undefined && s.ours.has(current)) continue;
    if (current !== undefined) {
      s.originals.set(name, current);
      tf.unregisterKernel(name, BACKEND);
    }
    const config: KernelConfig = { kernelName: name, backendName: BACKEND, kernelFunc };
    // The built-in kernel binds its C function in its setup; keep that, since ours may call it.
    if (current?.setupFunc !== undefined) config.setupFunc = current.setupFunc;
    if (current?.disposeFunc !== undefined) config.disposeFunc = current.disposeFunc;
    s.ours.add(config);
    tf.registerKernel(config);
  }
}
