/**
 * The kernels registerWasmKernels() adds to or replaces on the wasm backend, against the cpu backend
 * (or a float64 reference where the cpu backend is itself wrong) on random inputs: forward and
 * gradients (tf.grads with a random dy), relative error < 1e-4 (max |difference| / max |reference|).
 * Then whole small layers of the model families (transformer, ViT patchify, conv discriminator,
 * UNet) forward and backward, and a check that forward + backward passes leave no tensor behind.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmKernels, WASM_KERNEL_NAMES } from '../src/backend/wasm-kernels.js';
import { Rng } from '../src/random.js';

const TOL = 1e-4;
let previous = '';

beforeAll(async () => {
  previous = tf.getBackend();
  registerWasmKernels();
  await tf.setBackend('wasm');
  await tf.ready();
});
afterAll(async () => {
  if (previous) await tf.setBackend(previous);
});

type Spec = { shape: number[]; dtype?: 'float32' | 'int32'; ints?: number[]; shift?: number };
type Fn = (...xs: tf.Tensor[]) => tf.Tensor;
type Values = { shape: number[]; values: Float32Array | Int32Array | Uint8Array };

function data(spec: Spec, seed: number): Float32Array | Int32Array {
  if (spec.ints) return Int32Array.from(spec.ints);
  const rng = new Rng(seed);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng.normal() + (spec.shift ?? 0));
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff / (scale || 1);
}

/**
 * y = fn(...inputs) and, unless `wrt` is empty, the gradients of Σ y·dy with respect to the inputs
 * listed in `wrt` (default: every float32 input).
 */
async function runOn(backend: string, fn: Fn, specs: Spec[], wrt?: number[]): Promise<{ y: Values; grads: Values[] }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = specs.map((s, i) => tf.tensor(data(s, 17 + 31 * i), s.shape, s.dtype ?? 'float32'));
    const y = fn(...xs);
    const out = { y: { shape: y.shape, values: y.dataSync().slice() }, grads: [] as Values[] };
    const idx = wrt ?? specs.flatMap((s, i) => ((s.dtype ?? 'float32') === 'float32' ? [i] : []));
    if (idx.length > 0) {
      const dy = tf.tensor(data({ shape: y.shape }, 999), y.shape);
      const gs = tf.grads((...fx: tf.Tensor[]) => {
        const all = xs.slice();
        idx.forEach((j, k) => (all[j] = fx[k]!));
        return fn(...all);
      })(
        idx.map((j) => xs[j]!),
        dy,
      );
      out.grads = gs.map((g) => ({ shape: g.shape, values: g.dataSync().slice() }));
    }
    return out;
  });
}

/** fn on wasm against fn on cpu. `grad: false` checks the forward pass only. */
async function check(fn: Fn, specs: Spec[], opts: { grad?: boolean; wrt?: number[]; tol?: number } = {}): Promise<void> {
  const wrt = opts.grad === false ? [] : opts.wrt;
  const want = await runOn('cpu', fn, specs, wrt);
  const got = await runOn('wasm', fn, specs, wrt);
  const tol = opts.tol ?? TOL;
  expect(got.y.shape).toEqual(want.y.shape);
  expect(relErr(got.y.values, want.y.values), 'forward').toBeLessThan(tol);
  expect(got.grads.length).toBe(want.grads.length);
  got.grads.forEach((g, i) => {
    expect(g.shape, `grad ${i} shape`).toEqual(want.grads[i]!.shape);
    expect(relErr(g.values, want.grads[i]!.values), `grad ${i}`).toBeLessThan(tol);
  });
}

/** fn on wasm (forward only) against a float64 reference computed from the same inputs. */
async function checkRef(fn: Fn, specs: Spec[], ref: (...xs: (Float32Array | Int32Array)[]) => ArrayLike<number>): Promise<void> {
  const got = await runOn('wasm', fn, specs, []);
  const want = ref(...specs.map((s, i) => data(s, 17 + 31 * i)));
  expect(relErr(got.y.values, want)).toBeLessThan(TOL);
}

const FLAGS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const sh = (m: number, k: number, t: boolean) => (t ? [k, m] : [m, k]);

describe('registration', () => {
  it('registers every kernel for wasm, once however often it is called', () => {
    const before = WASM_KERNEL_NAMES.map((n) => tf.getKernel(n, 'wasm'));
    registerWasmKernels();
    registerWasmKernels();
    WASM_KERNEL_NAMES.forEach((n, i) => {
      expect(tf.getKernel(n, 'wasm'), n).toBeDefined();
      expect(tf.getKernel(n, 'wasm'), n).toBe(before[i]);
    });
    for (const n of ['UnsortedSegmentSum', 'Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'Einsum']) {
      expect(WASM_KERNEL_NAMES).toContain(n);
    }
  });
});

describe('wasm: matMul', () => {
  for (const [ta, tb] of FLAGS) {
    it(`rank 2, transposeA=${ta} transposeB=${tb}`, async () => {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: sh(33, 47, ta) }, { shape: sh(47, 29, tb) }]);
    });
    it(`rank 3 batched, transposeA=${ta} transposeB=${tb}`, async () => {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [3, ...sh(17, 23, ta)] }, { shape: [3, ...sh(23, 19, tb)] }]);
    });
    it(`rank 3 × rank 2 (shared B), transposeA=${ta} transposeB=${tb}`, async () => {
      // gradient for a only: tfjs's BatchMatMul gradient returns b's gradient batched ([B, K, N]
      // for a [K, N] b) and the engine rejects it on every backend; models reshape to 2-D
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [4, ...sh(13, 21, ta)] }, { shape: sh(21, 11, tb) }], { wrt: [0] });
    });
  }
  it('many tiny products (the built-in loop), every flag', async () => {
    for (const [ta, tb] of FLAGS) {
      await check((a, b) => tf.matMul(a, b, ta, tb), [{ shape: [2, 32, ...sh(4, 5, ta)] }, { shape: [2, 32, ...sh(5, 3, tb)] }]);
    }
  });
  it('rank 2 × rank 3 (shared A)', async () => {
    await check((a, b) => tf.matMul(a, b), [{ shape: [9, 12] }, { shape: [3, 12, 7] }], { grad: false });
  });
  it('rank 4 attention ([B, H, T, dh]) with softmax, forward and backward', async () => {
    await check(
      (q, k, v) => tf.matMul(tf.softmax(tf.matMul(q, k, false, true).mul(0.25)), v),
      [{ shape: [2, 3, 10, 16] }, { shape: [2, 3, 12, 16] }, { shape: [2, 3, 12, 16] }],
    );
  });
  it('batch dims that broadcast both ways ([2,1] against [3]) against float64', async () => {
    // the cpu backend gets this one wrong (it computes max(batchA, batchB) products)
    const [m, k, n] = [5, 6, 4];
    for (const [ta, tb] of FLAGS) {
      await checkRef(
        (a, b) => tf.matMul(a, b, ta, tb),
        [{ shape: [2, 1, ...sh(m, k, ta)] }, { shape: [3, ...sh(k, n, tb)] }],
        (a, b) => {
          const out = new Float64Array(2 * 3 * m * n);
          for (let i = 0; i < 2; i++)
            for (let j = 0; j < 3; j++)
              for (let r = 0; r < m; r++)
                for (let c = 0; c < n; c++) {
                  let s = 0;
                  for (let q = 0; q < k; q++) {
                    const av = a![i * m * k + (ta ? q * m + r : r * k + q)]!;
                    const bv = b![j * k * n + (tb ? c * k + q : q * n + c)]!;
                    s += av * bv;
                  }
                  out[((i * 3 + j) * m + r) * n + c] = s;
                }
          return out;
        },
      );
    }
  });
  it('degenerate sizes (k = 0, m = 0)', async () => {
    const z = tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4]));
    expect(z.shape).toEqual([3, 4]);
    expect(Array.from(z.dataSync())).toEqual(new Array(12).fill(0));
    const e = tf.matMul(tf.zeros([2, 0, 5]), tf.ones([2, 5, 3]));
    expect(e.shape).toEqual([2, 0, 3]);
    tf.dispose([z, e]);
  });
});

describe('wasm: fused matMul', () => {
  const cases: [string, boolean, boolean, number[] | null, tf.fused.Activation][] = [
    ['rank 2, bias + relu', false, false, null, 'relu'],
    ['rank 2 transposeB, bias, linear', false, true, null, 'linear'],
    ['rank 2 transposeA, bias + relu6', true, false, null, 'relu6'],
    ['rank 2 transposeA+B, bias + leakyrelu', true, true, null, 'leakyrelu'],
    ['rank 3 batched, bias + elu', false, false, [3], 'elu'],
    ['rank 3 batched transposeB, bias + sigmoid', false, true, [3], 'sigmoid'],
  ];
  for (const [name, ta, tb, batch, activation] of cases) {
    it(name, async () => {
      const pre = batch ?? [];
      await check(
        (a, b, bias) => tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation, leakyreluAlpha: 0.1 }),
        [{ shape: [...pre, ...sh(14, 18, ta)] }, { shape: [...pre, ...sh(18, 10, tb)] }, { shape: [10] }],
      );
    });
  }
  it('prelu and a rank-2 bias (forward)', async () => {
    await check(
      (a, b, bias, p) => tf.fused.matMul({ a, b, bias, activation: 'prelu', preluActivationWeights: p }),
      [{ shape: [9, 11] }, { shape: [11, 7] }, { shape: [9, 7] }, { shape: [7] }],
      { grad: false },
    );
  });
});

describe('wasm: conv2d gradients (Conv2DBackpropFilter, Conv2DBackpropInput)', () => {
  for (const stride of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      it(`3×3, stride ${stride}, ${pad}`, async () => {
        await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad), [{ shape: [2, 9, 10, 5] }, { shape: [3, 3, 5, 7] }]);
      });
    }
  }
  it('4×4 stride 4 valid (ViT patchify), 4×4 stride 2 same, 3×3 stride 3 same', async () => {
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 4, 'valid'), [{ shape: [2, 16, 16, 3] }, { shape: [4, 4, 3, 8] }]);
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), [{ shape: [2, 8, 8, 3] }, { shape: [4, 4, 3, 6] }]);
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 3, 'same'), [{ shape: [1, 10, 11, 2] }, { shape: [3, 3, 2, 4] }]);
  });
  it('explicit padding and 1×1 kernels', async () => {
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1, 2], [2, 0], [0, 0]];
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, pad), [{ shape: [1, 6, 6, 2] }, { shape: [3, 3, 2, 3] }]);
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), [{ shape: [2, 5, 5, 6] }, { shape: [1, 1, 6, 4] }]);
  });
  it('large enough to run in several chunks of images', async () => {
    // im2col of one image is 32·32·(7·7·64) ≈ 3.2M floats > the per-chunk budget
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), [{ shape: [3, 32, 32, 64] }, { shape: [7, 7, 64, 1] }]);
    await check((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), [{ shape: [3, 64, 64, 64] }, { shape: [7, 7, 64, 1] }], {
      wrt: [0],
    });
  });
  it('conv2dTranspose (UNet upsampling), stride 2, same and valid', async () => {
    await check(
      (x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 8, 8, 5], 2, 'same'),
      [{ shape: [2, 4, 4, 6] }, { shape: [3, 3, 5, 6] }],
    );
    await check(
      (x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 8, 8, 5], 2, 'valid'),
      [{ shape: [2, 4, 4, 6] }, { shape: [2, 2, 5, 6] }],
    );
  });
  it('fused conv2d with bias and leakyrelu', async () => {
    await check(
      (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias: b, activation: 'leakyrelu', leakyreluAlpha: 0.2 }),
      [{ shape: [2, 6, 6, 3] }, { shape: [3, 3, 3, 4] }, { shape: [4] }],
    );
  });
});

describe('wasm: depthwise conv2d gradients', () => {
  it('depthwise stride 1 same (multiplier 2), stride 2 valid', async () => {
    await check((x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), [{ shape: [2, 7, 7, 3] }, { shape: [3, 3, 3, 2] }]);
    await check((x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid'), [{ shape: [2, 8, 8, 4] }, { shape: [3, 3, 4, 1] }]);
  });
  it('separableConv2d', async () => {
    await check(
      (x, d, p) => tf.separableConv2d(x as tf.Tensor4D, d as tf.Tensor4D, p as tf.Tensor4D, 1, 'same'),
      [{ shape: [1, 6, 6, 3] }, { shape: [3, 3, 3, 2] }, { shape: [1, 1, 6, 5] }],
    );
  });
});

describe('wasm: gather gradient (UnsortedSegmentSum)', () => {
  it('embedding lookup with repeated ids', async () => {
    await check((t, i) => tf.gather(t, i), [{ shape: [10, 6] }, { shape: [3, 4], dtype: 'int32', ints: [1, 2, 2, 9, 0, 1, 1, 1, 5, 9, 3, 2] }]);
  });
  it('gather along axis 1', async () => {
    await check((t, i) => tf.gather(t, i, 1), [{ shape: [3, 10, 4] }, { shape: [6], dtype: 'int32', ints: [1, 2, 2, 9, 0, 1] }]);
  });
  it('unsortedSegmentSum drops out-of-range ids (float64 reference)', async () => {
    const ids = [0, 2, 2, -1, 7, 1];
    await checkRef(
      (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 4),
      [{ shape: [6, 5] }, { shape: [6], dtype: 'int32', ints: ids }],
      (x) => {
        const out = new Float64Array(4 * 5);
        ids.forEach((s, r) => {
          if (s >= 0 && s < 4) for (let c = 0; c < 5; c++) out[s * 5 + c] += x![r * 5 + c]!;
        });
        return out;
      },
    );
  });
});

describe('wasm: Sum and Mean', () => {
  const cases: [string, number[], number | number[] | undefined, boolean][] = [
    ['sum over axis 0', [37, 13], 0, false],
    ['sum over leading axes [0, 1]', [3, 11, 13], [0, 1], false],
    ['sum over a middle axis, keepDims', [3, 11, 13], 1, true],
    ['sum over the last axis', [3, 11, 13], -1, false],
    ['sum over axes [0, 2] (not contiguous)', [3, 11, 13], [0, 2], false],
    ['sum over everything', [3, 11, 13], undefined, false],
    ['sum with size-1 axes around', [1, 6, 1, 7], [0, 1, 2], false],
  ];
  for (const [name, shape, axis, keepDims] of cases) {
    it(name, async () => {
      await check((x) => tf.sum(x, axis, keepDims), [{ shape }]);
    });
  }
  it('mean over axis 0 and over [1, 2] (global average pool)', async () => {
    await check((x) => tf.mean(x, 0), [{ shape: [37, 13] }]);
    await check((x) => tf.mean(x, [1, 2]), [{ shape: [2, 5, 6, 7] }]);
  });
  it('bias-style broadcast gradients', async () => {
    await check((a, b) => a.add(b), [{ shape: [4, 5, 6] }, { shape: [6] }]);
    await check((a, b) => a.mul(b), [{ shape: [4, 5, 6] }, { shape: [4, 1, 6] }]);
  });
});

describe('wasm: MaxPoolGrad', () => {
  it('windows whose values are all negative (the built-in kernel sends these to the wrong pixel)', async () => {
    await check((x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 8, 8, 3], shift: -4 }]);
    await check((x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), [{ shape: [2, 7, 7, 3] }]);
  });
});

describe('wasm: einsum (forward)', () => {
  it('matMul, batched attention scores, transpose, dot', async () => {
    await check((a, b) => tf.einsum('ij,jk->ik', a, b), [{ shape: [5, 4] }, { shape: [4, 3] }], { grad: false });
    await check((a, b) => tf.einsum('bhqd,bhkd->bhqk', a, b), [{ shape: [2, 3, 5, 4] }, { shape: [2, 3, 6, 4] }], { grad: false });
    await check((a) => tf.einsum('ij->ji', a), [{ shape: [5, 4] }], { grad: false });
    await check((a, b) => tf.einsum('i,i->', a, b), [{ shape: [5] }, { shape: [5] }], { grad: false });
  });
});

describe('wasm: small layers of each model family, forward and backward', () => {
  const layerNorm = (x: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).mul(tf.rsqrt(variance.add(1e-5)));
  };
  it('transformer block: embedding, layernorm, attention, GELU MLP, logSoftmax cross-entropy', async () => {
    const [B, T, D, V] = [2, 6, 16, 11];
    const ids = Array.from({ length: B * T }, (_, i) => (i * 7) % V);
    await check(
      (emb, wqkv, wo, w1, w2, tok) => {
        const x = tf.gather(emb, tok).reshape([B * T, D]);
        const qkv = tf.matMul(layerNorm(x), wqkv).reshape([B, T, 3, 2, D / 2]).transpose([2, 0, 3, 1, 4]);
        const [q, k, v] = tf.unstack(qkv);
        const att = tf.softmax(tf.matMul(q!, k!, false, true).mul(1 / Math.sqrt(D / 2)));
        const h = x.add(tf.matMul(tf.matMul(att, v!).transpose([0, 2, 1, 3]).reshape([B * T, D]), wo));
        const u = tf.matMul(layerNorm(h), w1);
        const y = h.add(tf.matMul(u.mul(tf.sigmoid(u.mul(1.702))), w2));
        const logits = tf.matMul(y, emb, false, true);
        return tf.logSoftmax(logits).mul(tf.oneHot(tok.reshape([B * T]), V)).sum(-1).neg();
      },
      [{ shape: [V, D] }, { shape: [D, 3 * D] }, { shape: [D, D] }, { shape: [D, 4 * D] }, { shape: [4 * D, D] }, { shape: [B, T], dtype: 'int32', ints: ids }],
    );
  });
  it('conv discriminator: conv stride 2, leakyRelu, avgPool, dense', async () => {
    await check(
      (x, w1, w2, wd) => {
        const h1 = tf.leakyRelu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 2, 'same'), 0.2);
        const h2 = tf.leakyRelu(tf.conv2d(h1, w2 as tf.Tensor4D, 2, 'same'), 0.2);
        return tf.matMul(tf.avgPool(h2, 2, 2, 'valid').reshape([2, -1]), wd);
      },
      [{ shape: [2, 16, 16, 3] }, { shape: [4, 4, 3, 8] }, { shape: [4, 4, 8, 16] }, { shape: [64, 1] }],
    );
  });
  it('UNet block: conv, group norm, SiLU, nearest upsampling, conv2dTranspose, skip', async () => {
    // batch 1: tfjs's cpu ResizeNearestNeighborGrad is wrong from the second image on (wasm's is right)
    await check(
      (x, w1, w2, wt) => {
        const h = tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same');
        const g = h.reshape([1, 8, 8, 2, 4]);
        const { mean, variance } = tf.moments(g, [1, 2, 4], true);
        const n = g.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).reshape([1, 8, 8, 8]);
        const s = n.mul(tf.sigmoid(n));
        const d = tf.conv2d(s as tf.Tensor4D, w2 as tf.Tensor4D, 2, 'same');
        const up = tf.image.resizeNearestNeighbor(d, [8, 8]).add(tf.conv2dTranspose(d, wt as tf.Tensor4D, [1, 8, 8, 8], 2, 'same'));
        return up.add(s);
      },
      [{ shape: [1, 8, 8, 3] }, { shape: [3, 3, 3, 8] }, { shape: [3, 3, 8, 8] }, { shape: [3, 3, 8, 8] }],
    );
  });
});

describe('wasm: memory', () => {
  it('forward + backward passes through every kernel leave no tensor and no buffer behind', async () => {
    await tf.setBackend('wasm');
    const rng = new Rng(5);
    const rand = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
    const vars = {
      emb: tf.variable(rand([12, 8])),
      w: tf.variable(rand([8, 8])),
      b: tf.variable(rand([8])),
      conv: tf.variable(rand([3, 3, 2, 4])),
      dw: tf.variable(rand([3, 3, 4, 2])),
    };
    const ids = tf.tensor1d([1, 3, 3, 7, 0, 11, 2, 3], 'int32');
    const img = rand([2, 6, 6, 2]);
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const x = tf.gather(vars.emb, ids);
          const h = tf.fused.matMul({ a: x, b: vars.w, bias: vars.b, activation: 'relu' });
          const t = tf.matMul(h.reshape([2, 4, 8]), h.reshape([2, 4, 8]), true, false).sum([0, 1]);
          const c = tf.conv2d(img as tf.Tensor4D, vars.conv as tf.Tensor4D, 2, 'same');
          const d = tf.depthwiseConv2d(tf.maxPool(c, 2, 1, 'same'), vars.dw as tf.Tensor4D, 1, 'same');
          return t.sum().add(d.square().mean()).add(tf.conv2dTranspose(c, vars.conv as tf.Tensor4D, [2, 6, 6, 2], 2, 'same').sum());
        });
        // einsum has no gradient in tfjs: forward only
        const e = tf.einsum('ij,jk->ik', vars.emb, vars.w).mean(0).sum();
        return [value.dataSync()[0]!, e.dataSync()[0]!, ...Object.values(grads).map((g) => g.sum().dataSync()[0]!)];
      });
    step();
    const tensors = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds();
    const first = step();
    for (let i = 0; i < 3; i++) expect(step()).toEqual(first);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    tf.dispose([...Object.values(vars), ids, img]);
  });
});
