/**
 * Training the masked transformer (and the built-in text encoder with it) one step at a time:
 * `computeGrads` then `applyGrads`, as for the tokenizer. Batches are token grids from the frozen
 * tokenizer (cached once per data set) with their captions.
 */
import * as tf from '@tensorflow/tfjs';
import { valueAndGrads } from '../nn/params.js';
import { Rng } from '../random.js';
import type { TextEncoder } from '../text/encoder.js';
import { Optimized, scheduleOf } from '../training/optimized.js';
import type { TransformerTrainConfig } from './config.js';
import { maskBatch, maskedCrossEntropy } from './masking.js';
import type { MaskedTransformer } from './model.js';

export interface TransformerStepMetrics {
  loss: number;
  /** Share of masked tokens predicted exactly (argmax). */
  accuracy: number;
  gradNorm: number;
  lr: number;
}

export interface TransformerGrads {
  grads: Record<string, tf.Tensor>;
  loss: number;
  accuracy: number;
}

/** The trainable variables of the transformer and (when trainable) the text encoder, with disjoint names. */
export function trainableVariables(model: MaskedTransformer, text: TextEncoder): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(model.variables())) out[`transformer/${k}`] = v;
  if (text.trainable) for (const [k, v] of Object.entries(text.variables())) out[`text/${k}`] = v;
  return out;
}

export class TransformerTrainer extends Optimized {
  private readonly rng: Rng;

  constructor(readonly model: MaskedTransformer, readonly text: TextEncoder, readonly train: TransformerTrainConfig) {
    // AdamW decays rank ≥ 2 tensors (the embedding's [MASK] row included).
    super(trainableVariables(model, text), scheduleOf(train, 0.96));
    this.rng = new Rng(train.seed + 11);
  }

  /**
   * One batch: `tokens` [B·N] (the tokenizer's ids) and B captions. Masks a cosine-scheduled share of
   * each grid and drops captions to the null prompt at `condDropout`.
   */
  computeGrads(tokens: Int32Array, captions: string[]): TransformerGrads {
    const b = captions.length;
    const n = this.model.tokens;
    const { input, masked } = maskBatch(tokens, b, n, this.model.maskId, this.rng);
    const prompts = captions.map((c) => (this.rng.next() < this.train.condDropout ? '' : c));
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
    let maskedCount = 0;
    for (let i = 0; i < masked.length; i++) maskedCount += masked[i]!;
    tf.dispose([value, correct!, inputT, targetT, weightT]);
    return { grads, loss, accuracy: hits / Math.max(1, maskedCount) };
  }

  /** Clips and applies gradients (disposing them). */
  override applyGrads(g: TransformerGrads): TransformerStepMetrics {
    return { ...super.applyGrads(g), accuracy: g.accuracy };
  }

  trainStep(tokens: Int32Array, captions: string[]): TransformerStepMetrics {
    return this.applyGrads(this.computeGrads(tokens, captions));
  }
}
