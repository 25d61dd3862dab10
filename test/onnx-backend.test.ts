/**
 * The onnx backend as a whole: registration is idempotent, it is selectable through initBackend,
 * its kernels keep no tensors alive (numTensors flat across training steps of a small MLP), and it
 * trains that MLP to the same loss as the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { ONNX_KERNELS, onnxStats, poolStats, registerOnnxBackend, sessionConfig } from '../src/backend/onnx/index.js';
import { Rng } from '../src/random.js';

let previous = '';
beforeAll(() => {
  previous = tf.getBackend();
});
afterAll(async () => {
  if (previous) await tf.setBackend(previous);
});

function mlp(seed: number) {
  const rng = new Rng(seed);
  const init = (shape: number[], std: number) => tf.variable(tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * std), shape));
  const w1 = init([64, 256], 0.1);
  const b1 = tf.variable(tf.zeros([256]));
  const w2 = init([256, 32], 0.1);
  const b2 = tf.variable(tf.zeros([32]));
  const x = tf.tensor(Float32Array.from({ length: 128 * 64 }, () => rng.normal()), [128, 64]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 128 }, () => rng.int(32)), 'int32'), 32);
  const vars = [w1, b1, w2, b2];
  const loss = () =>
    tf.tidy(() => {
      const h = tf.fused.matMul({ a: x, b: w1, bias: b1 });
      const g = tf.mul(h, tf.sigmoid(tf.mul(h, 1.702)));
      const logits = tf.add(tf.matMul(g, w2), b2);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    });
  const dispose = () => tf.dispose([...vars, x, labels]);
  return { vars, loss, dispose };
}

async function train(backend: string, steps: number, onStep?: (i: number) => void): Promise<number[]> {
  await tf.setBackend(backend);
  const m = mlp(5);
  const opt = tf.train.adam(1e-2);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const l = opt.minimize(m.loss, true, m.vars);
    losses.push(l!.dataSync()[0]!);
    l!.dispose();
    onStep?.(i);
  }
  opt.dispose();
  m.dispose();
  return losses;
}

describe('onnx backend', () => {
  it('registers once: repeated calls neither warn nor re-register, and update the thread count', async () => {
    const warn = vi.spyOn(console, 'warn');
    await registerOnnxBackend({ threads: 1 });
    await registerOnnxBackend({ threads: 1 });
    expect(sessionConfig().threads).toBe(1);
    await registerOnnxBackend({ threads: 2 });
    expect(sessionConfig().threads).toBe(2);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    const onnxKernels = new Set(tf.getKernelsForBackend('onnx').map((k) => k.kernelName));
    for (const k of tf.getKernelsForBackend('cpu')) expect(onnxKernels.has(k.kernelName), k.kernelName).toBe(true);
    for (const k of ONNX_KERNELS) expect(onnxKernels.has(k.name), k.name).toBe(true);
  });

  it('is what initBackend("onnx") selects', async () => {
    expect(await initBackend('onnx', { threads: 2 })).toBe('onnx');
    expect(tf.getBackend()).toBe('onnx');
  });

  it('keeps tf.memory().numTensors flat across forward + backward + Adam steps', async () => {
    await registerOnnxBackend({ threads: 2 });
    // tfjs's own Adam keeps a tensor or so after dispose(); whatever cpu leaves, onnx may leave, no more
    let m0 = tf.memory().numTensors;
    await train('cpu', 3);
    const cpuLeft = tf.memory().numTensors - m0;
    const counts: number[] = [];
    const before = onnxStats().calls;
    m0 = tf.memory().numTensors;
    await train('onnx', 6, () => counts.push(tf.memory().numTensors));
    expect(onnxStats().calls).toBeGreaterThan(before);
    // Adam makes its moment variables on the first step; after that nothing may accumulate
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(tf.memory().numTensors - m0).toBe(cpuLeft);
  });

  describe('output buffer pool', () => {
    // outputs of ≥ 16 KB come from the pool; these check that a recycled buffer is never one that
    // something still sees
    const big = () => tf.add(tf.fill([64, 256], 1.5), tf.fill([64, 256], 1));
    const churn = () => {
      for (let i = 0; i < 6; i++) tf.tidy(() => tf.mul(tf.add(tf.fill([64, 256], 7), tf.fill([64, 256], 1)), tf.fill([64, 256], 3)).dataSync()[0]);
    };

    it('recycles the buffers of disposed outputs', async () => {
      await tf.setBackend('onnx');
      const before = poolStats().hits;
      for (let i = 0; i < 4; i++) tf.tidy(() => tf.add(big(), big()));
      expect(poolStats().hits).toBeGreaterThan(before);
    });

    it('never recycles values that were read out with dataSync', async () => {
      await tf.setBackend('onnx');
      const t = big();
      const v = t.dataSync();
      t.dispose();
      churn();
      expect(v.every((x) => x === 2.5)).toBe(true);
    });

    it('never recycles a buffer that a slice or an unstack still views', async () => {
      await tf.setBackend('onnx');
      const t = big();
      const s = tf.slice(t, [0, 0], [32, 256]); // contiguous: the cpu kernel returns a subarray
      const parts = tf.unstack(t); // the same, row by row
      t.dispose();
      churn();
      expect(s.dataSync().every((x) => x === 2.5)).toBe(true);
      expect(parts[63]!.dataSync().every((x) => x === 2.5)).toBe(true);
      tf.dispose([s, ...parts]);
    });
  });

  it('trains to the same losses as the cpu backend', async () => {
    await registerOnnxBackend({ threads: 2 });
    const cpu = await train('cpu', 4);
    const onnx = await train('onnx', 4);
    onnx.forEach((l, i) => expect(Math.abs(l - cpu[i]!) / Math.abs(cpu[i]!)).toBeLessThan(1e-4));
    expect(onnx[3]!).toBeLessThan(onnx[0]!);
  });
});
