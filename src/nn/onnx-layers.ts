/**
 * The layers of layers.ts written into an ONNX graph, for compiling a model's inference pass to
 * one ONNX Runtime session: the same names, the same math (activations 2-D [rows, width], GELU as
 * x·σ(1.702x), LayerNorm eps 1e-5), the weights read by name from the model's variables and baked
 * in. Each model's graph file (transformer/onnx-graph.ts, diffusion-refiner/onnx-graph.ts) composes
 * these the way its model.ts composes the layers; tests hold each graph to its tfjs model.
 */
import type * as tf from '@tensorflow/tfjs';
import { GraphBuilder } from '../backend/onnx/graph-builder.js';
import { GELU_K } from './fused-kernels.js';

/** The LayerNorm epsilon of layers.ts. */
export const LN_EPS = 1e-5;

export class GraphLayers {
  readonly g = new GraphBuilder();
  private readonly baked = new Map<string, string>();

  constructor(private readonly vars: Record<string, tf.Variable>) {}

  /** The values of weight `name`. */
  values(name: string): Float32Array {
    return this.variable(name).dataSync() as Float32Array;
  }

  shape(name: string): number[] {
    return this.variable(name).shape;
  }

  has(name: string): boolean {
    return name in this.vars;
  }

  /** Weight `name` as a graph constant (baked in once however often it is used). */
  weight(name: string): string {
    let value = this.baked.get(name);
    if (value === undefined) this.baked.set(name, (value = this.g.weight(name, this.values(name), this.shape(name))));
    return value;
  }

  /** x [rows, in] → [rows, out] (layers.ts Linear). */
  linear(x: string, scope: string): string {
    return this.g.gemm(x, this.weight(`${scope}.w`), this.weight(`${scope}.b`));
  }

  layerNorm(x: string, scope: string): string {
    return this.g.layerNorm(x, this.weight(`${scope}.g`), this.weight(`${scope}.b`), LN_EPS);
  }

  /** fc → GELU → proj (layers.ts Mlp). */
  mlp(x: string, scope: string): string {
    return this.linear(this.g.quickGelu(this.linear(x, `${scope}.fc`), GELU_K), `${scope}.proj`);
  }

  /**
   * Multi-head attention (layers.ts Attention) of `x` [B·T, D] over `context` [B·S, Dc]
   * (`x` itself for self-attention), `keyBias` [B, S] added to the scores when given ([B, T, S],
   * per query, with `perQueryBias`).
   */
  attention(x: string, context: string, a: { batch: number; t: number; s: number; heads: number; keyBias?: string; perQueryBias?: boolean }, scope: string): string {
    const { g } = this;
    const d = this.shape(`${scope}.q.w`)[1]!;
    const dc = this.shape(`${scope}.kv.w`)[0]!;
    const h = a.heads;
    const dh = d / h;
    // the 1/√dh scale folded into q's weights
    const scale = 1 / Math.sqrt(dh);
    const q = g.gemm(x, g.weight(`${scope}.q.w·scale`, this.values(`${scope}.q.w`).map((v) => v * scale), [d, d]), g.weight(`${scope}.q.b·scale`, this.values(`${scope}.q.b`).map((v) => v * scale), [d]));
    // kv's columns are [k heads | v heads]
    const [kw, vw] = splitColumns(this.values(`${scope}.kv.w`), dc, d);
    const kvb = this.values(`${scope}.kv.b`);
    const k = g.gemm(context, g.weight(`${scope}.k.w`, kw, [dc, d]), g.weight(`${scope}.k.b`, kvb.slice(0, d), [d]));
    const v = g.gemm(context, g.weight(`${scope}.v.w`, vw, [dc, d]), g.weight(`${scope}.v.b`, kvb.slice(d), [d]));
    const heads = (y: string, len: number, perm: number[]) => g.transpose(g.reshape(y, [a.batch, len, h, dh]), perm);
    let scores = g.matMul(heads(q, a.t, [0, 2, 1, 3]), heads(k, a.s, [0, 2, 3, 1])); // [B, H, T, S]
    if (a.keyBias) scores = g.add(scores, g.reshape(a.keyBias, [a.batch, 1, a.perQueryBias ? a.t : 1, a.s]));
    const out = g.matMul(g.softmax(scores), heads(v, a.s, [0, 2, 1, 3])); // [B, H, T, dh]
    return this.linear(g.reshape(g.transpose(out, [0, 2, 1, 3]), [a.batch * a.t, d]), `${scope}.proj`);
  }

  /**
   * A pre-LN block (layers.ts Block): self-attention, cross-attention to `context` [B·S, Dc] when the
   * block has one, MLP, each residual.
   */
  block(
    x: string,
    a: { batch: number; t: number; heads: number; context?: { value: string; length: number; bias: string; perQueryBias?: boolean }; selfBias?: string },
    scope: string,
  ): string {
    const { g } = this;
    const n = this.layerNorm(x, `${scope}.ln1`);
    // selfBias: [B, T, T] added to the self-attention's scores (a causal mask)
    x = g.add(x, this.attention(n, n, { batch: a.batch, t: a.t, s: a.t, heads: a.heads, keyBias: a.selfBias, perQueryBias: true }, `${scope}.attn`));
    if (a.context && this.has(`${scope}.cross.q.w`)) {
      const c = a.context;
      x = g.add(x, this.attention(this.layerNorm(x, `${scope}.ln_cross`), c.value, { batch: a.batch, t: a.t, s: c.length, heads: a.heads, keyBias: c.bias, perQueryBias: c.perQueryBias }, `${scope}.cross`));
    }
    return g.add(x, this.mlp(this.layerNorm(x, `${scope}.ln2`), `${scope}.mlp`));
  }

  /** [B, S, S, C] → [B·N, p·p·C] (layers.ts patchify). */
  patchify(x: string, [b, s, c]: [number, number, number], p: number): string {
    const gs = s / p;
    return this.g.reshape(this.g.transpose(this.g.reshape(x, [b * gs, p, gs, p * c]), [0, 2, 1, 3]), [b * gs * gs, p * p * c]);
  }

  /** The inverse of patchify: [B·N, p·p·C] → [B, g·p, g·p, C]. */
  unpatchify(x: string, [b, gs, c]: [number, number, number], p: number): string {
    return this.g.reshape(this.g.transpose(this.g.reshape(x, [b * gs, gs, p, p * c]), [0, 2, 1, 3]), [b, gs * p, gs * p, c]);
  }

  private variable(name: string): tf.Variable {
    const v = this.vars[name];
    if (!v) throw new Error(`graph: the model has no weight ${name}`);
    return v;
  }
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
