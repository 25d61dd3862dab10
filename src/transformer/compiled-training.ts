/**
 * The masked transformer's gradients from one ONNX Runtime session a step (onnx-train-graph.ts):
 * forward, loss and backward in one native call, the weights read in place from the tfjs variables
 * and the gradients handed back as tfjs tensors for the optimizer. The trainer uses it on the onnx
 * backend; elsewhere (and with `compiled: false`) gradients come from tfjs autograd.
 *
 * Sessions are compiled once per batch size, text length, label smoothing and whether the text
 * embeddings need a gradient, and kept for the model's lifetime (weights are inputs, so training
 * does not invalidate them).
 */
import * as tf from '@tensorflow/tfjs';
import { ModelSession } from '../backend/onnx/model-session.js';
import type { MaskedTransformer } from './model.js';
import { transformerTrainGraph, type TrainGraphOptions } from './onnx-train-graph.js';

export interface CompiledGrads {
  loss: number;
  /** Masked tokens whose argmax is the target. */
  correct: number;
  /** Per model weight name, as tensors the caller disposes. */
  grads: Record<string, tf.Tensor>;
  /** Σ of the squares of every entry of `grads` (for clipping by global norm). */
  sumSquares: number;
  /** d loss / d text embeddings [B·L, textDim] when asked for (the caller disposes it). */
  textGrad?: tf.Tensor2D;
}

export interface CompiledBatch {
  /** [B·N] with maskId where masked. */
  input: Int32Array;
  /** [B·N] the true tokens. */
  targets: Int32Array;
  /** [B·N] 1 where masked. */
  weights: Float32Array;
  text: { embeddings: tf.Tensor2D; keyBias: tf.Tensor2D };
}

const sessions = new WeakMap<MaskedTransformer, Map<string, ModelSession>>();

function sessionFor(model: MaskedTransformer, o: TrainGraphOptions): ModelSession {
  let byKey = sessions.get(model);
  if (!byKey) sessions.set(model, (byKey = new Map()));
  const key = `${o.batch}x${o.textLength}|${o.labelSmoothing}|${o.textGrad}`;
  let s = byKey.get(key);
  if (!s) byKey.set(key, (s = new ModelSession(transformerTrainGraph(model, o))));
  return s;
}

/** Loss, hits and gradients of one masked batch, computed in one ONNX Runtime session. */
export function compiledGrads(model: MaskedTransformer, batch: CompiledBatch, labelSmoothing: number, textGrad: boolean): CompiledGrads {
  const [b, textLength] = batch.text.keyBias.shape;
  if (batch.input.length !== b * model.tokens) throw new Error(`transformer: ${batch.input.length} tokens for ${b} prompts of ${model.tokens}`);
  const session = sessionFor(model, { batch: b, textLength, labelSmoothing, textGrad });
  const vars = model.variables();
  const feeds: Record<string, Float32Array | Int32Array> = {
    tokens: batch.input,
    targets: batch.targets,
    weights: batch.weights,
    text: batch.text.embeddings.dataSync() as Float32Array,
    text_bias: batch.text.keyBias.dataSync() as Float32Array,
  };
  for (const [name, v] of Object.entries(vars)) feeds[name] = v.dataSync() as Float32Array;
  const out = session.run(feeds);
  const grads: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(vars)) grads[name] = tf.tensor(out[`grad:${name}`] as Float32Array, v.shape, 'float32');
  return {
    loss: (out.loss as Float32Array)[0]!,
    correct: (out.correct as Float32Array)[0]!,
    grads,
    sumSquares: (out.grad_sq as Float32Array)[0]!,
    textGrad: textGrad ? tf.tensor2d(out['grad:text'] as Float32Array, batch.text.embeddings.shape) : undefined,
  };
}
