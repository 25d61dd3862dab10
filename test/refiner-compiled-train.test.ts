import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FixedText } from '../src/bench/transformer.js';
import { ConvAutoencoder } from '../src/diffusion-refiner/autoencoder.js';
import { RefinerConfigSchema, RefinerTrainSchema } from '../src/diffusion-refiner/config.js';
import { autoencoderTrainGraph, denoiserTrainGraph } from '../src/diffusion-refiner/onnx-train-graph.js';
import { Refiner } from '../src/diffusion-refiner/refiner.js';
import { AutoencoderTrainer, DenoiserTrainer } from '../src/diffusion-refiner/trainer.js';
import { BuiltinTextEncoder } from '../src/text/builtin.js';
import type { TextEncoder } from '../src/text/encoder.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';

/** The refiner autoencoder's training step compiled to one ONNX Runtime session, against tfjs autograd. */
describe('compiled refiner autoencoder training step (one ONNX Runtime session)', () => {
  const shape = { channels: [4, 6, 8], latentChannels: 3 };
  const train = RefinerTrainSchema.parse({ autoencoderSteps: 20, warmup: 0, autoencoderLr: 1e-2 });
  const size = 16;

  function setup(seed: number) {
    const model = new ConvAutoencoder(shape, 3, seed);
    scrambleWeights(model.variables(), seed, 0.2);
    const images = tf.randomUniform([2, size, size, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
    return { model, images };
  }

  it('gives tfjs autograd’s loss and every gradient', () => {
    const { model, images } = setup(1);
    const viaAutograd = new AutoencoderTrainer(model, train, { compiled: false }).computeGrads(images);
    const compiled = new AutoencoderTrainer(model, train, { compiled: true });
    const before = tf.memory().numTensors;
    const viaSession = compiled.computeGrads(images);
    // nothing but the returned gradients is left behind
    expect(tf.memory().numTensors - before).toBe(Object.keys(viaSession.grads).length);
    expect(viaSession.loss).toBeCloseTo(viaAutograd.loss, 5);
    expect(Object.keys(viaSession.grads).sort()).toEqual(Object.keys(model.variables()).sort());
    let squares = 0;
    for (const [name, g] of Object.entries(viaAutograd.grads)) {
      const expected = g.dataSync() as Float32Array;
      for (const v of expected) squares += v * v;
      try {
        expectCloseRelative(viaSession.grads[name]!.dataSync() as Float32Array, expected, 2e-4, 1e-6);
      } catch (err) {
        throw new Error(`gradient of ${name}: ${(err as Error).message}`);
      }
    }
    // the sum of squares clipping uses, so that the trainer does not compute it again
    expect(Math.abs(viaSession.squares!.sum - squares) / squares).toBeLessThan(1e-4);
    expect([...viaSession.squares!.names].sort()).toEqual(Object.keys(model.variables()).sort());
    tf.dispose([...Object.values(viaAutograd.grads), ...Object.values(viaSession.grads), images]);
    model.dispose();
  });

  it('trains like the per-kernel path: same weights after a few optimizer steps, loss going down, no leaks', () => {
    const a = setup(2);
    const b = setup(2);
    const perKernel = new AutoencoderTrainer(a.model, train, { compiled: false });
    const compiled = new AutoencoderTrainer(b.model, train, { compiled: true });
    compiled.trainStep(b.images); // compiles the session, so that the count below is of steady steps
    perKernel.trainStep(a.images);
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (let step = 0; step < 6; step++) {
      perKernel.trainStep(a.images);
      losses.push(compiled.trainStep(b.images).loss);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(losses[5]!).toBeLessThan(losses[0]!);
    const va = a.model.variables();
    for (const [name, v] of Object.entries(b.model.variables())) {
      try {
        expectCloseRelative(v.dataSync() as Float32Array, va[name]!.dataSync() as Float32Array, 1e-3, 1e-3);
      } catch (err) {
        throw new Error(`weight ${name}: ${(err as Error).message}`);
      }
    }
    tf.dispose([a.images, b.images]);
    a.model.dispose();
    b.model.dispose();
  });

  it('outputs a gradient for every weight, named after it', () => {
    const model = new ConvAutoencoder(shape, 1, 3);
    const spec = autoencoderTrainGraph(model, 2, 8);
    const outputs = spec.outputs.map((o) => o.name);
    for (const name of Object.keys(model.variables())) expect(outputs).toContain(`grad:${name}`);
    expect(outputs).toContain('loss');
    expect(outputs).toContain('grad_sq');
    expect(spec.inputs.find((i) => i.name === 'images')!.dims).toEqual([2, 8, 8, 1]);
    model.dispose();
  });
});

/** The refiner denoiser's training step compiled to one ONNX Runtime session, against tfjs autograd. */
describe('compiled refiner denoiser training step (one ONNX Runtime session)', () => {
  const captions = ['a red circle', 'a blue square', 'a green square'];
  const textOpts = { dim: 12, depth: 1, heads: 2, maxLength: 5, mlpRatio: 2 };
  const config = RefinerConfigSchema.parse({
    size: 16,
    factor: 2,
    channels: 3,
    autoencoder: { channels: [4, 4, 4], latentChannels: 2 },
    denoiser: { patch: 1, width: 16, depth: 2, heads: 2, mlpRatio: 2 },
    textDim: textOpts.dim,
  });
  // condDropout 0.5: some captions are dropped to "" (padded text), as in training
  const train = RefinerTrainSchema.parse({ steps: 20, warmup: 0, lr: 1e-2, batchSize: 3, condDropout: 0.5, seed: 4 });

  /** A refiner with scrambled weights (the zero-initialised output would leave most gradients 0) and its batch. */
  function setup(seed: number, text: 'trainable' | 'frozen') {
    const encoder: TextEncoder = text === 'trainable' ? BuiltinTextEncoder.fromCaptions(captions, textOpts, { seed }) : new FixedText(textOpts.dim, 5);
    const refiner = Refiner.create(config, encoder, seed);
    scrambleWeights(refiner.denoiser.variables(), seed, 0.2);
    const low = refiner.lowSize;
    const latents = Float32Array.from({ length: captions.length * refiner.latentSize }, (_, i) => Math.cos(i * 0.37 + seed));
    const lowImages = Float32Array.from({ length: captions.length * low * low * 3 }, (_, i) => Math.sin(i * 0.23 + seed));
    return { refiner, latents, lowImages };
  }

  for (const text of ['trainable', 'frozen'] as const) {
    it(`gives tfjs autograd’s loss and every gradient (${text} text encoder${text === 'trainable' ? ', the builtin one, inside the session' : ''})`, () => {
      const { refiner, latents, lowImages } = setup(1, text);
      // the same seed: both trainers draw the same timesteps, noise, augmentation and dropped captions
      const perKernel = new DenoiserTrainer(refiner, train, { compiled: false });
      const compiled = new DenoiserTrainer(refiner, train, { compiled: true });
      const viaAutograd = perKernel.computeGrads(latents, lowImages, captions);
      const before = tf.memory().numTensors;
      const viaSession = compiled.computeGrads(latents, lowImages, captions);
      // nothing but the returned gradients is left behind
      expect(tf.memory().numTensors - before).toBe(Object.keys(viaSession.grads).length);
      expect(viaSession.loss).toBeCloseTo(viaAutograd.loss, 5);
      const names = Object.keys(viaAutograd.grads).sort();
      expect(names.some((n) => n.startsWith('text/'))).toBe(text === 'trainable');
      expect(Object.keys(viaSession.grads).sort()).toEqual(names);
      let squares = 0;
      for (const name of names) {
        const expected = viaAutograd.grads[name]!.dataSync() as Float32Array;
        for (const v of expected) squares += v * v;
        try {
          expectCloseRelative(viaSession.grads[name]!.dataSync() as Float32Array, expected, 2e-4, 1e-6);
        } catch (err) {
          throw new Error(`gradient of ${name}: ${(err as Error).message}`);
        }
      }
      // the sum of squares clipping uses comes from the session, the builtin encoder's (run inside it) included
      expect(Math.abs(viaSession.squares!.sum - squares) / squares).toBeLessThan(1e-4);
      expect([...viaSession.squares!.names].sort()).toEqual(names);
      tf.dispose([...Object.values(viaAutograd.grads), ...Object.values(viaSession.grads)]);
      perKernel.dispose();
      compiled.dispose();
      refiner.dispose();
    });
  }

  it('trains like the per-kernel path: same weights after a few optimizer steps, loss going down, no leaks', () => {
    const a = setup(2, 'trainable');
    const b = setup(2, 'trainable');
    const perKernel = new DenoiserTrainer(a.refiner, train, { compiled: false });
    const compiled = new DenoiserTrainer(b.refiner, train, { compiled: true });
    compiled.trainStep(b.latents, b.lowImages, captions); // compiles the session, so that the count below is of steady steps
    perKernel.trainStep(a.latents, a.lowImages, captions);
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (let step = 0; step < 6; step++) {
      perKernel.trainStep(a.latents, a.lowImages, captions);
      losses.push(compiled.trainStep(b.latents, b.lowImages, captions).loss);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.min(...losses.slice(3))).toBeLessThan(Math.max(...losses.slice(0, 3)));
    const va = { ...a.refiner.denoiser.variables(), ...a.refiner.text.variables() };
    const vb = { ...b.refiner.denoiser.variables(), ...b.refiner.text.variables() };
    for (const [name, v] of Object.entries(vb)) {
      try {
        expectCloseRelative(v.dataSync() as Float32Array, va[name]!.dataSync() as Float32Array, 1e-3, 1e-3);
      } catch (err) {
        throw new Error(`weight ${name}: ${(err as Error).message}`);
      }
    }
    perKernel.dispose();
    compiled.dispose();
    a.refiner.dispose();
    b.refiner.dispose();
  });

  it('outputs a gradient for every weight and, when asked, for the text embeddings', () => {
    const { refiner } = setup(3, 'frozen');
    const outputs = (textGrad: boolean) => denoiserTrainGraph(refiner.denoiser, { batch: 2, textLength: 5, textGrad }).outputs.map((o) => o.name);
    const withText = outputs(true);
    for (const name of Object.keys(refiner.denoiser.variables())) expect(withText).toContain(`grad:${name}`);
    expect(withText).toEqual(expect.arrayContaining(['loss', 'grad_sq', 'grad:text']));
    expect(outputs(false)).not.toContain('grad:text');
    refiner.dispose();
  });
});
