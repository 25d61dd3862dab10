/**
 * An autoregressive transformer's decoding step with a key/value cache, as two ONNX graphs with
 * the model's weights baked in (nn/onnx-layers.ts, as onnx-graph.ts writes the whole forward pass):
 *
 * - `crossKeysGraph`: the text [B·L, textDim] → every block's cross-attention keys `cross_k.i`
 *   [B, H, dh, L] and values `cross_v.i` [B, H, L, dh]. The text is fixed over decoding, so they are
 *   made once per decoding and fed to every step, not recomputed a step: at maskgen's sizes (12
 *   text tokens of 128 dims, width 192) making them costs about as many FLOPs as the rest of a
 *   one-token step.
 * - `stepGraph`: the input token at position t (`token` int32 [B]: the start token at t = 0, then
 *   the token drawn at t − 1), `position` int32 [1] = t, and every block's self-attention keys
 *   `past_k.i` [B, H, dh, N] and values `past_v.i` [B, H, N, dh] of the positions before t →
 *   `logits` [B, K] at t and the block's keys `k.i` [B, H, dh, 1] and values `v.i` [B, H, 1, dh]
 *   at t, for the caller to write into slot t of its cache. The self-attention reads the N cache
 *   slots and then position t itself (one softmax over both; the cache is read where it is, not
 *   copied into a longer one); `self_bias` float32 [B, N + 1] hides the slots not yet
 *   written (0 for slots < t and the last, PAD_BIAS for the rest: `stepSelfBias`). With `text_bias`
 *   [B, L] and the cross keys and values.
 *
 * Every shape is fixed, so one session serves all N steps. test/transformer-autoregressive.test.ts
 * holds the steps' logits to the tfjs model's full-sequence ones.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers, type KeysValues } from '../nn/onnx-layers.js';
import { PAD_BIAS } from '../text/common.js';
import type { MaskedTransformer } from './model.js';

/** Per head: the heads and their width dh. */
export function headShape(model: MaskedTransformer): { heads: number; dh: number } {
  return { heads: model.config.heads, dh: model.config.width / model.config.heads };
}

/** The blocks that cross-attend to the text (all of the transformer's). */
function crossBlocks(nn: GraphLayers, depth: number): number[] {
  return Array.from({ length: depth }, (_, i) => i).filter((i) => nn.has(`blocks.${i}.cross.q.w`));
}

export function crossKeysGraph(model: MaskedTransformer, batch: number, textLength: number): GraphSpec {
  const c = model.config;
  const nn = new GraphLayers(model.variables());
  const { g } = nn;
  const { heads, dh } = headShape(model);
  const text = g.input('text', 'float32', [batch * textLength, c.textDim]);
  for (const i of crossBlocks(nn, c.depth)) {
    const kv = nn.keysValues(text, batch, textLength, heads, `blocks.${i}.cross`);
    g.output(kv.k, `cross_k.${i}`, 'float32', [batch, heads, dh, textLength]);
    g.output(kv.v, `cross_v.${i}`, 'float32', [batch, heads, textLength, dh]);
  }
  return g.build();
}

export function stepGraph(model: MaskedTransformer, batch: number, textLength: number): GraphSpec {
  const c = model.config;
  const n = model.tokens;
  const nn = new GraphLayers(model.variables());
  const { g } = nn;
  const { heads, dh } = headShape(model);

  const token = g.input('token', 'int32', [batch]);
  const position = g.input('position', 'int32', [1]);
  const selfBias = g.input('self_bias', 'float32', [batch, n + 1]);
  const textBias = g.input('text_bias', 'float32', [batch, textLength]);
  const cross = new Set(crossBlocks(nn, c.depth));
  const past: KeysValues[] = [];
  const crossKv: (KeysValues | undefined)[] = [];
  for (let i = 0; i < c.depth; i++) {
    past.push({ k: g.input(`past_k.${i}`, 'float32', [batch, heads, dh, n]), v: g.input(`past_v.${i}`, 'float32', [batch, heads, n, dh]), s: n });
    crossKv.push(cross.has(i) ? { k: g.input(`cross_k.${i}`, 'float32', [batch, heads, dh, textLength]), v: g.input(`cross_v.${i}`, 'float32', [batch, heads, textLength, dh]), s: textLength } : undefined);
  }

  // the token's embedding + its position's (row + column)
  const pos = model.positionValues();
  let x = g.add(g.node('Gather', [nn.weight('embed'), token]), g.node('Gather', [g.weight('pos', pos, [n, c.width]), position]));
  for (let i = 0; i < c.depth; i++) {
    const selfKeys = (own: KeysValues): KeysValues[] => {
      g.output(own.k, `k.${i}`, 'float32', [batch, heads, dh, 1]);
      g.output(own.v, `v.${i}`, 'float32', [batch, heads, 1, dh]);
      return [past[i]!, own];
    };
    const kv = crossKv[i];
    const context = kv && { value: kv, length: textLength, bias: textBias };
    x = nn.block(x, { batch, t: 1, heads, context, selfBias, selfKeys }, `blocks.${i}`);
  }
  g.output(nn.linear(nn.layerNorm(x, 'norm'), 'head'), 'logits', 'float32', [batch, c.codebookSize]);
  return g.build();
}

/** The step graph's `self_bias` [B, N + 1] at position t: 0 for cache slots < t and for t itself (the last), PAD_BIAS for slots ≥ t. */
export function stepSelfBias(batch: number, n: number, t: number, out = new Float32Array(batch * (n + 1))): Float32Array {
  for (let b = 0; b < batch; b++) {
    const row = b * (n + 1);
    out.fill(0, row, row + t);
    out.fill(PAD_BIAS, row + t, row + n);
    out[row + n] = 0;
  }
  return out;
}
