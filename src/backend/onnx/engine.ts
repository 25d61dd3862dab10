/**
 * The threaded matMul engine: ONE session that holds every matrix product the backend runs on more
 * than one thread, so that exactly one intra-op thread pool exists.
 *
 * Why one: ORT (1.14) gives each session its own pool, and a pool's workers spin on a core for a
 * while (~1M pause instructions, tens of ms) after every run before they sleep. A training step
 * alternates between dozens of differently shaped products; with a pool per shape, the spinning
 * workers of the previous products crowd out the current one (measured: a step 4–5× slower with
 * 2 threads than with 1). With one pool, its worker spins on the second core while the main thread
 * does the single-threaded work in between, and is right there for the next product.
 *
 * Measured on the 2-core machine: [2048,256]×[256,1024] at ~330 GFLOP/s (1 thread: ~185). A whole
 * transformer training step is about as fast as with one thread, though: between products the
 * spinning worker holds the core that V8's garbage-collector threads want (GC time per step doubles).
 * A pool that does not spin would fix that; the 1.14 binding cannot set `allow_spinning`.
 *
 * The graph has eight independent nodes with dynamic shapes: com.microsoft FusedMatMul (MatMul with
 * transpose flags, numpy batch broadcasting) for the four flag combinations, without and with a
 * bias Add. A call feeds the inputs of one node and fetches its output; the other nodes run on
 * 1-element dummies (~20 µs a call in all, next to products of ≥ 50 µs).
 */
import type { OrtTensor } from './binding.js';
import { MS_DOMAIN, int, float, type GraphSpec, type NodeSpec, type ValueSpec } from './graphs.js';
import { compiled, isCached, runNamed, type CompiledOp } from './sessions.js';

const SLOTS = 8;

function engineSpec(): GraphSpec {
  const nodes: NodeSpec[] = [];
  const inputs: ValueSpec[] = [];
  const outputs: ValueSpec[] = [];
  const open = (name: string): ValueSpec => ({ name, dtype: 'float32', dims: [], open: true });
  for (let slot = 0; slot < SLOTS; slot++) {
    const transA = slot & 1 ? 1 : 0;
    const transB = slot & 2 ? 1 : 0;
    const bias = slot >= 4;
    inputs.push(open(`a${slot}`), open(`b${slot}`));
    const attrs = { transA: int(transA), transB: int(transB), alpha: float(1) };
    if (bias) {
      inputs.push(open(`c${slot}`));
      nodes.push({ op: 'FusedMatMul', domain: MS_DOMAIN, inputs: [`a${slot}`, `b${slot}`], outputs: [`p${slot}`], attrs });
      nodes.push({ op: 'Add', inputs: [`p${slot}`, `c${slot}`], outputs: [`y${slot}`] });
    } else {
      nodes.push({ op: 'FusedMatMul', domain: MS_DOMAIN, inputs: [`a${slot}`, `b${slot}`], outputs: [`y${slot}`], attrs });
    }
    outputs.push(open(`y${slot}`));
  }
  return { nodes, inputs, outputs };
}

let engine: CompiledOp | undefined;
let dummies: Record<string, OrtTensor> | undefined;

function get(): CompiledOp {
  if (engine && isCached(engine)) return engine;
  engine = compiled('MatMulEngine', engineSpec, true);
  dummies = {};
  const one = new Float32Array(1);
  for (let slot = 0; slot < SLOTS; slot++) {
    dummies[`a${slot}`] = { type: 'float32', dims: [1, 1], data: one };
    dummies[`b${slot}`] = { type: 'float32', dims: [1, 1], data: one };
    if (slot >= 4) dummies[`c${slot}`] = { type: 'float32', dims: [1], data: one };
  }
  return engine;
}

/**
 * y = op(a)·op(b) (+ c), on the shared threaded session. Shapes follow MatMul (numpy batch
 * broadcasting); `c` broadcasts against the product. `out` receives the product of shape `outDims`.
 */
export function engineMatMul(
  a: Float32Array,
  aDims: readonly number[],
  b: Float32Array,
  bDims: readonly number[],
  transA: boolean,
  transB: boolean,
  c: { data: Float32Array; dims: readonly number[] } | null,
  out: Float32Array,
  outDims: readonly number[],
): void {
  const op = get();
  const slot = (transA ? 1 : 0) | (transB ? 2 : 0) | (c ? 4 : 0);
  const feeds: Record<string, OrtTensor> = { ...dummies! };
  feeds[`a${slot}`] = { type: 'float32', dims: aDims, data: a };
  feeds[`b${slot}`] = { type: 'float32', dims: bDims, data: b };
  if (c) feeds[`c${slot}`] = { type: 'float32', dims: c.dims, data: c.data };
  runNamed(op, feeds, { [`y${slot}`]: { type: 'float32', dims: outDims, data: out } });
}
