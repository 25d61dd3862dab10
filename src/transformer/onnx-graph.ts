/**
 * The masked transformer's forward pass (model.ts) written as one ONNX graph with its current
 * weights baked in, for decoding on ONNX Runtime in one native call per step. It follows
 * `MaskedTransformer.logits` op for op — embedding + 2-D positions, pre-LN blocks of
 * self-attention, cross-attention to the text and MLP, final LayerNorm and head — and a test holds
 * the two to the same logits.
 *
 * Inputs: `tokens` int32 [B, N] (maskId where masked), `text` float32 [B·L, textDim] and
 * `text_bias` float32 [B, L]; output `logits` float32 [B·N, K].
 */
import * as tf from '@tensorflow/tfjs';
import { GraphBuilder } from '../backend/onnx/graph-builder.js';
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GELU_K } from '../nn/fused-kernels.js';
import type { MaskedTransformer } from './model.js';

/** The LayerNorm epsilon of nn/layers.ts. */
const LN_EPS = 1e-5;

export function transformerGraph(model: MaskedTransformer, batch: number, textLength: number): GraphSpec {
  const c = model.config;
  const n = model.tokens;
  const d = c.width;
  const vars = model.variables();
  const g = new GraphBuilder();
  const values = (name: string): Float32Array => {
    const v = vars[name];
    if (!v) throw new Error(`transformer graph: no weight ${name}`);
    return v.dataSync() as Float32Array;
  };
  const w = (name: string): string => g.weight(name, values(name), vars[name]!.shape);

  const tokens = g.input('tokens', 'int32', [batch, n]);
  const text = g.input('text', 'float32', [batch * textLength, c.textDim]);
  const textBias = g.input('text_bias', 'float32', [batch, textLength]);

  const layerNorm = (x: string, scope: string) => g.layerNorm(x, w(`${scope}.g`), w(`${scope}.b`), LN_EPS);
  const linear = (x: string, scope: string) => g.gemm(x, w(`${scope}.w`), w(`${scope}.b`));

  /** Multi-head attention of `x` [B·T, D] over `context` [B·S, Dc] (nn/layers.ts Attention). */
  const attention = (x: string, context: string, s: number, scope: string, keyBias?: string): string => {
    const h = c.heads;
    const dh = d / h;
    const t = n;
    // the 1/√dh scale folded into q's weights
    const scale = 1 / Math.sqrt(dh);
    const qw = values(`${scope}.q.w`).map((v) => v * scale);
    const qb = values(`${scope}.q.b`).map((v) => v * scale);
    const q = g.gemm(x, g.weight(`${scope}.q.w*`, qw, [d, d]), g.weight(`${scope}.q.b*`, qb, [d]));
    // kv's columns are [k heads | v heads]
    const [kw, vw] = splitColumns(values(`${scope}.kv.w`), vars[`${scope}.kv.w`]!.shape[0]!, d);
    const kvb = values(`${scope}.kv.b`);
    const dc = vars[`${scope}.kv.w`]!.shape[0]!;
    const k = g.gemm(context, g.weight(`${scope}.k.w`, kw, [dc, d]), g.weight(`${scope}.k.b`, kvb.slice(0, d), [d]));
    const v = g.gemm(context, g.weight(`${scope}.v.w`, vw, [dc, d]), g.weight(`${scope}.v.b`, kvb.slice(d), [d]));
    const heads = (y: string, len: number, perm: number[]) => g.transpose(g.reshape(y, [batch, len, h, dh]), perm);
    let scores = g.matMul(heads(q, t, [0, 2, 1, 3]), heads(k, s, [0, 2, 3, 1])); // [B, H, T, S]
    if (keyBias) scores = g.add(scores, g.reshape(keyBias, [batch, 1, 1, s]));
    const out = g.matMul(g.softmax(scores), heads(v, s, [0, 2, 1, 3])); // [B, H, T, dh]
    return linear(g.reshape(g.transpose(out, [0, 2, 1, 3]), [batch * t, d]), `${scope}.proj`);
  };

  // token embeddings + (row + column) positions
  const pos = tf.tidy(() => tf.reshape(tf.add(vars['pos.row']!, vars['pos.col']!), [n, d]).dataSync() as Float32Array);
  let x = g.reshape(g.add(g.node('Gather', [w('embed'), tokens]), g.weight('pos', pos, [n, d])), [batch * n, d]);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    const a = layerNorm(x, `${b}.ln1`);
    x = g.add(x, attention(a, a, n, `${b}.attn`));
    if (vars[`${b}.cross.q.w`]) x = g.add(x, attention(layerNorm(x, `${b}.ln_cross`), text, textLength, `${b}.cross`, textBias));
    x = g.add(x, linear(g.quickGelu(linear(layerNorm(x, `${b}.ln2`), `${b}.mlp.fc`), GELU_K), `${b}.mlp.proj`));
  }
  g.output(linear(layerNorm(x, 'norm'), 'head'), 'logits', 'float32', [batch * n, c.codebookSize]);
  return g.build();
}

/** Row-major [rows, 2·d] → its first d columns and its last d columns, each [rows, d]. */
function splitColumns(m: Float32Array, rows: number, d: number): [Float32Array, Float32Array] {
  const left = new Float32Array(rows * d);
  const right = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    left.set(m.subarray(r * 2 * d, r * 2 * d + d), r * d);
    right.set(m.subarray(r * 2 * d + d, (r + 1) * 2 * d), r * d);
  }
  return [left, right];
}
