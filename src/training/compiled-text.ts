/**
 * A compiled training step for a model that attends to a text encoder (the masked transformer, the
 * refiner's denoiser): the step runs as one ONNX Runtime session, and the prompts reach it in one of
 * three ways (`StepText`):
 *
 * - the builtin encoder runs inside the session (text/onnx-graph.ts): the session is given the
 *   token ids and the encoder's weights, and returns the encoder's gradients with the model's;
 * - another trainable encoder encodes on the tfjs tape, and takes its gradient from the session's
 *   gradient of the text embeddings (a vector-Jacobian product);
 * - a frozen encoder is just run, and the session is given its embeddings.
 */
import * as tf from '@tensorflow/tfjs';
import type { KnownSquares } from '../nn/optim.js';
import { valueAndGrads } from '../nn/params.js';
import { BuiltinTextEncoder } from '../text/builtin.js';
import type { TextEncoder } from '../text/encoder.js';
import { TEXT_WEIGHT_PREFIX, type TextGraph } from '../text/onnx-graph.js';

/** What a compiled step's session is given of the prompts. */
export interface StepText {
  /** The session's text feeds: `text` [B·L, dim] (embeddings) or `text_ids` [B·L], and `text_bias` [B, L]. */
  feeds: { text?: Float32Array; text_ids?: Int32Array; text_bias: Float32Array };
  /** L, text tokens a prompt. */
  length: number;
  /** The session also outputs the gradient of the embeddings (`grad:text`), for an encoder outside it. */
  textGrad: boolean;
  /** The encoder the session runs, when it runs one. */
  encoder?: TextGraph;
  /** What tells this text's sessions apart (for the session cache). */
  key: string;
}

/** Embeddings made outside the session (a frozen encoder's, or one on the tfjs tape when `textGrad`). */
export function embeddingsText(enc: { embeddings: tf.Tensor2D; keyBias: tf.Tensor2D }, textGrad: boolean): StepText {
  const length = enc.keyBias.shape[1]!;
  return {
    feeds: { text: enc.embeddings.dataSync() as Float32Array, text_bias: enc.keyBias.dataSync() as Float32Array },
    length,
    textGrad,
    key: `embeddings|${textGrad}`,
  };
}

/** What a compiled step gives back: its weight gradients (under the graph's names), their sum of squares, and d loss / d embeddings when asked. */
export interface CompiledStepGrads {
  grads: Record<string, tf.Tensor>;
  sumSquares: number;
  textGrad?: tf.Tensor;
}

/**
 * Runs `run` on the prompts' `StepText` and returns its output with every gradient keyed like the
 * trainer's variables: the model's under `prefix` + its weight name, a trainable encoder's under the
 * `text/` names of `vars`. `squares` covers what the session summed (the encoder's too when it ran inside).
 */
export function compiledStepWithText<T extends CompiledStepGrads>(
  text: TextEncoder,
  vars: Record<string, tf.Variable>,
  prompts: string[],
  prefix: string,
  run: (text: StepText) => T,
): { out: T; grads: Record<string, tf.Tensor>; squares: KnownSquares } {
  if (text instanceof BuiltinTextEncoder) return inSession(text, prompts, prefix, run);
  let out!: T;
  let textGrads: Record<string, tf.Tensor> = {};
  if (text.trainable) {
    const textVars = Object.fromEntries(Object.entries(vars).filter(([k]) => k.startsWith('text/')));
    const { value, grads } = valueAndGrads(() => {
      const enc = text.encode(prompts);
      out = run(embeddingsText(enc, true));
      for (const g of Object.values(out.grads)) tf.keep(g); // the session's weight gradients outlive the tape's clean-up
      return tf.sum(tf.mul(enc.embeddings, out.textGrad!)) as tf.Scalar;
    }, textVars);
    value.dispose();
    textGrads = grads;
  } else {
    const enc = text.encode(prompts);
    out = run(embeddingsText(enc, false));
    tf.dispose([enc.embeddings, enc.keyBias]);
  }
  const grads: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(out.grads)) grads[`${prefix}${k}`] = g;
  return { out, grads: { ...grads, ...textGrads }, squares: { sum: out.sumSquares, names: new Set(Object.keys(grads)) } };
}

/**
 * The builtin encoder inside the session: its forward and backward on the tfjs tape around the
 * session took ~10 % of the emoji recipe's transformer step.
 */
function inSession<T extends CompiledStepGrads>(text: BuiltinTextEncoder, prompts: string[], prefix: string, run: (text: StepText) => T) {
  const c = text.config;
  const local = text.localVariables();
  const { ids, keyBias } = text.inputs(prompts);
  const vocab = local.tok_emb?.shape[0];
  const out = run({
    feeds: { text_ids: ids, text_bias: keyBias },
    length: text.maxLength,
    textGrad: false,
    encoder: { dim: c.dim, depth: c.depth, heads: c.heads, variables: local },
    key: `builtin ${vocab}x${c.dim}x${c.depth}x${c.heads}`,
  });
  // graph names → the trainer's: the encoder's (relative names) to text/ + its store name
  const storeName = new Map(Object.entries(text.variables()).map(([name, v]) => [v, name]));
  const textName = new Map(Object.entries(local).map(([name, v]) => [`${TEXT_WEIGHT_PREFIX}${name}`, `text/${storeName.get(v)}`]));
  const grads: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(out.grads)) grads[textName.get(k) ?? `${prefix}${k}`] = g;
  return { out, grads, squares: { sum: out.sumSquares, names: new Set(Object.keys(grads)) } };
}
