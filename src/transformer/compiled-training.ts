/**
 * The masked transformer's gradients from one ONNX Runtime session a step (onnx-train-graph.ts):
 * forward, loss and backward in one native call, the weights read in place from the tfjs variables
 * and the gradients handed back as tfjs tensors for the optimizer. The trainer uses it on the onnx
 * backend; elsewhere (and with `compiled: false`) gradients come from tfjs autograd.
 *
 * Sessions are compiled once per batch size, text length, label smoothing and whether the text
 * embeddings need a gradient, and kept for the model's lifetime (backend/onnx/train-step.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { runTrainStep, trainSession } from '../backend/onnx/train-step.js';
import type { MaskedTransformer } from './model.js';
import { TEXT_WEIGHT_PREFIX, transformerTrainGraph, type TrainGraphOptions } from './onnx-train-graph.js';

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

/** Loss, hits and gradients of one masked batch, computed in one ONNX Runtime session. */
export function compiledGrads(model: MaskedTransformer, batch: CompiledBatch, labelSmoothing: number, textGrad: boolean): CompiledGrads {
  const [b, textLength] = batch.text.keyBias.shape;
  if (batch.input.length !== b * model.tokens) throw new Error(`transformer: ${batch.input.length} tokens for ${b} prompts of ${model.tokens}`);
  const o: TrainGraphOptions = { batch: b, textLength, labelSmoothing, textGrad };
  const session = trainSession(model, `${b}x${textLength}|${labelSmoothing}|${textGrad}`, () => transformerTrainGraph(model, o));
  const { grads, sumSquares, out } = runTrainStep(session, model.variables(), {
    tokens: batch.input,
    targets: batch.targets,
    weights: batch.weights,
    text: batch.text.embeddings.dataSync() as Float32Array,
    text_bias: batch.text.keyBias.dataSync() as Float32Array,
  });
  return {
    loss: (out.loss as Float32Array)[0]!,
    correct: (out.correct as Float32Array)[0]!,
    grads,
    sumSquares,
    textGrad: textGrad ? tf.tensor2d(out['grad:text'] as Float32Array, batch.text.embeddings.shape) : undefined,
  };
}

/** A batch whose text is encoded inside the session by a builtin encoder being trained (onnx-train-graph.ts `textEncoder`). */
export interface EncoderBatch extends Omit<CompiledBatch, 'text'> {
  text: {
    /** [B·L] the prompts' token ids. */
    ids: Int32Array;
    /** [B·L] 0 where a real token, PAD_BIAS where padding. */
    keyBias: Float32Array;
    /** L, the encoder's maxLength. */
    length: number;
    encoder: NonNullable<TrainGraphOptions['textEncoder']>;
  };
}

/**
 * Loss, hits and gradients of one masked batch with the text encoder inside the same session: the
 * gradients come back under the model's weight names and, for the encoder's, `text:` + their
 * names relative to it; `sumSquares` covers both.
 */
export function compiledGradsWithEncoder(model: MaskedTransformer, batch: EncoderBatch, labelSmoothing: number): CompiledGrads {
  const { ids, keyBias, length, encoder } = batch.text;
  const b = ids.length / length;
  if (batch.input.length !== b * model.tokens) throw new Error(`transformer: ${batch.input.length} tokens for ${b} prompts of ${model.tokens}`);
  const vocab = encoder.variables.tok_emb?.shape[0];
  const sh = encoder.shape;
  const key = `${b}x${length}|${labelSmoothing}|text ${vocab}x${sh.dim}x${sh.depth}x${sh.heads}`;
  const o: TrainGraphOptions = { batch: b, textLength: length, labelSmoothing, textGrad: false, textEncoder: encoder };
  const session = trainSession(model, key, () => transformerTrainGraph(model, o));
  const textVars = Object.fromEntries(Object.entries(encoder.variables).map(([k, v]) => [`${TEXT_WEIGHT_PREFIX}${k}`, v]));
  const { grads, sumSquares, out } = runTrainStep(session, { ...model.variables(), ...textVars }, {
    tokens: batch.input,
    targets: batch.targets,
    weights: batch.weights,
    text_ids: ids,
    text_bias: keyBias,
  });
  return { loss: (out.loss as Float32Array)[0]!, correct: (out.correct as Float32Array)[0]!, grads, sumSquares };
}
