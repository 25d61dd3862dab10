/**
 * The native sgemm limit of this machine, measured where the benches run: large float32 MatMuls as
 * ONNX Runtime sessions on the backend's threads. A training step's GFLOP/s is read against it
 * (`bench train-transformer` on onnx), since machines of one kind differ by 2× and only same-run
 * ratios mean something.
 *
 * On this shared (virtual) machine a MatMul whose right-hand side is large ([2048, 1024] × [1024,
 * 1024]: 4 MB) runs at one of two or three levels up to 3× apart, from one run to the next and from
 * one process to the next, in ONNX Runtime and PyTorch alike, at one thread or two (the host's shared
 * cache, not the code), while one with a 1 MB right-hand side ([2560, 1024] × [1024, 256], the
 * shape of the transformer's widest products) stays at the top level. The limit is the faster of
 * the two in each round; each is `repeats` back-to-back MatMuls, about as long as a training step,
 * timed between the steps, so that both see the same load, each measured run after an unmeasured
 * one of its own (the step's thread pool spins for a while after it and took ~25 % off the probe).
 */
import { GraphBuilder } from '../backend/onnx/graph-builder.js';
import { ModelSession } from '../backend/onnx/model-session.js';

export const SGEMM_SHAPES: readonly (readonly [number, number, number])[] = [
  [2048, 1024, 1024],
  [2560, 1024, 256],
];

/** `repeats` sgemms of `shape` ([m, k] × [k, n]) on one ready session: `run()` multiplies `repeats` times; `flop` per run. */
export function sgemmProbe([m, k, n]: readonly [number, number, number], repeats = 8): { run: () => void; flop: number } {
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
