import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AdamW, clipScale } from '../src/nn/optim.js';
import { Ema } from '../src/nn/ema.js';
import { emaDecayAt } from '../src/nn/schedules.js';
import { Optimized } from '../src/training/optimized.js';

describe('AdamW', () => {
  it('takes the textbook steps (bias-corrected moments, decoupled decay on matrices only)', () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]));
    const b = tf.variable(tf.tensor1d([0.5]));
    const opt = new AdamW({ w, b }, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    // step 1, g = (0.5, −1) for w and 2 for b: m̂ = g, v̂ = g², so the update is lr·sign(g) (+ decay)
    opt.apply({ w: tf.tensor2d([[0.5, -1]]), b: tf.tensor1d([2]) }, lr);
    const w1 = Array.from(w.dataSync());
    expect(w1[0]).toBeCloseTo(1 - lr - lr * 0.1 * 1, 6);
    expect(w1[1]).toBeCloseTo(-2 + lr - lr * 0.1 * -2, 6);
    expect(b.dataSync()[0]).toBeCloseTo(0.5 - lr, 6); // no decay on a vector
    // step 2 with the gradient scaled by 0.5 (clipping): g' = 0.25 for w[0]
    opt.apply({ w: tf.tensor2d([[0.5, -1]]), b: tf.tensor1d([2]) }, lr, 0.5);
    const m = 0.9 * 0.05 + 0.1 * 0.25; // β1·m1 + (1 − β1)·g', with m1 = 0.1·0.5
    const v = 0.99 * 0.0025 + 0.01 * 0.0625;
    const step = (lr / (1 - 0.81)) * m / (Math.sqrt(v / (1 - 0.9801)) + 1e-8);
    expect(w.dataSync()[0]).toBeCloseTo(w1[0]! - step - lr * 0.1 * w1[0]!, 6);
    expect(Object.keys(opt.state()).sort()).toEqual(['m/b', 'm/w', 'v/b', 'v/w']);
    opt.dispose();
  });

  it('clipScale gives the global norm and the factor that brings it to the limit', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
    expect(clipScale(grads, 10)).toEqual({ norm: 5, scale: 1 });
    const { norm, scale } = clipScale(grads, 1);
    expect(norm).toBe(5);
    expect(scale).toBeCloseTo(0.2, 6);
    expect(clipScale(grads, 0).scale).toBe(1); // 0 = no clipping
  });
});

describe('EMA of the weights', () => {
  it('emaDecayAt: (1 + n) / (10 + n) early, then the decay', () => {
    expect(emaDecayAt(0, 0.999)).toBeCloseTo(0.1, 12);
    expect(emaDecayAt(8, 0.999)).toBeCloseTo(0.5, 12);
    expect(emaDecayAt(100_000, 0.999)).toBe(0.999);
    expect(emaDecayAt(5, 0)).toBe(0);
    expect(() => emaDecayAt(0, 1)).toThrow(RangeError);
    expect(() => emaDecayAt(-1, 0.9)).toThrow(RangeError);
  });

  it('averages the weights step by step, swaps them in for a save and back, and survives a state round trip', async () => {
    const w = tf.variable(tf.tensor1d([0, 10]));
    const ema = new Ema({ w }, 0.5);
    w.assign(tf.tensor1d([1, 20])); // step 1: d = 0.1 → 0.1·(0, 10) + 0.9·(1, 20)
    ema.update();
    w.assign(tf.tensor1d([3, 0])); // step 2: d = min(0.5, 2/11)
    ema.update();
    const d2 = 2 / 11;
    const expected = [d2 * 0.9 + (1 - d2) * 3, d2 * 19 + 0];
    const inside = await ema.swapped(async () => Array.from(w.dataSync()));
    expect(inside[0]).toBeCloseTo(expected[0]!, 5);
    expect(inside[1]).toBeCloseTo(expected[1]!, 5);
    expect(Array.from(w.dataSync())).toEqual([3, 0]); // the trained weights are back
    // state → a fresh average over the same variables → the same average and update count
    const copy = new Ema({ w }, 0.5);
    copy.load(ema.state(), ema.updates);
    expect(copy.updates).toBe(2);
    expect(Array.from(copy.state()['ema/w']!.dataSync())).toEqual(Array.from(ema.state()['ema/w']!.dataSync()));
    expect(() => copy.load({ 'ema/nope': tf.scalar(1) }, 0)).toThrow(/unknown/);
    copy.commit();
    expect(w.dataSync()[0]).toBeCloseTo(expected[0]!, 5);
    ema.dispose();
    copy.dispose();
    w.dispose();
  });

  it('Optimized keeps the average in its state and restores it; without one in the state it starts at the weights', () => {
    const sched = { lr: 0.1, warmup: 0, total: 10, minRatio: 1, clip: 0, weightDecay: 0, ema: 0.9 };
    const w = tf.variable(tf.tensor1d([1, 2]));
    const a = new Optimized({ w }, sched);
    for (let i = 0; i < 3; i++) a.applyGrads({ grads: { w: tf.tensor1d([1, -1]) }, loss: 0 });
    const s = a.state();
    expect(Object.keys(s.optimizer).sort()).toEqual(['ema/w', 'm/w', 'v/w']);
    expect(s.emaUpdates).toBe(3);
    const w2 = tf.variable(w.clone());
    const b = new Optimized({ w: w2 }, sched);
    b.load(s.optimizer, s.step, s.emaUpdates);
    expect(Array.from(b.ema!.state()['ema/w']!.dataSync())).toEqual(Array.from(s.optimizer['ema/w']!.dataSync()));
    expect(b.ema!.updates).toBe(3);
    // a run that turns the average on when resumed: it starts at the weights as they are
    const c = new Optimized({ w: w2 }, sched);
    const { ['ema/w']: _dropped, ...moments } = s.optimizer;
    c.load(moments, s.step);
    expect(Array.from(c.ema!.state()['ema/w']!.dataSync())).toEqual(Array.from(w2.dataSync()));
    expect(c.ema!.updates).toBe(0);
    for (const o of [a, b, c]) o.dispose();
    tf.dispose([w, w2]);
  });
});
