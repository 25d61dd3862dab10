/**
 * The transformer as decoding calls it: a function from token grids to logits, for one text
 * context that stays fixed over the decoding steps.
 *
 * On the onnx backend the whole forward pass is one ONNX Runtime session (onnx-graph.ts): one
 * native call per step instead of ~460 tfjs kernels, each with its own trip into ORT (measured at
 * the peer configuration, batch 2: ~5 ms a step against ~30). Sessions are compiled on first use
 * for each batch size and text length and kept while the model's weights stay the same (a weight
 * assigned since, e.g. by training, makes the next call compile afresh). On every other backend the
 * model runs as tfjs ops.
 */
import * as tf from '@tensorflow/tfjs';
import { cachedModelSession, compiledByDefault, type ModelSession } from '../backend/onnx/model-session.js';
import type { MaskedTransformer, TextContext } from './model.js';
import { transformerGraph } from './onnx-graph.js';

/** Tokens [B·N] (maskId where masked), optionally a cross-attention bias [B·N·L] (paint-with-words) → logits [B·N·K]. */
export type LogitsFn = (tokens: Int32Array, crossBias?: Float32Array) => Float32Array;

export interface LogitsOptions {
  /** Run the compiled ONNX Runtime session (default: when the backend is onnx). */
  compiled?: boolean;
}

/** `model`'s logits for `batch` token grids against `text` (B·L rows, B = batch). */
export function logitsFunction(model: MaskedTransformer, text: TextContext, batch: number, o: LogitsOptions = {}): LogitsFn {
  const length = text.keyBias.shape[1];
  if (text.keyBias.shape[0] !== batch || text.embeddings.shape[0] !== batch * length) {
    throw new Error(`transformer: text context for ${text.keyBias.shape[0]} prompts × ${length} tokens, asked for a batch of ${batch}`);
  }
  const n = model.tokens;
  if (o.compiled ?? compiledByDefault()) {
    // compiled on the first call (a branch that decoding never calls costs nothing)
    let session: ModelSession | undefined;
    let biased: ModelSession | undefined;
    let feeds: { text: Float32Array; text_bias: Float32Array } | undefined;
    return (tokens, crossBias) => {
      feeds ??= { text: text.embeddings.dataSync() as Float32Array, text_bias: text.keyBias.dataSync() as Float32Array };
      if (crossBias) {
        biased ??= compiledSession(model, batch, length, true);
        return biased.run({ ...feeds, tokens: checkTokens(tokens, batch * n), cross_bias: checkBias(crossBias, batch * n * length) }).logits as Float32Array;
      }
      session ??= compiledSession(model, batch, length);
      return session.run({ ...feeds, tokens: checkTokens(tokens, batch * n) }).logits as Float32Array;
    };
  }
  return (tokens, crossBias) =>
    tf.tidy(() => {
      const bias = crossBias ? tf.tensor3d(checkBias(crossBias, batch * n * length), [batch, n, length]) : undefined;
      return model.logits(tf.tensor2d(checkTokens(tokens, batch * n), [batch, n], 'int32'), text, bias).dataSync() as Float32Array;
    });
}

function checkBias(bias: Float32Array, size: number): Float32Array {
  if (bias.length !== size) throw new Error(`transformer: expected a cross-attention bias of ${size} values, got ${bias.length}`);
  return bias;
}

function checkTokens(tokens: Int32Array, size: number): Int32Array {
  if (tokens.length !== size) throw new Error(`transformer: expected ${size} tokens, got ${tokens.length}`);
  return tokens;
}

/** The session for `model` at this batch size and text length, with a `cross_bias` input or not (compiled again once its weights change). */
export function compiledSession(model: MaskedTransformer, batch: number, textLength: number, crossBias = false): ModelSession {
  return cachedModelSession(model, model.variables(), `${batch}x${textLength}${crossBias ? 'xbias' : ''}`, () => transformerGraph(model, batch, textLength, { crossBias }));
}
