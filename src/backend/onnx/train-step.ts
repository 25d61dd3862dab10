/**
 * Running a compiled training step (a graph that GraphLayers ended with `outputGradients`): the
 * weights are read in place from the tfjs variables, the gradients come back as tfjs tensors for
 * the optimizer. Sessions are kept per model and key (batch shape, options) for the model's
 * lifetime: weights are inputs, so training does not invalidate them.
 */
import * as tf from '@tensorflow/tfjs';
import type { OrtData } from './binding.js';
import type { GraphSpec } from './graphs.js';
import { ModelSession } from './model-session.js';
import { takeFloat32 } from './pool.js';
import { peekFloat32 } from './backend.js';

export interface TrainStepResult {
  /** Per weight name, as tensors the caller disposes. */
  grads: Record<string, tf.Tensor>;
  /** Σ of the squares of every entry of `grads` (for clipping by global norm). */
  sumSquares: number;
  /** Every other output of the graph, by name (the loss, metrics). */
  out: Record<string, OrtData>;
}

const sessions = new WeakMap<object, Map<string, ModelSession>>();

/** The training session of `model` under `key`, built from `build()` on first use. */
export function trainSession(model: object, key: string, build: () => GraphSpec): ModelSession {
  let byKey = sessions.get(model);
  if (!byKey) sessions.set(model, (byKey = new Map()));
  let s = byKey.get(key);
  if (!s) byKey.set(key, (s = new ModelSession(build())));
  return s;
}

/** One step: `feeds` (the batch) plus every weight of `vars` under its name. */
export function runTrainStep(session: ModelSession, vars: Record<string, tf.Variable>, feeds: Record<string, OrtData>): TrainStepResult {
  const all: Record<string, OrtData> = { ...feeds };
  // read in place and not disowned: when the optimizer replaces a weight, its old buffer goes back to the pool
  for (const [name, v] of Object.entries(vars)) all[name] = peekFloat32(v);
  // The gradients go straight into tensors, which hand their buffers back to the pool when the
  // optimizer disposes them: the next step's gradients reuse them instead of ~4 bytes a weight of
  // fresh, zeroed memory.
  const out = session.run(all, (v, size) => (v.dtype === 'float32' && v.name.startsWith('grad:') && v.name.slice(5) in vars ? takeFloat32(size) : undefined));
  const grads: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(vars)) grads[name] = tf.tensor(out[`grad:${name}`] as Float32Array, v.shape, 'float32');
  return { grads, sumSquares: (out.grad_sq as Float32Array)[0]!, out };
}
