/**
 * The layers of layers.ts written into an ONNX graph — one set of definitions for both kinds of
 * compiled graph:
 *
 * - `bake` (inference: decoding, DDIM sampling): the weights are read from the model's variables
 *   and baked in as constants, with what can be done to them once done once (attention's 1/√dh folded
 *   into q, kv split into k and v, conv kernels laid out as ONNX wants);
 * - `train` (a whole training step): every weight is a differentiable graph input named like the
 *   model's variable, the same rearrangements are ops on it, and the tape (backend/onnx/autodiff.ts)
 *   records each op's backward so that the step's graph ends with every weight's gradient.
 *
 * Both go through the same op interface, the tape's ops (with nothing tracked a tape records no
 * backward, so an inference graph is just its forward). The same names, the same math as layers.ts
 * (activations 2-D [rows, width], GELU as x·σ(1.702x), LayerNorm eps 1e-5); convolutions run NCHW,
 * as ONNX's Conv does, with tfjs's 'same' padding. Each model's graph file (transformer/onnx-graph.ts,
 * transformer/onnx-train-graph.ts, diffusion-refiner/onnx-graph.ts, diffusion-refiner/onnx-train-graph.ts)
 * composes these the way its model.ts composes the layers; tests hold each graph to its tfjs model.
 */
import * as tf from '@tensorflow/tfjs';
import { tensorValues, valuesOf } from './values.js';
import { GradTape } from '../backend/onnx/autodiff.js';
import type { GraphBuilder } from '../backend/onnx/graph-builder.js';
import { GELU_K } from './fused-kernels.js';

/** An attention's keys [B, H, dh, S] (laid out for q·k) and values [B, H, S, dh] over S positions. */
export interface KeysValues {
  k: string;
  v: string;
  s: number;
}

/** What `attend` needs besides the keys and values: `keyBias` [B, S] added to the scores ([B, T, S] with `perQueryBias`). */
export interface AttentionShape {
  batch: number;
  t: number;
  heads: number;
  keyBias?: string;
  perQueryBias?: boolean;
}

/** The LayerNorm epsilon of layers.ts. */
export const LN_EPS = 1e-5;

/** Where the weights come from: baked constants (inference) or differentiable graph inputs (training). */
export type WeightMode = 'bake' | 'train';

export class GraphLayers {
  /** The op interface every layer is written in. */
  readonly t = new GradTape();
  /** The graph under the tape, for inputs, outputs and ops no gradient passes through. */
  readonly g: GraphBuilder = this.t.g;
  private readonly made = new Map<string, string>();

  constructor(
    private readonly vars: Record<string, tf.Variable>,
    readonly mode: WeightMode = 'bake',
  ) {
    if (mode === 'train') for (const [name, v] of Object.entries(vars)) this.t.input(name, 'float32', v.shape, true);
  }

  /** The names of the model's weights (in train mode, the graph inputs that get gradients). */
  names(): string[] {
    return Object.keys(this.vars);
  }

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

  /** Weight `name` as a graph value: a constant baked in once however often it is used, or the graph input of that name. */
  weight(name: string): string {
    if (this.mode === 'train') {
      this.variable(name); // the model has it
      return name;
    }
    return this.once(name, () => this.t.constant(name, this.values(name), this.shape(name)));
  }

  /** x [rows, in] → [rows, out] (layers.ts Linear). */
  linear(x: string, scope: string): string {
    return this.t.gemm(x, this.weight(`${scope}.w`), this.weight(`${scope}.b`));
  }

  layerNorm(x: string, scope: string): string {
    return this.t.layerNorm(x, this.weight(`${scope}.g`), this.weight(`${scope}.b`), LN_EPS);
  }

  /** x·σ(1.702x) (layers.ts gelu), any shape. */
  gelu(x: string): string {
    return this.t.quickGelu(x, GELU_K);
  }

  /** fc → GELU → proj (layers.ts Mlp). */
  mlp(x: string, scope: string): string {
    return this.linear(this.gelu(this.linear(x, `${scope}.fc`)), `${scope}.proj`);
  }

  /**
   * Multi-head attention (layers.ts Attention) of `x` [B·T, D] over `context` [B·S, Dc]
   * (`x` itself for self-attention), `keyBias` [B, S] added to the scores when given ([B, T, S],
   * per query, with `perQueryBias`).
   */
  attention(x: string, context: string, a: AttentionShape & { s: number }, scope: string): string {
    return this.attend(x, this.keysValues(context, a.batch, a.s, a.heads, scope), a, scope);
  }

  /**
   * The keys and values attention `scope` makes of `context` [B·S, Dc]: what a key/value cache
   * keeps (autoregressive decoding) and what cross-attention to a fixed text can compute once.
   */
  keysValues(context: string, batch: number, s: number, heads: number, scope: string): KeysValues {
    const { t } = this;
    const dh = this.shape(`${scope}.q.w`)[1]! / heads;
    // kv's columns are [k heads | v heads]
    const [kw, vw] = this.pieces(`${scope}.kv.w`, [`${scope}.k.w`, `${scope}.v.w`]);
    const [kb, vb] = this.pieces(`${scope}.kv.b`, [`${scope}.k.b`, `${scope}.v.b`]);
    const heads4 = (y: string, perm: number[]) => t.transpose(t.reshape(y, [batch, s, heads, dh]), perm);
    return { k: heads4(t.gemm(context, kw!, kb!), [0, 2, 3, 1]), v: heads4(t.gemm(context, vw!, vb!), [0, 2, 1, 3]), s };
  }

  /**
   * Attention `scope` of `x` [B·T, D] over keys and values already made (`keysValues`): one set, or
   * several read as one, concatenated along the positions (a cache of past positions and the
   * current ones) — their scores are, their keys and values need not be copied together.
   */
  attend(x: string, kv: KeysValues | readonly KeysValues[], a: AttentionShape, scope: string): string {
    const { t, g } = this;
    const d = this.shape(`${scope}.q.w`)[1]!;
    const h = a.heads;
    const dh = d / h;
    const parts = Array.isArray(kv) ? kv : [kv as KeysValues];
    const s = parts.reduce((sum, p) => sum + p.s, 0);
    // the 1/√dh scale folded into q's weights
    const scale = 1 / Math.sqrt(dh);
    const [qw] = this.pieces(`${scope}.q.w`, [`${scope}.q.w·scale`], scale);
    const [qb] = this.pieces(`${scope}.q.b`, [`${scope}.q.b·scale`], scale);
    const q = t.transpose(t.reshape(t.gemm(x, qw!, qb!), [a.batch, a.t, h, dh]), [0, 2, 1, 3]);
    const partScores = parts.map((p) => t.matMul(q, p.k)); // [B, H, T, S_i]
    let scores = partScores.length === 1 ? partScores[0]! : g.node('Concat', partScores, { axis: { i: 3 } });
    if (a.keyBias) scores = t.add(scores, t.reshape(a.keyBias, [a.batch, 1, a.perQueryBias ? a.t : 1, s]));
    const weights = t.softmax(scores);
    let out: string; // [B, H, T, dh]
    if (parts.length === 1) out = t.matMul(weights, parts[0]!.v);
    else {
      const split = g.nodeOutputs('Split', [weights, g.int64s(parts.map((p) => p.s))], parts.length, { axis: { i: 3 } });
      out = g.node('Sum', parts.map((p, i) => g.matMul(split[i]!, p.v)));
    }
    return this.linear(t.reshape(t.transpose(out, [0, 2, 1, 3]), [a.batch * a.t, d]), `${scope}.proj`);
  }

  /**
   * A pre-LN block (layers.ts Block): self-attention, cross-attention to `context` [B·S, Dc] (or its
   * keys and values, made once) when the block has one, MLP, each residual. `selfKeys`, when given,
   * turns the block's own keys and values into those its self-attention reads (a key/value cache:
   * the past positions' before them).
   */
  block(
    x: string,
    a: {
      batch: number;
      t: number;
      heads: number;
      context?: { value: string | KeysValues; length: number; bias: string; perQueryBias?: boolean };
      selfBias?: string;
      /** `selfBias` is [B, S], one score a key (padding), instead of [B, T, S]. */
      selfBiasPerKey?: boolean;
      selfKeys?: (own: KeysValues) => KeysValues | readonly KeysValues[];
    },
    scope: string,
  ): string {
    const { t } = this;
    const n = this.layerNorm(x, `${scope}.ln1`);
    const own = this.keysValues(n, a.batch, a.t, a.heads, `${scope}.attn`);
    // selfBias: [B, T, S] added to the self-attention's scores (a causal mask), or [B, S] (padding)
    const selfShape = { batch: a.batch, t: a.t, heads: a.heads, keyBias: a.selfBias, perQueryBias: !a.selfBiasPerKey };
    x = t.add(x, this.attend(n, a.selfKeys ? a.selfKeys(own) : own, selfShape, `${scope}.attn`));
    if (a.context && this.has(`${scope}.cross.q.w`)) {
      const c = a.context;
      const kv = typeof c.value === 'string' ? this.keysValues(c.value, a.batch, c.length, a.heads, `${scope}.cross`) : c.value;
      x = t.add(x, this.attend(this.layerNorm(x, `${scope}.ln_cross`), kv, { batch: a.batch, t: a.t, heads: a.heads, keyBias: c.bias, perQueryBias: c.perQueryBias }, `${scope}.cross`));
    }
    return t.add(x, this.mlp(this.layerNorm(x, `${scope}.ln2`), `${scope}.mlp`));
  }

  /** [B, S, S, C] → [B·N, p·p·C] (layers.ts patchify). */
  patchify(x: string, [b, s, c]: [number, number, number], p: number): string {
    const gs = s / p;
    const { t } = this;
    return t.reshape(t.transpose(t.reshape(x, [b * gs, p, gs, p * c]), [0, 2, 1, 3]), [b * gs * gs, p * p * c]);
  }

  /** The inverse of patchify: [B·N, p·p·C] → [B, g·p, g·p, C]. */
  unpatchify(x: string, [b, gs, c]: [number, number, number], p: number): string {
    const { t } = this;
    return t.reshape(t.transpose(t.reshape(x, [b * gs, gs, p, p * c]), [0, 2, 1, 3]), [b, gs * p, gs * p, c]);
  }

  /**
   * layers.ts Conv2d on NCHW activations: x [B, in, H, W] → [B, out, ⌈H/s⌉, ⌈W/s⌉], 'same' padding;
   * the [k, k, in, out] kernel is used as ONNX's [out, in, k, k].
   */
  conv2d(x: string, scope: string, stride = 1): string {
    return this.t.conv(x, this.permuted(`${scope}.w`, [3, 2, 0, 1], `${scope}.w·oihw`), this.weight(`${scope}.b`), stride);
  }

  /**
   * Ends a training graph: appends the backward pass from `value` (whose gradient is `seed`) and
   * outputs `grad:<weight>` for every weight and `grad_sq`, the sum of their squares (for clipping
   * by global norm). Returns the gradients of `extra` (other differentiable inputs), for the caller
   * to output.
   */
  outputGradients(value: string, seed: string, extra: readonly string[] = []): Record<string, string> {
    return this.outputGradientsOf(value, seed, this.names(), 'grad_sq', extra);
  }

  /**
   * The same for some of the weights (`names`), their squares summed into the output `sumName`
   * (none when undefined): for a graph that trains two models on two losses (a generator and its
   * discriminator), one backward pass each.
   */
  outputGradientsOf(value: string, seed: string, names: readonly string[], sumName: string | undefined, extra: readonly string[] = []): Record<string, string> {
    if (this.mode !== 'train') throw new Error('graph: gradients need weights as inputs (train mode)');
    const { g } = this;
    const grads = this.t.backward(value, seed, [...names, ...extra]);
    for (const name of names) g.output(grads[name]!, `grad:${name}`, 'float32', this.shape(name));
    if (sumName !== undefined) {
      const squares = names.map((name) => g.node('ReduceSumSquare', [grads[name]!], { keepdims: { i: 0 } }));
      g.output(g.node('Sum', squares), sumName, 'float32', []);
    }
    return grads;
  }

  /**
   * Weight `name` split into `as.length` equal pieces along its last axis, each times `scale`: baked
   * under the names `as`, or written as ops on the weight's input (so its gradient gathers theirs).
   */
  private pieces(name: string, as: readonly string[], scale = 1): string[] {
    const dims = this.shape(name);
    const axis = dims.length - 1;
    if (this.mode === 'train') {
      const parts = as.length === 1 ? [name] : this.t.split(name, axis, as.length);
      return scale === 1 ? parts : parts.map((p) => this.t.scale(p, scale));
    }
    if (as.every((n) => this.made.has(n))) return as.map((n) => this.made.get(n)!);
    const piece = [...dims];
    piece[axis] = dims[axis]! / as.length;
    const values = tf.tidy(() => tf.split(tf.mul(this.variable(name), scale), as.length, axis)).map((t) => valuesOf(t) as Float32Array);
    return as.map((n, i) => this.once(n, () => this.t.constant(n, values[i]!, piece)));
  }

  /** Weight `name` with its axes permuted: baked as `as`, or a Transpose of its input. */
  private permuted(name: string, perm: readonly number[], as: string): string {
    if (this.mode === 'train') return this.t.transpose(this.weight(name), perm);
    const dims = this.shape(name);
    return this.once(as, () => this.t.constant(as, tensorValues(() => tf.transpose(this.variable(name), [...perm])) as Float32Array, perm.map((p) => dims[p]!)));
  }

  private once(name: string, make: () => string): string {
    let value = this.made.get(name);
    if (value === undefined) this.made.set(name, (value = make()));
    return value;
  }

  private variable(name: string): tf.Variable {
    const v = this.vars[name];
    if (!v) throw new Error(`graph: the model has no weight ${name}`);
    return v;
  }
}
