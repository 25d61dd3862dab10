/**
 * Writing a whole model's forward pass as one ONNX graph: each call adds a node and returns the
 * name of its output, so that the code building a graph reads like the model it compiles
 * (`const h = g.add(x, g.gemm(a, w, b))`). Weights become raw float32 initializers.
 */
import { MS_DOMAIN, type AttrValue, type GraphSpec, type InitializerSpec, type NodeSpec, type ValueSpec } from './graphs.js';

/** LayerNormalization and com.microsoft QuickGelu need opset 17. */
export const MODEL_OPSET = 17;

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inputs: ValueSpec[] = [];
  private readonly outputs: ValueSpec[] = [];
  private readonly initializers: InitializerSpec[] = [];
  private readonly names = new Set<string>();
  private count = 0;

  /** A graph input of fixed shape. */
  input(name: string, dtype: ValueSpec['dtype'], dims: readonly number[]): string {
    this.claim(name);
    this.inputs.push({ name, dtype, dims });
    return name;
  }

  /** Marks `value` as the graph output `name` (fixed shape). */
  output(value: string, name: string, dtype: ValueSpec['dtype'], dims: readonly number[]): void {
    this.claim(name);
    this.nodes.push({ op: 'Identity', inputs: [value], outputs: [name] });
    this.outputs.push({ name, dtype, dims });
  }

  /** A float32 constant (a weight), `data` in row-major order. */
  weight(name: string, data: Float32Array, dims: readonly number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`graph weight ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
    this.claim(name);
    this.initializers.push({ name, dtype: 'float32', dims, raw: data });
    return name;
  }

  /** An int64 constant (a shape, axes, a split). */
  int64s(values: readonly number[]): string {
    const name = this.fresh('c');
    this.initializers.push({ name, dtype: 'int64', dims: [values.length], values });
    return name;
  }

  /** One node of `op`; returns its (single) output's name. */
  node(op: string, inputs: readonly string[], attrs?: Record<string, AttrValue>, domain?: string): string {
    const out = this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs, domain });
    return out;
  }

  /** One node of `op` with `count` outputs; returns their names. */
  nodeOutputs(op: string, inputs: readonly string[], count: number, attrs?: Record<string, AttrValue>, domain?: string): string[] {
    const outs = Array.from({ length: count }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs, domain });
    return outs;
  }

  /** A float32 constant of a few values (a scalar when `dims` is []). */
  floats(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.fresh('f');
    this.initializers.push({ name, dtype: 'float32', dims, values });
    return name;
  }

  add(a: string, b: string): string {
    return this.node('Add', [a, b]);
  }

  /** x [M, K] · w [K, N] + b [N]. */
  gemm(x: string, w: string, b: string): string {
    return this.node('Gemm', [x, w, b]);
  }

  matMul(a: string, b: string): string {
    return this.node('MatMul', [a, b]);
  }

  reshape(x: string, dims: readonly number[]): string {
    return this.node('Reshape', [x, this.int64s(dims)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.node('Transpose', [x], { perm: { ints: perm } });
  }

  /** Over the last axis, with gain and bias. */
  layerNorm(x: string, g: string, b: string, eps: number): string {
    return this.node('LayerNormalization', [x, g, b], { axis: { i: -1 }, epsilon: { f: eps } });
  }

  /** x·σ(αx) (ONNX Runtime's QuickGelu). */
  quickGelu(x: string, alpha: number): string {
    return this.node('QuickGelu', [x], { alpha: { f: alpha } }, MS_DOMAIN);
  }

  softmax(x: string): string {
    return this.node('Softmax', [x], { axis: { i: -1 } });
  }

  build(): GraphSpec {
    return { nodes: this.nodes, inputs: this.inputs, outputs: this.outputs, initializers: this.initializers, opset: MODEL_OPSET };
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}${this.count++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`graph: the name ${name} is taken`);
    this.names.add(name);
  }
}
