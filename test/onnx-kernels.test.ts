/**
 * Every kernel the onnx backend replaces, against the cpu backend on random inputs: forward and
 * gradient (tf.grads with a random dy), relative error < 1e-4, on the shapes and flags the
 * transformer and the ViT use. Each case also checks that the onnx kernel ran (rather than its cpu
 * fallback), through the backend's per-op call counts.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_MIN_FLOPS } from '../src/backend/onnx/kernels/matmul.js';
import { adamwUpdate, emaUpdate, layerNorm, registerInPlaceAdamW } from '../src/nn/fused-kernels.js';
import { adamwInPlace } from '../src/backend/onnx/kernels/fused.js';
import { AdamW } from '../src/nn/optim.js';
import { gelu } from '../src/nn/layers.js';
import { onnxStats, registerOnnxBackend, resetOnnxStats, setProfiling } from '../src/backend/onnx/index.js';
import { Rng } from '../src/random.js';

const TOL = 1e-4;
let previous = '';

beforeAll(async () => {
  previous = tf.getBackend();
  await registerOnnxBackend({ threads: 2 });
  setProfiling(true);
});
afterAll(async () => {
  setProfiling(false);
  if (previous) await tf.setBackend(previous);
});

type Spec = { shape: number[]; dtype?: 'float32' | 'int32'; positive?: boolean; ints?: number };
type Fn = (...xs: tf.Tensor[]) => tf.Tensor;

function data(spec: Spec, seed: number): Float32Array | Int32Array {
  const rng = new Rng(seed);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === 'int32') return Int32Array.from({ length: n }, () => rng.int(spec.ints ?? 100) - (spec.ints ? 0 : 50));
  return Float32Array.from({ length: n }, () => (spec.positive ? 0.5 + rng.next() : rng.normal()));
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    diff = Number.isNaN(d) ? (Number.isNaN(got[i]!) && Number.isNaN(want[i]!) ? diff : Infinity) : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff / (scale || 1);
}

interface Result {
  y: { shape: number[]; values: ArrayLike<number> };
  grads: { shape: number[]; values: ArrayLike<number> }[];
}

async function runOn(backend: string, fn: Fn, specs: Spec[], grad: boolean): Promise<Result> {
  await tf.setBackend(backend);
  let result: Result | undefined;
  tf.tidy(() => {
    const xs = specs.map((s, i) => tf.tensor(data(s, 17 + 31 * i), s.shape, s.dtype ?? 'float32'));
    const y = fn(...xs);
    const out: Result = { y: { shape: y.shape, values: y.dataSync().slice() }, grads: [] };
    if (grad) {
      const dy = tf.tensor(data({ shape: y.shape }, 999), y.shape);
      const floatIdx = specs.flatMap((s, i) => ((s.dtype ?? 'float32') === 'float32' ? [i] : []));
      const gs = tf.grads((...fx: tf.Tensor[]) => {
        const all = xs.slice();
        floatIdx.forEach((j, k) => (all[j] = fx[k]!));
        return fn(...all);
      })(floatIdx.map((j) => xs[j]!), dy);
      out.grads = gs.map((g) => ({ shape: g.shape, values: g.dataSync().slice() }));
    }
    result = out;
  });
  return result!;
}

/** Compares fn on onnx with cpu; `families` must have run on onnx. */
async function check(fn: Fn, specs: Spec[], opts: { grad?: boolean; families?: string[]; tol?: number } = {}): Promise<void> {
  const grad = opts.grad ?? true;
  const want = await runOn('cpu', fn, specs, grad);
  resetOnnxStats();
  const got = await runOn('onnx', fn, specs, grad);
  const ran = onnxStats().byOp;
  for (const f of opts.families ?? []) expect(ran[f]?.calls ?? 0, `${f} ran on onnx`).toBeGreaterThan(0);
  const tol = opts.tol ?? TOL;
  expect(got.y.shape).toEqual(want.y.shape);
  expect(relErr(got.y.values, want.y.values), 'forward').toBeLessThan(tol);
  expect(got.grads.length).toBe(want.grads.length);
  got.grads.forEach((g, i) => {
    expect(g.shape, `grad ${i} shape`).toEqual(want.grads[i]!.shape);
    expect(relErr(g.values, want.grads[i]!.values), `grad ${i}`).toBeLessThan(tol);
  });
}

const FLAGS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const sh = (m: number, k: number, t: boolean) => (t ? [k, m] : [m, k]);

describe('onnx backend: matMul', () => {
  for (const [ta, tb] of FLAGS) {
    it(`rank 2, transposeA=${ta} transposeB=${tb}`, async () => {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: sh(96, 64, ta) }, { shape: sh(64, 80, tb) }], { families: ['MatMul'] });
    });
    it(`rank 3 batched, transposeA=${ta} transposeB=${tb}`, async () => {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [4, ...sh(48, 32, ta)] }, { shape: [4, ...sh(32, 40, tb)] }], { families: ['MatMul'] });
    });
    it(`rank 3 × rank 2, transposeA=${ta} transposeB=${tb}`, async () => {
      // forward only: tfjs's BatchMatMul gradient returns b's gradient batched ([B, K, N] for a
      // [K, N] b) and the engine rejects it on every backend; models reshape to 2-D (tested below)
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [8, ...sh(24, 48, ta)] }, { shape: sh(48, 40, tb) }], {
        families: ['MatMul'],
        grad: false,
      });
    });
  }
  it('rank 4 attention scores and values ([B, H, T, dh])', async () => {
    await check(
      (q, k, v) => tf.matMul(tf.softmax(tf.matMul(q, k, false, true)), v),
      [{ shape: [2, 4, 64, 16] }, { shape: [2, 4, 64, 16] }, { shape: [2, 4, 64, 16] }],
      { families: ['MatMul', 'Softmax'] },
    );
  });
  it('batch dims that broadcast', async () => {
    // (tfjs's cpu kernel mishandles batches that broadcast both ways, [1, 3] against [2, 1]; its
    // gradients cannot reduce broadcast batches: forward only, one-sided broadcasts)
    for (const [ta, tb] of FLAGS) {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [1, ...sh(32, 24, ta)] }, { shape: [4, ...sh(24, 40, tb)] }], { families: ['MatMul'], grad: false });
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [2, 3, ...sh(32, 24, ta)] }, { shape: [1, 1, ...sh(24, 40, tb)] }], { families: ['MatMul'], grad: false });
    }
  });
  it('linear layer on [B, T, D] through reshapes (the model code path), with gradient', async () => {
    await check((x, w) => tf.reshape(tf.matMul(tf.reshape(x, [8 * 24, 48]), w), [8, 24, 40]), [{ shape: [8, 24, 48] }, { shape: [48, 40] }], {
      families: ['MatMul'],
    });
  });
});

describe('onnx backend: matMul on the threaded engine (products of ≥ ENGINE_MIN_FLOPS (128 MiFLOP) with 2 threads)', () => {
  for (const [ta, tb] of FLAGS) {
    it(`rank 2, rank 3 and rank-3 × rank-2, transposeA=${ta} transposeB=${tb}`, async () => {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: sh(384, 384, ta) }, { shape: sh(384, 480, tb) }], { families: ['MatMulEngine'] });
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [8, ...sh(192, 192, ta)] }, { shape: [8, ...sh(192, 240, tb)] }], { families: ['MatMulEngine'] });
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [4, ...sh(192, 384, ta)] }, { shape: sh(384, 240, tb) }], { families: ['MatMulEngine'], grad: false });
    });
  }
  it('fused with a row bias (linear), and relu (not on the engine: per-shape session)', async () => {
    await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias }), [{ shape: [384, 384] }, { shape: [384, 480] }, { shape: [480] }], {
      families: ['MatMulEngine'],
    });
    await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' }), [{ shape: [128, 128] }, { shape: [128, 160] }, { shape: [160] }], {
      families: ['FusedMatMul'],
      grad: false,
    });
  });
  it('smaller products (a generation step\'s) stay on per-shape single-thread sessions', async () => {
    expect(2 * 128 * 256 * 1024).toBeLessThan(ENGINE_MIN_FLOPS);
    await check((a, b) => tf.matMul(a, b), [{ shape: [128, 256] }, { shape: [256, 1024] }], { families: ['MatMul'], grad: false });
  });
  it('with one thread, the same products run on per-shape sessions', async () => {
    await registerOnnxBackend({ threads: 1 });
    try {
      await check((a, b) => tf.matMul(a, b, false, true), [{ shape: [384, 384] }, { shape: [480, 384] }], { families: ['MatMul'] });
      expect(onnxStats().byOp.MatMulEngine).toBeUndefined();
    } finally {
      await registerOnnxBackend({ threads: 2 });
    }
  });
});

describe('onnx backend: fused matMul', () => {
  for (const activation of ['linear', 'relu', 'elu', 'sigmoid'] as const) {
    it(`bias + ${activation}`, async () => {
      await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation }), [{ shape: [128, 64] }, { shape: [64, 96] }, { shape: [96] }], {
        families: ['FusedMatMul'],
      });
    });
  }
  for (const [ta, tb] of FLAGS) {
    it(`transposeA=${ta} transposeB=${tb}, bias`, async () => {
      await check(
        (a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, transposeA: ta, transposeB: tb }),
        [{ shape: sh(64, 48, ta) }, { shape: sh(48, 80, tb) }, { shape: [80] }],
        { families: ['FusedMatMul'] },
      );
    });
  }
  it('rank 3 × rank 2 with bias and relu, no bias, full-size bias; relu6 / leakyrelu / prelu', async () => {
    const fam = { families: ['FusedMatMul'], grad: false };
    await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' }), [{ shape: [4, 32, 48] }, { shape: [48, 64] }, { shape: [64] }], fam);
    await check((a, b) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, activation: 'elu' }), [{ shape: [96, 48] }, { shape: [48, 64] }], fam);
    await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias }), [{ shape: [96, 48] }, { shape: [48, 64] }, { shape: [96, 64] }], fam);
    await check((a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu6' }), [{ shape: [96, 48] }, { shape: [48, 64] }, { shape: [64] }], fam);
    await check((a, b) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, activation: 'leakyrelu', leakyreluAlpha: 0.1 }), [{ shape: [96, 48] }, { shape: [48, 64] }], fam);
    await check((a, b, p) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, activation: 'prelu', preluActivationWeights: p }), [{ shape: [96, 48] }, { shape: [48, 64] }, { shape: [64] }], fam);
  });
});

describe('onnx backend: conv2d', () => {
  for (const strides of [1, 2] as const) {
    for (const pad of ['same', 'valid'] as const) {
      it(`strides ${strides}, pad ${pad}: forward, input and filter gradients`, async () => {
        await check((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), [{ shape: [2, 16, 16, 8] }, { shape: [3, 3, 8, 12] }], {
          families: ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
        });
        // odd sizes: rows left over by the stride, cropping in the filter gradient
        await check((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), [{ shape: [2, 15, 13, 4] }, { shape: [3, 3, 4, 6] }], {
          families: ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
        });
      });
    }
  }
  it('ViT patch embedding (kernel = stride = 4) and a 1×1 conv', async () => {
    const fam = { families: ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'] };
    await check((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 4, 'valid'), [{ shape: [2, 32, 32, 3] }, { shape: [4, 4, 3, 32] }], fam);
    await check((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'), [{ shape: [2, 8, 8, 16] }, { shape: [1, 1, 16, 24] }], fam);
  });
  it('dilation 2 (forward) and fused conv with bias + relu', async () => {
    await check((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same', 'NHWC', 2), [{ shape: [1, 12, 12, 4] }, { shape: [3, 3, 4, 8] }], {
      families: ['Conv2D'],
      grad: false,
    });
    await check(
      (x, f, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, strides: 2, pad: 'same', bias: b, activation: 'relu' }),
      [{ shape: [2, 16, 16, 8] }, { shape: [3, 3, 8, 12] }, { shape: [12] }],
      { families: ['Conv2D'], grad: false },
    );
  });
});

describe('onnx backend: fused GELU (MaskgenGelu / MaskgenGeluGrad, one session each)', () => {
  it('matches the composite x·σ(1.702x) on cpu, forward and gradient, on [2048, 1024] and odd shapes', async () => {
    await check((x) => gelu(x), [{ shape: [256, 1024] }], { families: ['MaskgenGelu', 'MaskgenGeluGrad'] });
    await check((x) => gelu(x), [{ shape: [3, 7, 5] }], { families: ['MaskgenGelu', 'MaskgenGeluGrad'] });
    expect(tf.getKernel('MaskgenGelu', 'cpu')).toBeUndefined();
  });
  it('fused LayerNorm (MaskgenLayerNorm / MaskgenLayerNormGrad) matches the composite on cpu: y, dx, dg, db', async () => {
    const fam = { families: ['MaskgenLayerNorm', 'MaskgenLayerNormGrad'] };
    await check((x, g, b) => layerNorm(x, g, b, 1e-5), [{ shape: [512, 256] }, { shape: [256] }, { shape: [256] }], fam);
    await check((x, g, b) => layerNorm(x, g, b, 1e-6), [{ shape: [2, 5, 12] }, { shape: [12] }, { shape: [12] }], fam);
  });
});

describe('onnx backend: fused AdamW update (MaskgenAdamW, one SIMD loop for p, m, v)', () => {
  it('matches the composite update on cpu, with and without decay and gradient scaling', async () => {
    const shape = [256, 1024];
    for (const c of [
      { gradScale: 1, beta1: 0.9, beta2: 0.99, stepSize: 1e-3 / 0.1, invBias2: 1 / 0.01, eps: 1e-8, decay: 0 },
      { gradScale: 0.37, beta1: 0.9, beta2: 0.999, stepSize: 5e-4 / 0.271, invBias2: 1 / 0.003, eps: 1e-8, decay: 5e-6 },
    ]) {
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const [p, m, g] = [1, 2, 4].map((seed) => tf.tensor(data({ shape }, seed), shape));
          const v = tf.tensor(data({ shape, positive: true }, 3), shape);
          return adamwUpdate(p!, m!, v, g!, c).map((t) => t.dataSync().slice());
        });
      };
      const want = await run('cpu');
      const got = await run('onnx');
      got.forEach((values, i) => expect(relErr(values, want[i]!), ['p', 'm', 'v'][i]).toBeLessThan(1e-5));
    }
    expect(tf.getKernel('MaskgenAdamW', 'cpu')).toBeUndefined();
    expect(tf.getKernel('MaskgenAdamW', 'onnx')).toBeDefined();
  });

  it('AdamW.apply writes the weights in place once they are the backend’s own, to the same bits as new tensors', async () => {
    await tf.setBackend('onnx');
    const shapes: Record<string, number[]> = { w: [64, 96], b: [96] };
    // three steps from the same start, on onnx (in place from the second step on) and by the kernel that makes new tensors
    const run = (inPlace: boolean) => {
      const vars = Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, tf.variable(tf.tensor(data({ shape: s }, 10 + i), s))]));
      const opt = new AdamW(vars, { weightDecay: 0.1 });
      const ids: object[][] = [];
      for (let step = 0; step < 3; step++) {
        const grads = Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, tf.tensor(data({ shape: s }, 20 + 3 * step + i), s)]));
        if (!inPlace) registerInPlaceAdamW('onnx', (entries) => entries.map(() => false));
        opt.apply(grads, 1e-2, 0.7);
        registerInPlaceAdamW('onnx', adamwInPlace);
        tf.dispose(Object.values(grads));
        ids.push(Object.values(vars).map((v) => v.dataId));
      }
      const out = Object.fromEntries(Object.entries({ ...vars, ...opt.state() }).map(([k, v]) => [k, v.dataSync().slice()]));
      opt.dispose();
      tf.dispose(Object.values(vars));
      return { out, ids };
    };
    const a = run(true);
    const b = run(false);
    for (const k of Object.keys(b.out)) expect(Array.from(a.out[k]!), k).toEqual(Array.from(b.out[k]!));
    // in place: the same data ids after the first step; new tensors: new ones every step
    expect(a.ids[2]).toEqual(a.ids[1]);
    expect(b.ids[2]![0]).not.toBe(b.ids[1]![0]);
    // a weight whose values were read out is not written in place (the reader may keep them)
    const p = tf.variable(tf.zeros([300]));
    const opt = new AdamW({ p });
    const g = tf.onesLike(p);
    opt.apply({ p: g }, 0.1);
    const seen = p.dataSync();
    const id = p.dataId;
    opt.apply({ p: g }, 0.1);
    expect(p.dataId).not.toBe(id);
    expect(seen[0]).toBeCloseTo(-0.1, 6);
    tf.dispose([p, g]);
    opt.dispose();
  });
});

describe('onnx backend: fused moving-average step (MaskgenEma)', () => {
  it('matches the composite d·a + (1 − d)·w on cpu', async () => {
    const shape = [300, 77];
    for (const d of [0.5, 0.999]) {
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const [a, w] = [5, 6].map((seed) => tf.tensor(data({ shape }, seed), shape));
          return emaUpdate(a!, w!, d).dataSync().slice();
        });
      };
      const want = await run('cpu');
      const got = await run('onnx');
      expect(relErr(got, want)).toBeLessThan(1e-6);
    }
    expect(tf.getKernel('MaskgenEma', 'cpu')).toBeUndefined();
    expect(tf.getKernel('MaskgenEma', 'onnx')).toBeDefined();
  });
});

describe('onnx backend: max pooling gradient (a typed-array loop instead of the cpu kernel)', () => {
  it('is registered for onnx, and matches cpu for 2×2/2 valid, 3×3/2 same and all-negative windows', async () => {
    expect(tf.getKernel('MaxPoolGrad', 'onnx')!.kernelFunc).not.toBe(tf.getKernel('MaxPoolGrad', 'cpu')!.kernelFunc);
    await check((x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 8, 8, 3] }]);
    await check((x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), [{ shape: [2, 7, 7, 3] }]);
    await check((x) => tf.maxPool(tf.sub(x, 10) as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [1, 6, 6, 2] }]);
  });
});

describe('onnx backend: element-wise', () => {
  const binaries: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, boolean?][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
    ['squaredDifference', tf.squaredDifference],
    ['pow', tf.pow, true],
  ];
  const pairs: [number[], number[]][] = [
    [[8, 32, 32], [8, 32, 32]],
    [[8, 32, 32], [32]],
    [[8, 32, 32], [8, 32, 1]],
    [[8, 1, 32], [1, 32, 32]],
    [[8, 32, 32], []],
    [[2, 8, 32, 32], [2, 1, 1, 32]],
  ];
  const family: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Multiply', div: 'RealDiv', squaredDifference: 'SquaredDifference', pow: 'Pow' };
  for (const [name, f, positive] of binaries) {
    it(`${name} with broadcasting`, async () => {
      for (const [sa, sb] of pairs) {
        // tfjs's squaredDifference gradient does not reduce over broadcast dims (fails on cpu too)
        const grad = name !== 'squaredDifference' || sa.join() === sb.join();
        await check(f, [{ shape: sa, positive: positive || name === 'div' }, { shape: sb, positive: positive || name === 'div' }], { families: [family[name]!], grad });
      }
    });
  }
  it('int32 add / mul / sub', async () => {
    for (const f of [tf.add, tf.mul, tf.sub]) {
      await check(f, [{ shape: [64, 128], dtype: 'int32' }, { shape: [128], dtype: 'int32' }], { grad: false });
    }
  });
  const unaries: [string, (x: tf.Tensor) => tf.Tensor, boolean?][] = [
    ['Exp', tf.exp],
    ['Log', tf.log, true],
    ['Sqrt', tf.sqrt, true],
    ['Rsqrt', tf.rsqrt, true],
    ['Reciprocal', tf.reciprocal, true],
    ['Sigmoid', tf.sigmoid],
    ['Tanh', tf.tanh],
    ['Erf', tf.erf],
    ['Relu', tf.relu],
    ['Elu', tf.elu],
    ['Neg', tf.neg],
    ['Abs', tf.abs],
    ['Square', tf.square],
    ['Softplus', tf.softplus],
  ];
  for (const [name, f, positive] of unaries) {
    it(`${name}`, async () => {
      await check(f, [{ shape: [16, 32, 24], positive }], { families: [name] });
    });
  }
  it('Step (the relu gradient)', async () => {
    await check((x) => tf.step(x, 0.25), [{ shape: [64, 128] }], { families: ['Step'], grad: false });
  });
  it('GELU (sigmoid and tanh forms) and LayerNorm as the model writes them', async () => {
    await check((x) => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))), [{ shape: [256, 128] }], { families: ['Sigmoid', 'Multiply'] });
    await check(
      (x) => tf.mul(0.5, tf.mul(x, tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))))),
      [{ shape: [256, 128] }],
      { families: ['Tanh', 'Pow'] },
    );
    await check(
      (x, g, b) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
      },
      [{ shape: [512, 64] }, { shape: [64] }, { shape: [64] }],
      { families: ['Mean', 'Sub', 'Square', 'Sum'] },
    );
  });
});

describe('onnx backend: reductions, softmax, transpose, gather', () => {
  it('sum / mean / max / min / prod over axes, with and without keepDims', async () => {
    const x: Spec = { shape: [8, 32, 48] };
    for (const axis of [0, 1, 2, -1, [0, 1], [1, 2], [0, 2], [0, 1, 2]]) {
      for (const keepDims of [false, true]) {
        await check((t) => tf.sum(t, axis, keepDims), [x], { families: ['Sum'] });
        await check((t) => tf.mean(t, axis, keepDims), [x], { families: ['Mean'] });
        await check((t) => tf.max(t, axis, keepDims), [x], { families: ['Max'] });
        await check((t) => tf.min(t, axis, keepDims), [x], { families: ['Min'], grad: false });
      }
    }
    await check((t) => tf.prod(t, 1), [{ shape: [64, 8, 32], positive: true }], { families: ['Prod'], grad: false });
    await check((t) => tf.sum(t, 0), [{ shape: [64, 128], dtype: 'int32' }], { families: ['Sum'], grad: false });
  });
  it('softmax and logSoftmax over the last axis', async () => {
    await check((t) => tf.softmax(t), [{ shape: [2, 4, 32, 64] }], { families: ['Softmax'] });
    await check((t) => tf.logSoftmax(t), [{ shape: [32, 512] }], { families: ['Max', 'Sum'] });
  });
  it('transpose: head split / merge, 2-D, with size-1 dims, int32', async () => {
    for (const [shape, perm] of [
      [[4, 64, 4, 16], [0, 2, 1, 3]],
      [[4, 64, 2, 4, 16], [2, 0, 3, 1, 4]],
      [[96, 80], [1, 0]],
      [[4, 1, 64, 32], [2, 1, 0, 3]],
      [[1, 64, 32], [0, 2, 1]],
    ] as [number[], number[]][]) {
      await check((t) => tf.transpose(t, perm), [{ shape }], { families: ['Transpose'] });
    }
    await check((t) => tf.transpose(t, [1, 0]), [{ shape: [64, 48], dtype: 'int32' }], { families: ['Transpose'], grad: false });
    // only a size-1 dim moves: a copy
    await check((t) => tf.transpose(t, [1, 0, 2]), [{ shape: [1, 64, 32] }], { grad: false });
  });
  it('gather (embedding lookup) and its gradient (unsortedSegmentSum)', async () => {
    await check((table, ids) => tf.gather(table, ids), [{ shape: [96, 64] }, { shape: [8, 64], dtype: 'int32', ints: 96 }]);
    await check((table, ids) => tf.gather(table, ids, 1), [{ shape: [16, 40, 3] }, { shape: [7], dtype: 'int32', ints: 40 }]);
    await check((x, ids) => tf.unsortedSegmentSum(x, ids as tf.Tensor1D, 20), [{ shape: [64, 32] }, { shape: [64], dtype: 'int32', ints: 25 }], { grad: false });
  });
  it('gather rejects indices out of range, like cpu', async () => {
    await tf.setBackend('onnx');
    const table = tf.zeros([4, 3]);
    const ids = tf.tensor1d([0, 4], 'int32');
    expect(() => tf.gather(table, ids)).toThrow(/not in \[0, 3\]/);
    tf.dispose([table, ids]);
  });
});
