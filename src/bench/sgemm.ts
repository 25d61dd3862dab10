/**
 * The native sgemm limit of this machine, measured where the benches run: one large float32 MatMul
 * ([2048, 1024] × [1024, 1024], 4.3 GFLOP) as an ONNX Runtime session on the backend's threads. A
 * training step's GFLOP/s is read against it (`bench train-transformer` on onnx), since machines of
 * one kind differ by 2× and only same-run ratios mean something.
 *
 * On this shared (virtual) machine one sgemm's throughput jumps between two levels a factor 2 apart
 * from one 10–30 ms run to the next, in ONNX Runtime and PyTorch alike, at one thread or two (the
 * host, not the code). A single short sgemm therefore reads either level; a probe of `repeats`
 * back-to-back sgemms (about as long as a training step) reads the mean rate the machine sustains,
 * as the step does. The bench times it interleaved with the step, so both see the same load.
 */
import { GraphBuilder } from '../backend/onnx/graph-builder.js';
import { ModelSession } from '../backend/onnx/model-session.js';

export const SGEMM_SHAPE: readonly [number, number, number] = [2048, 1024, 1024];

/** `repeats` sgemms of `shape` ([m, k] × [k, n]) on one ready session: `run()` multiplies `repeats` times; `flop` per run. */
export function sgemmProbe(repeats = 8, [m, k, n]: readonly [number, number, number] = SGEMM_SHAPE): { run: () => void; flop: number } {
  const g = new GraphBuilder();
  const a = g.input('a', 'float32', [m, k]);
  const b = g.weight('b', Float32Array.from({ length: k * n }, (_, i) => Math.sin(i) * 0.01), [k, n]);
  g.output(g.matMul(a, b), 'y', 'float32', [m, n]);
  const session = new ModelSession(g.build());
  const feeds = { a: Float32Array.from({ length: m * k }, (_, i) => Math.cos(i) * 0.01) };
  const out = new Float32Array(m * n);
  return {
    run: () => {
      for (let i = 0; i < repeats; i++) session.run(feeds, () => out);
    },
    flop: repeats * 2 * m * k * n,
  };
}

/** GFLOP/s of `flop` done in `ms` milliseconds. */
export function gflopsOf(flop: number, ms: number): number {
  return flop / (ms * 1e6);
}
