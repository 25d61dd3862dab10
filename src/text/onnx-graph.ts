/**
 * The builtin text encoder (builtin.ts) written into an ONNX graph with nn/onnx-layers.ts, so that a
 * compiled training step can run it and take its gradients in the same session as the model that
 * attends to it, instead of a tfjs tape around the session. The same math as `encode`: token
 * embeddings plus positions, pre-LN blocks whose self-attention skips padded keys, a final
 * LayerNorm. In a graph its weights are named `text:` + their names relative to the encoder.
 */
import type * as tf from '@tensorflow/tfjs';
import type { GraphLayers } from '../nn/onnx-layers.js';

/** The prefix of a text encoder's weights in a graph that runs it. */
export const TEXT_WEIGHT_PREFIX = 'text:';

/** A builtin encoder as a training graph needs it: its shape, and its weights by their names relative to it. */
export interface TextGraph {
  dim: number;
  depth: number;
  heads: number;
  variables: Record<string, tf.Variable>;
}

/** The encoder's weights under their graph names (for GraphLayers and the session's feeds). */
export function textGraphWeights(e: TextGraph | undefined): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(e?.variables ?? {}).map(([k, v]) => [`${TEXT_WEIGHT_PREFIX}${k}`, v]));
}

/** `ids` int32 [B·L] and `keyBias` [B, L] (0 or PAD_BIAS) → the embeddings [B·L, dim]. */
export function builtinTextGraph(nn: GraphLayers, ids: string, keyBias: string, e: TextGraph, batch: number, length: number): string {
  const { t } = nn;
  const p = TEXT_WEIGHT_PREFIX;
  const tokens = t.reshape(t.gather(nn.weight(`${p}tok_emb`), ids), [batch, length, e.dim]);
  let x = t.reshape(t.add(tokens, nn.weight(`${p}pos`)), [batch * length, e.dim]);
  for (let i = 0; i < e.depth; i++) {
    x = nn.block(x, { batch, t: length, heads: e.heads, selfBias: keyBias, selfBiasPerKey: true }, `${p}blocks.${i}`);
  }
  return nn.layerNorm(x, `${p}ln_out`);
}

/**
 * The text a training graph attends to, [B·L, dim]: the input `text` (differentiable when
 * `textGrad`, so that the session outputs its gradient), or, with `encoder`, the encoder run in the
 * graph from the input `text_ids` int32 [B·L].
 */
export function graphText(nn: GraphLayers, o: { batch: number; length: number; dim: number; textGrad?: boolean; encoder?: TextGraph }, keyBias: string): string {
  const { t } = nn;
  if (!o.encoder) return t.input('text', 'float32', [o.batch * o.length, o.dim], o.textGrad ?? false);
  if (o.textGrad) throw new Error('training graph: the text encoder runs in the graph, so there is no text gradient to output');
  return builtinTextGraph(nn, t.input('text_ids', 'int32', [o.batch * o.length]), keyBias, o.encoder, o.batch, o.length);
}
