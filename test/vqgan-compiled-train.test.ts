import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { VqganConfigSchema, VqganTrainSchema } from '../src/vqgan/config.js';
import { VitVqgan } from '../src/vqgan/model.js';
import { tokenizerTrainGraph } from '../src/vqgan/onnx-train-graph.js';
import { TokenizerTrainer, type TokenizerGrads } from '../src/vqgan/trainer.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';

/**
 * The ViT-VQGAN's training step compiled to one ONNX Runtime session (both phases: before the
 * discriminator starts, and with it), against the trainer's tfjs autograd step on the same model.
 */
describe('compiled tokenizer training step (one ONNX Runtime session)', () => {
  const config = VqganConfigSchema.parse({ imageSize: 8, channels: 3, patchSize: 2, width: 16, depth: 1, decoderDepth: 2, heads: 2, mlpRatio: 2, codebookSize: 16, codeDim: 4 });
  const trainWith = (start: number, more: object = {}) =>
    VqganTrainSchema.parse({ steps: 40, warmup: 0, lr: 3e-3, restartEvery: 0, adversarial: { weight: 0.1, start, width: 4 }, ...more });

  function setup(seed: number) {
    const model = new VitVqgan(config, seed);
    scrambleWeights(model.variables(), seed, 0.3);
    const images = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
    return { model, images };
  }

  /** Close relative to the largest expected value; where all expected are 0 (a gradient that cancels exactly, the last bias under the two hinge terms while both are active), ~0. */
  function expectClose(got: Float32Array, want: Float32Array, tol: number, what: string): void {
    if (want.every((v) => v === 0)) {
      expect(Math.max(...got.map(Math.abs)), what).toBeLessThan(1e-6);
      return;
    }
    try {
      expectCloseRelative(got, want, tol, 0);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }

  function expectSameGrads(actual: Record<string, tf.Tensor>, expected: Record<string, tf.Tensor>, what: string): void {
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, g] of Object.entries(expected)) expectClose(actual[name]!.dataSync() as Float32Array, g.dataSync() as Float32Array, 5e-4, `${what} gradient of ${name}`);
  }

  function expectSameStep(viaSession: TokenizerGrads, viaAutograd: TokenizerGrads): void {
    viaSession.terms.forEach((v, i) => expect(v).toBeCloseTo(viaAutograd.terms[i]!, 5));
    expect(Array.from(viaSession.indices)).toEqual(Array.from(viaAutograd.indices));
    expectCloseRelative(viaSession.latents, viaAutograd.latents, 1e-5);
    expectSameGrads(viaSession.gen, viaAutograd.gen, 'generator');
    let squares = 0;
    for (const g of Object.values(viaAutograd.gen)) for (const v of g.dataSync()) squares += v * v;
    expect(Math.abs(viaSession.squares!.sum - squares) / squares).toBeLessThan(1e-4);
  }

  for (const [phase, start] of [['before the discriminator starts', 100], ['with the discriminator', 0]] as const) {
    it(`gives tfjs autograd’s loss terms, gradients, code ids and latents ${phase}`, () => {
      const { model, images } = setup(1);
      const train = trainWith(start);
      const perKernel = new TokenizerTrainer(model, train, { compiled: false });
      const compiled = new TokenizerTrainer(model, train, { compiled: true });
      // the same discriminator weights in both
      for (const [k, v] of Object.entries(compiled.disc!.variables())) v.assign(perKernel.disc!.variables()[k]!);
      const viaAutograd = perKernel.computeGrads(images);
      const before = tf.memory().numTensors;
      const viaSession = compiled.computeGrads(images);
      const returned = Object.keys(viaSession.gen).length + Object.keys(viaSession.disc ?? {}).length;
      expect(tf.memory().numTensors - before).toBe(returned);
      expectSameStep(viaSession, viaAutograd);
      if (start === 0) {
        expect(viaSession.terms[5]).not.toBe(0); // gAdv
        expect(viaSession.terms[6]).toBeGreaterThan(0); // dLoss
        expectSameGrads(viaSession.disc!, viaAutograd.disc!, 'discriminator');
      } else {
        expect(viaSession.disc).toBeUndefined();
        expect(viaSession.terms.slice(5)).toEqual([0, 0]);
      }
      tf.dispose([...Object.values(viaAutograd.gen), ...Object.values(viaAutograd.disc ?? {}), ...Object.values(viaSession.gen), ...Object.values(viaSession.disc ?? {}), images]);
      perKernel.dispose();
      compiled.dispose();
      model.dispose();
    });
  }

  it('trains like the per-kernel path through dead-code restarts and the discriminator’s start: same weights, no leaks', () => {
    const a = setup(2);
    const b = setup(2);
    const train = trainWith(3, { restartEvery: 2 });
    const perKernel = new TokenizerTrainer(a.model, train, { compiled: false });
    const compiled = new TokenizerTrainer(b.model, train, { compiled: true });
    const losses: number[] = [];
    let restarted = 0;
    let before = 0;
    for (let step = 0; step < 8; step++) {
      if (step === 4) before = tf.memory().numTensors; // both sessions compiled, the discriminator on
      const ma = perKernel.trainStep(a.images);
      const mb = compiled.trainStep(b.images);
      restarted += mb.restarted;
      expect(mb.restarted).toBe(ma.restarted);
      expect(mb.usage).toBe(ma.usage);
      expect(mb.loss).toBeCloseTo(ma.loss, 3);
      losses.push(mb.loss);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(restarted).toBeGreaterThan(0);
    const sa = perKernel.state();
    const sb = compiled.state();
    for (const [name, v] of Object.entries(sb.weights)) expectClose(v.dataSync() as Float32Array, sa.weights[name]!.dataSync() as Float32Array, 2e-3, `weight ${name}`);
    expect(sb.codeCounts).toEqual(sa.codeCounts);
    tf.dispose([a.images, b.images]);
    perKernel.dispose();
    compiled.dispose();
    a.model.dispose();
    b.model.dispose();
  });

  it('outputs a gradient for every weight of both models, the loss terms, ids and latents', () => {
    const model = new VitVqgan(config, 3);
    const trainer = new TokenizerTrainer(model, trainWith(0), { compiled: false });
    const spec = tokenizerTrainGraph(model, trainer.train, 4, trainer.disc);
    const outputs = spec.outputs.map((o) => o.name);
    for (const name of Object.keys(model.variables())) expect(outputs).toContain(`grad:${name}`);
    for (const name of Object.keys(trainer.disc!.variables())) expect(outputs).toContain(`grad:disc/${name}`);
    for (const name of ['loss', 'l2', 'l1', 'codebook', 'commit', 'gAdv', 'dLoss', 'grad_sq']) expect(outputs).toContain(name);
    expect(spec.outputs.find((o) => o.name === 'ids')).toEqual({ name: 'ids', dtype: 'int32', dims: [4 * 16] });
    expect(spec.outputs.find((o) => o.name === 'latents')!.dims).toEqual([4 * 16, 4]);
    expect(spec.inputs.find((i) => i.name === 'images')!.dims).toEqual([4, 8, 8, 3]);
    trainer.dispose();
    model.dispose();
  });
});
