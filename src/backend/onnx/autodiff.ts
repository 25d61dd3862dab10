/**
 * Reverse-mode differentiation of an ONNX graph while it is written: each op of a `GradTape` adds
 * its forward node(s) to a GraphBuilder and records how to send a gradient back through itself.
 * `backward(value, seed)` then appends the backward pass to the same graph, so that a whole training
 * step (forward, loss, every parameter's gradient) is one ONNX Runtime session: one native call a
 * step instead of ~800 tfjs kernels, each a trip into ORT with its output copied back (the onnx
 * backend's per-kernel path, see index.ts).
 *
 * The op set is what maskgen's models are made of (nn/layers.ts): 2-D Gemm, batched MatMul, Add and
 * Sub with broadcasting, scaling, Reshape, Transpose, Split, Concat, softmax over the last axis, LayerNorm
 * over the last axis, GELU as x·σ(αx), embedding Gather, 2-D convolution (NCHW, TF 'same' padding,
 * any stride), nearest ×2 upsampling, the pieces of L1/L2 and hinge losses (Abs, Square, mean,
 * Relu), LeakyReLU and tanh, and the VQ lookup's pieces (l2 normalisation, ArgMax, stop-gradient, the
 * straight-through estimator). Each backward is the textbook formula written in plain ONNX ops (the
 * inference build of ORT has no gradient ops); test/transformer-compiled-train.test.ts holds a whole
 * transformer's gradients, test/autodiff-conv.test.ts each convolutional op's and
 * test/autodiff-vq.test.ts each of the tokenizer's to tfjs autograd.
 *
 * The tape is also the op interface of inference graphs (nn/onnx-layers.ts): values nothing tracked
 * depends on record no backward, so a tape with weights baked as constants writes the same forward
 * graph a plain GraphBuilder would. Shapes are tracked where known (graph inputs, constants, and
 * what ops derive from them); a value written straight through `g` has none, which is fine until a
 * gradient must pass through it.
 */
import { GraphBuilder } from './graph-builder.js';
import { MS_DOMAIN, type ValueSpec } from './graphs.js';

/** A backward step: given the gradient of an op's output, adds its inputs' gradients. */
type Backward = (dy: string) => void;
/** The same for an op with several outputs (undefined where an output got no gradient). */
type BackwardMany = (dys: (string | undefined)[]) => void;

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

export class GradTape {
  readonly g = new GraphBuilder();
  private readonly shapes = new Map<string, readonly number[]>();
  /** Values that a gradient must reach (parameters, differentiable inputs, and what depends on them). */
  private readonly tracked = new Set<string>();
  private readonly tape: { outputs: readonly string[]; back: BackwardMany }[] = [];
  private grads = new Map<string, string>();

  /** A graph input; `differentiable` ones get gradients (e.g. parameters). */
  input(name: string, dtype: ValueSpec['dtype'], dims: readonly number[], differentiable = false): string {
    this.g.input(name, dtype, dims);
    this.shapes.set(name, [...dims]);
    if (differentiable) this.tracked.add(name);
    return name;
  }

  /** A float32 constant (a baked weight), untracked. */
  constant(name: string, data: Float32Array, dims: readonly number[]): string {
    this.g.weight(name, data, dims);
    this.shapes.set(name, [...dims]);
    return name;
  }

  shape(x: string): readonly number[] {
    const s = this.shapes.get(x);
    if (!s) throw new Error(`grad tape: no shape known for ${x}`);
    return s;
  }

  /** x's shape when known (see the file comment). */
  known(x: string): readonly number[] | undefined {
    return this.shapes.get(x);
  }

  // ---- forward ops ------------------------------------------------------------------------

  /** x [M, K] · w [K, N] + b [N]. */
  gemm(x: string, w: string, b: string): string {
    const sx = this.known(x);
    const sw = this.known(w);
    if (sx && sw && sx[1] !== sw[0]) throw new Error(`grad tape: gemm of [${sx}] and [${sw}]`);
    return this.op(this.g.gemm(x, w, b), sx && sw ? [sx[0]!, sw[1]!] : undefined, [x, w, b], (dy) => {
      this.accumulate(x, () => this.g.node('Gemm', [dy, w], { transB: { i: 1 } }));
      this.accumulate(w, () => this.g.node('Gemm', [x, dy], { transA: { i: 1 } }));
      this.accumulate(b, () => this.sumTo(dy, this.shape(b)));
    });
  }

  /** Batched a [..., M, K] · b [..., K, N], the same batch dims on both. */
  matMul(a: string, b: string): string {
    const sa = this.known(a);
    const sb = this.known(b);
    const out = sa && sb ? [...sa.slice(0, -1), sb[sb.length - 1]!] : undefined;
    return this.op(this.g.matMul(a, b), out, [a, b], (dy) => {
      this.accumulate(a, () => this.fusedMatMul(dy, b, false, true));
      this.accumulate(b, () => this.fusedMatMul(a, dy, true, false));
    });
  }

  /** a + b, numpy broadcasting. */
  add(a: string, b: string): string {
    return this.op(this.g.add(a, b), this.broadcast(a, b), [a, b], (dy) => {
      this.accumulate(a, () => this.sumTo(dy, this.shape(a)));
      this.accumulate(b, () => this.sumTo(dy, this.shape(b)));
    });
  }

  /** a − b, numpy broadcasting. */
  sub(a: string, b: string): string {
    return this.op(this.g.node('Sub', [a, b]), this.broadcast(a, b), [a, b], (dy) => {
      this.accumulate(a, () => this.sumTo(dy, this.shape(a)));
      this.accumulate(b, () => this.g.node('Neg', [this.sumTo(dy, this.shape(b))]));
    });
  }

  /** |x|; its gradient is dy · sign(x) (0 at 0, as tfjs's). */
  abs(x: string): string {
    return this.op(this.g.node('Abs', [x]), this.known(x), [x], (dy) => {
      this.accumulate(x, () => this.g.node('Mul', [dy, this.g.node('Sign', [x])]));
    });
  }

  /** x². */
  square(x: string): string {
    return this.op(this.g.node('Mul', [x, x]), this.known(x), [x], (dy) => {
      this.accumulate(x, () => this.g.node('Mul', [dy, this.g.node('Mul', [x, this.scalar(2)])]));
    });
  }

  /** The mean of every entry of x, a scalar []. */
  mean(x: string): string {
    return this.op(this.g.node('ReduceMean', [x], { keepdims: { i: 0 } }), [], [x], (dy) => {
      const s = this.shape(x);
      this.accumulate(x, () => this.g.node('Expand', [this.g.node('Mul', [dy, this.scalar(1 / product(s))]), this.g.int64s(s)]));
    });
  }

  /** x · s for a constant s. */
  scale(x: string, s: number): string {
    return this.op(this.g.node('Mul', [x, this.scalar(s)]), this.known(x), [x], (dy) => {
      this.accumulate(x, () => this.g.node('Mul', [dy, this.scalar(s)]));
    });
  }

  reshape(x: string, dims: readonly number[]): string {
    const from = this.known(x);
    if (from && product(from) !== product(dims)) throw new Error(`grad tape: reshape [${from}] → [${dims}]`);
    return this.op(this.g.reshape(x, dims), dims, [x], (dy) => this.accumulate(x, () => this.g.reshape(dy, this.shape(x))));
  }

  transpose(x: string, perm: readonly number[]): string {
    const s = this.known(x);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.op(this.g.transpose(x, perm), s && perm.map((p) => s[p]!), [x], (dy) => {
      this.accumulate(x, () => this.g.transpose(dy, inverse));
    });
  }

  /** Splits x into `parts` equal pieces along `axis`; the gradient concatenates theirs (zeros for a piece that got none). */
  split(x: string, axis: number, parts: number): string[] {
    const s = this.shape(x);
    const piece = [...s];
    piece[axis] = s[axis]! / parts;
    const outs = this.g.nodeOutputs('Split', [x], parts, { axis: { i: axis } });
    for (const o of outs) this.shapes.set(o, piece);
    this.recordMany(outs, [x], (dys) => {
      const all = dys.map((dy, i) => dy ?? this.zeros(piece, `${outs[i]}_zero`));
      this.accumulate(x, () => this.g.node('Concat', all, { axis: { i: axis } }));
    });
    return outs;
  }

  /** xs joined along `axis`; each one's gradient is its slice of dy. */
  concat(xs: readonly string[], axis: number): string {
    const shapes = xs.map((x) => this.shape(x));
    const out = [...shapes[0]!];
    out[axis] = shapes.reduce((n, s) => n + s[axis]!, 0);
    return this.op(this.g.node('Concat', xs, { axis: { i: axis } }), out, xs, (dy) => {
      let start = 0;
      xs.forEach((x, i) => {
        const end = start + shapes[i]![axis]!;
        this.accumulate(x, () => this.g.node('Slice', [dy, this.g.int64s([start]), this.g.int64s([end]), this.g.int64s([axis])]));
        start = end;
      });
    });
  }

  /** Softmax over the last axis. */
  softmax(x: string): string {
    const y = this.g.softmax(x);
    return this.op(y, this.known(x), [x], (dy) => {
      this.accumulate(x, () => {
        // dx = y · (dy − Σ_last dy·y)
        const dot = this.g.node('ReduceSum', [this.g.node('Mul', [dy, y]), this.g.int64s([-1])], { keepdims: { i: 1 } });
        return this.g.node('Mul', [y, this.g.node('Sub', [dy, dot])]);
      });
    });
  }

  /** LayerNorm over the last axis of a 2-D x [R, D], gain g [D], bias b [D]. */
  layerNorm(x: string, gain: string, bias: string, eps: number): string {
    if (![x, gain, bias].some((v) => this.tracked.has(v))) return this.op(this.g.layerNorm(x, gain, bias, eps), this.known(x), [], () => {});
    const [r, d] = this.shape(x);
    const [y, mean, invStd] = this.g.nodeOutputs('LayerNormalization', [x, gain, bias], 3, { axis: { i: -1 }, epsilon: { f: eps } });
    return this.op(y!, [r!, d!], [x, gain, bias], (dy) => {
      const { g } = this;
      const xh = g.node('Mul', [g.node('Sub', [x, mean!]), invStd!]);
      this.accumulate(bias, () => this.sumTo(dy, [d!]));
      this.accumulate(gain, () => this.sumTo(g.node('Mul', [dy, xh]), [d!], [r!, d!]));
      this.accumulate(x, () => {
        // dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · g
        const dxh = g.node('Mul', [dy, gain]);
        const m1 = g.node('ReduceMean', [dxh], { axes: { ints: [-1] }, keepdims: { i: 1 } });
        const m2 = g.node('ReduceMean', [g.node('Mul', [dxh, xh])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
        return g.node('Mul', [g.node('Sub', [g.node('Sub', [dxh, m1]), g.node('Mul', [xh, m2])]), invStd!]);
      });
    });
  }

  /** x · σ(αx) (layers.ts's GELU). */
  quickGelu(x: string, alpha: number): string {
    return this.op(this.g.quickGelu(x, alpha), this.known(x), [x], (dy) => {
      this.accumulate(x, () => {
        // dy · (s + αx·s·(1 − s)), s = σ(αx)
        const { g } = this;
        const ax = g.node('Mul', [x, this.scalar(alpha)]);
        const s = g.node('Sigmoid', [ax]);
        const t = g.node('Mul', [g.node('Mul', [ax, s]), g.node('Sub', [this.scalar(1), s])]);
        return g.node('Mul', [dy, g.node('Add', [s, t])]);
      });
    });
  }

  /** Rows of `table` [V, D] at int32 `indices` [R] → [R, D]. Its gradient is one-hot(indices)ᵀ · dy. */
  gather(table: string, indices: string): string {
    const st = this.known(table);
    const si = this.known(indices);
    return this.op(this.g.node('Gather', [table, indices]), st && si ? [si[0]!, st[1]!] : undefined, [table], (dy) => {
      this.accumulate(table, () => this.g.node('Gemm', [this.oneHot(indices, this.shape(table)[0]!), dy], { transA: { i: 1 } }));
    });
  }

  /**
   * 2-D convolution of x [N, C, H, W] with w [O, C, kh, kw] plus b [O], stride s, TF 'same' padding
   * (out = ⌈H/s⌉, the odd pad row/column at the bottom/right, as tfjs pads). Its input gradient is
   * the transposed convolution of dy (at stride 1, the convolution of dy with the flipped kernel);
   * its weight gradient is a convolution of x (batch and channels
   * swapped) with dy as the kernel, dilated by the stride.
   */
  conv(x: string, w: string, b: string, stride: number): string {
    const [n, c, h, wd] = this.shape(x) as [number, number, number, number];
    const [o, ci, kh, kw] = this.shape(w) as [number, number, number, number];
    if (ci !== c) throw new Error(`grad tape: conv of [${this.shape(x)}] with [${this.shape(w)}]`);
    const [oh, top, bottom] = samePadding(h, kh, stride);
    const [ow, left, right] = samePadding(wd, kw, stride);
    const pads = [top, left, bottom, right];
    const attrs = { strides: { ints: [stride, stride] }, pads: { ints: pads }, kernel_shape: { ints: [kh, kw] } };
    return this.op(this.g.node('Conv', [x, w, b], attrs), [n, o, oh, ow], [x, w, b], (dy) => {
      const { g } = this;
      this.accumulate(b, () => g.node('ReduceSum', [dy, g.int64s([0, 2, 3])], { keepdims: { i: 0 } }));
      this.accumulate(x, () => {
        if (stride === 1) {
          // a plain convolution of dy with the kernel flipped and its channels swapped, padded on the
          // other sides: 1–5× faster than ConvTranspose on ORT's CPU kernels
          const flipped = g.transpose(g.node('Slice', [w, g.int64s([-1, -1]), g.int64s([-kh - 1, -kw - 1]), g.int64s([2, 3]), g.int64s([-1, -1])]), [1, 0, 2, 3]);
          const back = [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right];
          return g.node('Conv', [dy, flipped], { pads: { ints: back }, kernel_shape: { ints: [kh, kw] } });
        }
        const outputPadding = [h - ((oh - 1) * stride + kh - top - bottom), wd - ((ow - 1) * stride + kw - left - right)];
        return g.node('ConvTranspose', [dy, w], { ...attrs, output_padding: { ints: outputPadding } });
      });
      this.accumulate(w, () => {
        if (kh * kw > 1 && c >= 8) return this.convWeightGradByShifts(x, dy, [kh, kw], pads, stride);
        const swap = [1, 0, 2, 3];
        // [C, O, kh', kw'], kh' = H + pads − (oh − 1)·s ≥ kh (more only where a strided 1×1 skips the last row)
        let dw = g.node('Conv', [g.transpose(x, swap), g.transpose(dy, swap)], {
          dilations: { ints: [stride, stride] },
          pads: { ints: pads },
          kernel_shape: { ints: [oh, ow] },
        });
        if (h + top + bottom - (oh - 1) * stride > kh || wd + left + right - (ow - 1) * stride > kw) {
          dw = g.node('Slice', [dw, g.int64s([0, 0]), g.int64s([kh, kw]), g.int64s([2, 3])]);
        }
        return g.transpose(dw, swap);
      });
    });
  }

  /**
   * The weight gradient of a convolution, dW[o, c, i, j] = Σ dy[n, o, y, x] · xpad[n, c, s·y + i, s·x + j],
   * as one GEMM a kernel tap over flat, channels-first grids. xpad is cut into its s × s phases
   * (rows ≡ p, columns ≡ q mod s), each a grid of A × B cells; dy sits on the same grid, zero beyond
   * its oh × ow. Tap (i, j) then reads phase (i mod s, j mod s) at a constant offset
   * ⌊i/s⌋·B + ⌊j/s⌋ from dy's cell, so over the flattened grids it is one GEMM of dy with a slice;
   * the grid is wide enough that no product of a non-zero dy wraps into the next row or image.
   * ORT runs the other way, a convolution with an image-sized kernel, through an im2col a tap at a
   * time: 2–2.5× slower at the autoencoder's stride-1 shapes from 8 input channels up (fewer
   * channels keep the convolution).
   */
  private convWeightGradByShifts(x: string, dy: string, [kh, kw]: [number, number], [top, left, bottom, right]: number[], stride: number): string {
    const { g } = this;
    const [n, c, h, wd] = this.shape(x) as [number, number, number, number];
    const [, o, oh, ow] = this.shape(dy) as [number, number, number, number];
    const s = stride;
    const rows = Math.max(Math.ceil((h + top! + bottom!) / s), oh + Math.floor((kh - 1) / s));
    const cols = Math.max(Math.ceil((wd + left! + right!) / s), ow + Math.floor((kw - 1) / s));
    const cells = n * rows * cols;
    // x: [N, C, H, W] → zero-padded to [C, N, rows·s, cols·s] → phases [s, s, C, N·rows·cols]
    const xPad = g.node('Pad', [g.transpose(x, [1, 0, 2, 3]), g.int64s([0, 0, top!, left!, 0, 0, rows * s - h - top!, cols * s - wd - left!])]);
    const phases = s === 1 ? g.reshape(xPad, [1, 1, c, cells]) : g.reshape(g.transpose(g.reshape(xPad, [c, n, rows, s, cols, s]), [3, 5, 0, 1, 2, 4]), [s, s, c, cells]);
    const last = Math.floor((kh - 1) / s) * cols + Math.floor((kw - 1) / s);
    const range = (v: string, axes: number[], from: number[], to: number[]) => g.node('Slice', [v, g.int64s(from), g.int64s(to), g.int64s(axes)]);
    // dy: [N, O, oh, ow] → [O, N, rows, cols] (zero beyond oh × ow), flat; its last `last` cells are zero and unused
    const dyFlat = range(g.reshape(g.node('Pad', [g.transpose(dy, [1, 0, 2, 3]), g.int64s([0, 0, 0, 0, 0, 0, rows - oh, cols - ow])]), [o, cells]), [1], [0], [cells - last]);
    const taps: string[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const shift = Math.floor(i / s) * cols + Math.floor(j / s);
        const phase = range(phases, [0, 1, 3], [i % s, j % s, shift], [(i % s) + 1, (j % s) + 1, cells - last + shift]);
        taps.push(g.reshape(g.node('Gemm', [dyFlat, g.reshape(phase, [c, cells - last])], { transB: { i: 1 } }), [o, c, 1]));
      }
    }
    return g.reshape(g.node('Concat', taps, { axis: { i: 2 } }), [o, c, kh, kw]);
  }

  /** Nearest-neighbour ×2 upsampling of x [N, C, H, W]; the gradient sums each 2×2 block. */
  upsample2x(x: string): string {
    const [n, c, h, w] = this.shape(x) as [number, number, number, number];
    const { g } = this;
    const spread = g.node('Expand', [g.reshape(x, [n, c, h, 1, w, 1]), g.int64s([n, c, h, 2, w, 2])]);
    return this.op(g.reshape(spread, [n, c, 2 * h, 2 * w]), [n, c, 2 * h, 2 * w], [x], (dy) => {
      this.accumulate(x, () => g.node('ReduceSum', [g.reshape(dy, [n, c, h, 2, w, 2]), g.int64s([3, 5])], { keepdims: { i: 0 } }));
    });
  }

  /**
   * Each row of x (over its last axis) divided by its l2 norm, x · rsqrt(Σx² + 1e-12) (quantizer.ts
   * l2Normalize). Its gradient is r · (dy − y · Σ(dy · y)), r = rsqrt(Σx² + 1e-12).
   */
  l2Normalize(x: string): string {
    const { g } = this;
    const sum = g.node('ReduceSum', [g.node('Mul', [x, x]), g.int64s([-1])], { keepdims: { i: 1 } });
    const r = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [sum, this.scalar(1e-12)])])]);
    const y = g.node('Mul', [x, r]);
    return this.op(y, this.known(x), [x], (dy) => {
      this.accumulate(x, () => {
        const dot = g.node('ReduceSum', [g.node('Mul', [dy, y]), g.int64s([-1])], { keepdims: { i: 1 } });
        return g.node('Mul', [r, g.node('Sub', [dy, g.node('Mul', [y, dot])])]);
      });
    });
  }

  /** The index of the largest entry along `axis` (int64, the axis dropped); no gradient passes. */
  argMax(x: string, axis: number): string {
    const s = this.known(x);
    const y = this.g.node('ArgMax', [x], { axis: { i: axis }, keepdims: { i: 0 } });
    if (s) this.shapes.set(y, s.filter((_, i) => i !== (axis < 0 ? s.length + axis : axis)));
    return y;
  }

  /** x, with no gradient passing back (quantizer.ts stopGradient). */
  stopGradient(x: string): string {
    const y = this.g.node('Identity', [x]);
    const s = this.known(x);
    if (s) this.shapes.set(y, [...s]);
    return y;
  }

  /** Forward `q`, the gradient straight to `z` (quantizer.ts straightThrough: z + sg(q − z)). */
  straightThrough(z: string, q: string): string {
    return this.op(this.g.node('Identity', [q]), this.known(q), [z], (dy) => this.accumulate(z, () => dy));
  }

  /** tanh(x) (layers.ts fastTanh computes it as 2σ(2x) − 1); its gradient is dy · (1 − y²). */
  tanh(x: string): string {
    const { g } = this;
    const y = g.node('Tanh', [x]);
    return this.op(y, this.known(x), [x], (dy) => {
      this.accumulate(x, () => g.node('Mul', [dy, g.node('Sub', [this.scalar(1), g.node('Mul', [y, y])])]));
    });
  }

  /** max(x, 0); its gradient is dy where x > 0 (0 at 0, as tfjs's). */
  relu(x: string): string {
    const { g } = this;
    return this.op(g.node('Relu', [x]), this.known(x), [x], (dy) => {
      this.accumulate(x, () => g.node('Mul', [dy, g.node('Cast', [g.node('Greater', [x, this.scalar(0)])], { to: { i: 1 } })]));
    });
  }

  /** max(x, αx) for 0 < α < 1; its gradient is dy where x ≥ 0, α·dy below (tfjs's maximum sends it to x at a tie). */
  leakyRelu(x: string, alpha: number): string {
    const { g } = this;
    return this.op(g.node('LeakyRelu', [x], { alpha: { f: alpha } }), this.known(x), [x], (dy) => {
      this.accumulate(x, () => g.node('Mul', [dy, g.node('Where', [g.node('Less', [x, this.scalar(0)]), this.scalar(alpha), this.scalar(1)])]));
    });
  }

  /** x + c for a constant c. */
  shift(x: string, c: number): string {
    return this.op(this.g.node('Add', [x, this.scalar(c)]), this.known(x), [x], (dy) => this.accumulate(x, () => dy));
  }

  /** float32 one-hot rows [R, depth] of int32 `indices` [R]. */
  oneHot(indices: string, depth: number): string {
    const { g } = this;
    const idx = g.node('Cast', [indices], { to: { i: 7 } }); // int64
    return g.node('OneHot', [idx, g.int64s([depth]), g.floats([0, 1])], { axis: { i: -1 } });
  }

  // ---- backward ---------------------------------------------------------------------------

  /**
   * Appends the backward pass from `value`, whose gradient is `seed` (a value of the same shape),
   * and returns the gradient of each of `wrt` (zeros where none reaches it).
   */
  backward(value: string, seed: string, wrt: readonly string[]): Record<string, string> {
    this.grads = new Map([[value, seed]]);
    this.shapes.set(seed, this.shape(value));
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const { outputs, back } = this.tape[i]!;
      const dys = outputs.map((o) => this.grads.get(o));
      if (dys.some((d) => d !== undefined)) back(dys);
    }
    const out: Record<string, string> = {};
    for (const w of wrt) out[w] = this.grads.get(w) ?? this.zeros(this.shape(w), `${w}_nograd`);
    return out;
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** Records an op's output (and its backward, when any of `from` needs a gradient); returns it. */
  private op(y: string, dims: readonly number[] | undefined, from: readonly string[], back: Backward): string {
    if (dims) this.shapes.set(y, [...dims]);
    else if (from.some((f) => this.tracked.has(f))) throw new Error(`grad tape: the shape of ${y} is unknown, so no gradient can pass through it`);
    this.recordMany([y], from, ([dy]) => back(dy!));
    return y;
  }

  private broadcast(a: string, b: string): number[] | undefined {
    const sa = this.known(a);
    const sb = this.known(b);
    return sa && sb ? broadcastShape(sa, sb) : undefined;
  }

  private recordMany(ys: readonly string[], from: readonly string[], back: BackwardMany): void {
    if (!from.some((f) => this.tracked.has(f))) return;
    for (const y of ys) this.tracked.add(y);
    this.tape.push({ outputs: ys, back });
  }

  /** Adds `grad()` to x's gradient (summing contributions), if x needs one. */
  private accumulate(x: string, grad: () => string): void {
    if (!this.tracked.has(x)) return;
    const d = grad();
    const had = this.grads.get(x);
    const sum = had === undefined ? d : this.g.add(had, d);
    this.shapes.set(sum, this.shape(x));
    this.shapes.set(d, this.shape(x));
    this.grads.set(x, sum);
  }

  /** dy summed down to `dims` (undoing numpy broadcasting). */
  private sumTo(dy: string, dims: readonly number[], from = this.shape(dy)): string {
    const lead = from.length - dims.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (dims[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    if (axes.length === 0) return dy;
    const summed = this.g.node('ReduceSum', [dy, this.g.int64s(axes)], { keepdims: { i: 1 } });
    return this.g.reshape(summed, dims);
  }

  private fusedMatMul(a: string, b: string, transA: boolean, transB: boolean): string {
    return this.g.node('FusedMatMul', [a, b], { transA: { i: transA ? 1 : 0 }, transB: { i: transB ? 1 : 0 }, alpha: { f: 1 } }, MS_DOMAIN);
  }

  private scalar(v: number): string {
    return this.g.floats([v], []);
  }

  private zeros(dims: readonly number[], name: string): string {
    const z = this.g.weight(name, new Float32Array(product(dims)), dims);
    this.shapes.set(z, [...dims]);
    return z;
  }
}

/** TF 'same' padding of one spatial axis: [output size, pad before, pad after]. */
export function samePadding(size: number, kernel: number, stride: number): [number, number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max(0, (out - 1) * stride + kernel - size);
  const before = Math.floor(total / 2);
  return [out, before, total - before];
}

/** numpy broadcasting of two shapes. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`grad tape: cannot broadcast [${a}] with [${b}]`);
    out.push(Math.max(x, y));
  }
  return out;
}
