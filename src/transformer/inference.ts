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
 *
 * An autoregressive model decodes through `nextTokenFunction`: one position a call. Compiled, that
 * is one small step with a key/value cache (onnx-step-graph.ts): N calls of one token each instead
 * of N passes over the whole grid. On the other backends it is the tfjs model's full-sequence pass,
 * read at the position's row: the reference the cached steps are tested against.
 */
import * as tf from '@tensorflow/tfjs';
import { cachedModelSession, compiledByDefault, type ModelSession } from '../backend/onnx/model-session.js';
import { tensorValues } from '../nn/values.js';
import type { MaskedTransformer, TextContext } from './model.js';
import { transformerGraph } from './onnx-graph.js';
import { crossKeysGraph, headShape, stepGraph, stepSelfBias } from './onnx-step-graph.js';

/** Tokens [B·N] (maskId where masked), optionally a cross-attention bias [B·N·L] (paint-with-words) → logits [B·N·K]. */
export type LogitsFn = (tokens: Int32Array, crossBias?: Float32Array) => Float32Array;

export interface LogitsOptions {
  /** Run the compiled ONNX Runtime session (default: when the backend is onnx). */
  compiled?: boolean;
}

/** `model`'s logits for `batch` token grids against `text` (B·L rows, B = batch). */
export function logitsFunction(model: MaskedTransformer, text: TextContext, batch: number, o: LogitsOptions = {}): LogitsFn {
  const length = checkText(text, batch);
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
    tensorValues(() => {
      const bias = crossBias ? tf.tensor3d(checkBias(crossBias, batch * n * length), [batch, n, length]) : undefined;
      return model.logits(tf.tensor2d(checkTokens(tokens, batch * n), [batch, n], 'int32'), text, bias);
    }) as Float32Array;
}

/**
 * An autoregressive model's logits at position t [B·K], given the input token at t for each of the
 * B grids (the start token, `maskId`, at t = 0, then the token drawn at t − 1). Calls go in order
 * t = 0, 1, …, N − 1; t = 0 starts a new decoding.
 */
export type NextTokenFn = (tokens: Int32Array, t: number) => Float32Array;

/** `model`'s next-token logits for `batch` grids decoded together against `text` (B·L rows). */
export function nextTokenFunction(model: MaskedTransformer, text: TextContext, batch: number, o: LogitsOptions = {}): NextTokenFn {
  const n = model.tokens;
  const k = model.config.codebookSize;
  let next = 0;
  const inOrder = (tokens: Int32Array, t: number) => {
    if (t !== 0 && t !== next) throw new Error(`transformer: decoding position ${t} after ${next - 1} (positions go 0, 1, …, ${n - 1})`);
    if (t >= n) throw new Error(`transformer: position ${t} is past the grid's ${n} tokens`);
    checkTokens(tokens, batch);
    next = t + 1;
  };
  if (!(o.compiled ?? compiledByDefault())) {
    const full = logitsFunction(model, text, batch, o);
    const grid = new Int32Array(batch * n).fill(model.maskId);
    return (tokens, t) => {
      inOrder(tokens, t);
      for (let b = 0; b < batch; b++) grid[b * n + t] = tokens[b]!;
      const logits = full(grid);
      const out = new Float32Array(batch * k);
      for (let b = 0; b < batch; b++) out.set(logits.subarray((b * n + t) * k, (b * n + t + 1) * k), b * k);
      return out;
    };
  }
  const length = checkText(text, batch);
  const { heads, dh } = headShape(model);
  const depth = model.config.depth;
  // the cache: per block, keys [B, H, dh, N] and values [B, H, N, dh]; slots ≥ t are hidden by self_bias
  const cache: Record<string, Float32Array> = {};
  for (let i = 0; i < depth; i++) {
    cache[`past_k.${i}`] = new Float32Array(batch * heads * dh * n);
    cache[`past_v.${i}`] = new Float32Array(batch * heads * n * dh);
  }
  const selfBias = new Float32Array(batch * (n + 1));
  // made on the first call: the sessions, the text's feeds and its cross-attention keys and values
  let feeds: Record<string, Float32Array> | undefined;
  let step: ModelSession | undefined;
  return (tokens, t) => {
    inOrder(tokens, t);
    if (!feeds) {
      const embeddings = text.embeddings.dataSync() as Float32Array;
      const crossKeys = cachedModelSession(model, model.variables(), `crosskv:${batch}x${length}`, () => crossKeysGraph(model, batch, length)).run({ text: embeddings });
      feeds = { ...(crossKeys as Record<string, Float32Array>), ...cache, text_bias: text.keyBias.dataSync() as Float32Array };
      step = cachedModelSession(model, model.variables(), `step:${batch}x${length}`, () => stepGraph(model, batch, length));
    }
    const out = step!.run({ ...feeds, token: tokens, position: Int32Array.of(t), self_bias: stepSelfBias(batch, n, t, selfBias) });
    for (let i = 0; i < depth; i++) {
      const kt = out[`k.${i}`] as Float32Array;
      const vt = out[`v.${i}`] as Float32Array;
      const pastK = cache[`past_k.${i}`]!;
      const pastV = cache[`past_v.${i}`]!;
      // k.i [B, H, dh, 1] → column t of [B, H, dh, N]; v.i [B, H, 1, dh] → row t of [B, H, N, dh]
      for (let r = 0; r < kt.length; r++) pastK[r * n + t] = kt[r]!;
      for (let bh = 0; bh < batch * heads; bh++) pastV.set(vt.subarray(bh * dh, (bh + 1) * dh), (bh * n + t) * dh);
    }
    return out.logits as Float32Array;
  };
}

/** The text length L of `text`, checked to hold `batch` prompts. */
function checkText(text: TextContext, batch: number): number {
  const length = text.keyBias.shape[1];
  if (text.keyBias.shape[0] !== batch || text.embeddings.shape[0] !== batch * length) {
    throw new Error(`transformer: text context for ${text.keyBias.shape[0]} prompts × ${length} tokens, asked for a batch of ${batch}`);
  }
  return length;
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
