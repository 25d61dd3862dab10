import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { GradTape } from '../../src/backend/onnx/autodiff.js';
import { ModelSession } from '../../src/backend/onnx/model-session.js';
import { expectCloseRelative } from './weights.js';

/** Layouts between tfjs (NHWC, HWIO kernels) and the tape's convolutions (NCHW, OIHW). */
export const NHWC_TO_NCHW = [0, 3, 1, 2];
export const NCHW_TO_NHWC = [0, 2, 3, 1];
export const HWIO_TO_OIHW = [3, 2, 0, 1];

export const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/**
 * Runs `graphOp` on a tape (`tape`, or a new one) and `tfOp` in tfjs on the same inputs; compares
 * the outputs and the gradient of every input for a random output gradient. Disposes `inputs`.
 */
export function expectSameGradients(
  inputs: Record<string, tf.Tensor>,
  graphOp: (t: GradTape, x: Record<string, string>) => string,
  tfOp: (...xs: tf.Tensor[]) => tf.Tensor,
  tol = 1e-4,
  tape = new GradTape(),
): void {
  const names = Object.keys(inputs);
  const x: Record<string, string> = {};
  for (const n of names) x[n] = tape.input(n, 'float32', inputs[n]!.shape, true);
  const y = graphOp(tape, x);
  const yDims = tape.shape(y);
  const seed = tape.input('dy', 'float32', yDims);
  const grads = tape.backward(y, seed, names.map((n) => x[n]!));
  tape.g.output(y, 'y', 'float32', yDims);
  for (const n of names) tape.g.output(grads[x[n]!]!, `grad:${n}`, 'float32', inputs[n]!.shape);
  const session = new ModelSession(tape.g.build(), 1);

  const expected = tf.tidy(() => tfOp(...names.map((n) => inputs[n]!)));
  expect(expected.shape).toEqual([...yDims]);
  const dy = tf.randomNormal(expected.shape, 0, 1, 'float32', 7);
  const feeds: Record<string, Float32Array> = { dy: dy.dataSync() as Float32Array };
  for (const n of names) feeds[n] = inputs[n]!.dataSync() as Float32Array;
  const out = session.run(feeds);
  expectCloseRelative(out.y as Float32Array, expected.dataSync() as Float32Array, tol, 1e-3);
  const ref = tf.grads(tfOp)(names.map((n) => inputs[n]!), dy);
  names.forEach((n, i) => {
    try {
      expectCloseRelative(out[`grad:${n}`] as Float32Array, ref[i]!.dataSync() as Float32Array, tol, 1e-3);
    } catch (err) {
      throw new Error(`gradient of ${n}: ${(err as Error).message}`);
    }
  });
  tf.dispose([expected, dy, ...ref, ...Object.values(inputs)]);
}
