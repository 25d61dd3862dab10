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
import { embeddingsText, type StepText } from '../training/compiled-text.js';
import { textGraphWeights } from '../text/onnx-graph.js';
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

/** Loss, hits and gradients of one masked batch, computed in one ONNX Runtime session, from text embeddings. */
export function compiledGrads(model: MaskedTransformer, batch: CompiledBatch, labelSmoothing: number, textGrad: boolean): CompiledGrads {
  return compiledStepGrads(model, batch, embeddingsText(batch.text, textGrad), labelSmoothing);
}

/**
 * The same with the prompts as a compiled step takes them (training/compiled-text.ts): embeddings, or
 * the builtin encoder run inside the session, whose gradients then come back under `text:` + their
 * names relative to it and count in `sumSquares`.
 */
export function compiledStepGrads(model: MaskedTransformer, batch: Omit<CompiledBatch, 'text'>, text: StepText, labelSmoothing: number): CompiledGrads {
  const b = text.feeds.text_bias.length / text.length;
  if (batch.input.length !== b * model.tokens) throw new Error(`transformer: ${batch.input.length} tokens for ${b} prompts of ${model.tokens}`);
  const o: TrainGraphOptions = { batch: b, textLength: text.length, labelSmoothing, textGrad: text.textGrad, textEncoder: text.encoder };
  const session = trainSession(model, `${b}x${text.length}|${labelSmoothing}|${text.key}`, () => transformerTrainGraph(model, o));
  const { grads, sumSquares, out } = runTrainStep(session, { ...model.variables(), ...textGraphWeights(text.encoder) }, {
    tokens: batch.input,
    targets: batch.targets,
    weights: batch.weights,
    ...text.feeds,
  });
  return {
    loss: (out.loss as Float32Array)[0]!,
    correct: (out.correct as Float32Array)[0]!,
    grads,
    sumSquares,
    textGrad: text.textGrad ? tf.tensor2d(out['grad:text'] as Float32Array, [b * text.length, model.config.textDim]) : undefined,
  };
}
