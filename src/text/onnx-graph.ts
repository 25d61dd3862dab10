/**
 * The builtin text encoder (builtin.ts) written into an ONNX graph with nn/onnx-layers.ts, so that a
 * compiled training step can run it and take its gradients in the same session as the model that
 * attends to it, instead of a tfjs tape around the session. The same math as `encode`: token
 * embeddings plus positions, pre-LN blocks whose self-attention skips padded keys, a final
 * LayerNorm. Its weights are the graph's under `prefix` + their names relative to the encoder.
 */
import type { GraphLayers } from '../nn/onnx-layers.js';

export interface TextGraphShape {
  batch: number;
  /** Tokens per prompt (the encoder's maxLength). */
  length: number;
  dim: number;
  depth: number;
  heads: number;
}

/** `ids` int32 [B·L] and `keyBias` [B, L] (0 or PAD_BIAS) → the embeddings [B·L, dim]. */
export function builtinTextGraph(nn: GraphLayers, ids: string, keyBias: string, s: TextGraphShape, prefix: string): string {
  const { t } = nn;
  const tokens = t.reshape(t.gather(nn.weight(`${prefix}tok_emb`), ids), [s.batch, s.length, s.dim]);
  let x = t.reshape(t.add(tokens, nn.weight(`${prefix}pos`)), [s.batch * s.length, s.dim]);
  for (let i = 0; i < s.depth; i++) {
    x = nn.block(x, { batch: s.batch, t: s.length, heads: s.heads, selfBias: keyBias, selfBiasPerKey: true }, `${prefix}blocks.${i}`);
  }
  return nn.layerNorm(x, `${prefix}ln_out`);
}
