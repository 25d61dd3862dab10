/**
 * Training the masked transformer (and the built-in text encoder with it) one step at a time:
 * `computeGrads` then `applyGrads`, as for the tokenizer. Batches are token grids from the frozen
 * tokenizer (cached once per data set) with their captions.
 */
import * as tf from '@tensorflow/tfjs';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { valueAndGrads } from '../nn/params.js';
import { Rng } from '../random.js';
import type { TextEncoder } from '../text/encoder.js';
import { compiledStepWithText, type StepText } from '../training/compiled-text.js';
import { Optimized, scheduleOf, type Grads } from '../training/optimized.js';
import { compiledStepGrads } from './compiled-training.js';
import type { TransformerTrainConfig } from './config.js';
import { maskBatch, maskedCrossEntropy, shiftRight } from './masking.js';
import type { MaskedTransformer } from './model.js';

export interface TransformerStepMetrics {
  loss: number;
  /** Share of masked tokens predicted exactly (argmax). */
  accuracy: number;
  gradNorm: number;
  lr: number;
}

export interface TransformerGrads extends Grads {
  accuracy: number;
}

/** The trainable variables of the transformer and (when trainable) the text encoder, with disjoint names. */
export function trainableVariables(model: MaskedTransformer, text: TextEncoder): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(model.variables())) out[`transformer/${k}`] = v;
  if (text.trainable) for (const [k, v] of Object.entries(text.variables())) out[`text/${k}`] = v;
  return out;
}

export interface TransformerTrainerOptions {
  /**
   * Gradients from the whole step compiled to one ONNX Runtime session (compiled-training.ts)
   * instead of tfjs autograd. Default: on the onnx backend.
   */
  compiled?: boolean;
}

export class TransformerTrainer extends Optimized {
  private readonly rng: Rng;
  readonly compiled: boolean;

  constructor(readonly model: MaskedTransformer, readonly text: TextEncoder, readonly train: TransformerTrainConfig, o: TransformerTrainerOptions = {}) {
    // AdamW decays rank ≥ 2 tensors (the embedding's [MASK] row included).
    super(trainableVariables(model, text), scheduleOf(train, 0.96));
    this.rng = this.rngs.masking = new Rng(train.seed + 11);
    this.compiled = o.compiled ?? compiledByDefault();
  }

  /**
   * One batch: `tokens` [B·N] (the tokenizer's ids) and B captions. Masks a cosine-scheduled share of
   * each grid (autoregressive models: shifts it right) and drops captions to the null prompt at `condDropout`.
   */
  computeGrads(tokens: Int32Array, captions: string[]): TransformerGrads {
    const b = captions.length;
    const n = this.model.tokens;
    // masked: a cosine share of each grid masked, predicted where masked; autoregressive: every token
    // predicted from those before it (the input shifted right, [MASK] as the start token).
    const { input, masked } =
      this.model.config.objective === 'autoregressive'
        ? { input: shiftRight(tokens, b, n, this.model.maskId), masked: new Float32Array(b * n).fill(1) }
        : maskBatch(tokens, b, n, this.model.maskId, this.rng);
    const prompts = captions.map((c) => (this.rng.next() < this.train.condDropout ? '' : c));
    let maskedCount = 0;
    for (let i = 0; i < masked.length; i++) maskedCount += masked[i]!;
    if (this.compiled) return this.compiledStep(input, tokens, masked, prompts, maskedCount);
    const inputT = tf.tensor2d(input, [b, n], 'int32');
    const targetT = tf.tensor1d(tokens, 'int32');
    const weightT = tf.tensor1d(masked, 'float32');
    let correct: tf.Tensor | undefined;
    const { value, grads } = valueAndGrads(() => {
      const enc = this.text.encode(prompts);
      const logits = this.model.logits(inputT, { embeddings: enc.embeddings, keyBias: enc.keyBias });
      correct = tf.keep(tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), targetT), 'float32'), weightT)));
      return maskedCrossEntropy(logits, targetT, weightT, this.train.labelSmoothing);
    }, this.vars);
    const loss = value.dataSync()[0]!;
    const hits = correct!.dataSync()[0]!;
    tf.dispose([value, correct!, inputT, targetT, weightT]);
    return { grads, loss, accuracy: hits / Math.max(1, maskedCount) };
  }

  /**
   * The same batch through one compiled ONNX Runtime session, the prompts as `compiledStepWithText`
   * gives them (the builtin encoder inside the session; another trainable one through the gradient
   * of its embeddings).
   */
  private compiledStep(input: Int32Array, targets: Int32Array, masked: Float32Array, prompts: string[], maskedCount: number): TransformerGrads {
    const run = (text: StepText) => compiledStepGrads(this.model, { input, targets, weights: masked }, text, this.train.labelSmoothing);
    const { out, grads, squares } = compiledStepWithText(this.text, this.vars, prompts, 'transformer/', run);
    return { grads, loss: out.loss, accuracy: out.correct / Math.max(1, maskedCount), squares };
  }

  /** Clips and applies gradients (disposing them). */
  override applyGrads(g: TransformerGrads): TransformerStepMetrics {
    return { ...super.applyGrads(g), accuracy: g.accuracy };
  }

  trainStep(tokens: Int32Array, captions: string[]): TransformerStepMetrics {
    return this.applyGrads(this.computeGrads(tokens, captions));
  }
}
