import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { ConvAutoencoder } from '../src/diffusion-refiner/autoencoder.js';
import { RefinerTrainSchema } from '../src/diffusion-refiner/config.js';
import { autoencoderTrainGraph } from '../src/diffusion-refiner/onnx-train-graph.js';
import { AutoencoderTrainer } from '../src/diffusion-refiner/trainer.js';
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
