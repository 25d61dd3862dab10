/**
 * The native sgemm limit of this machine, measured where the benches run: one large float32 MatMul
 * ([2048, 1024] × [1024, 1024], 4.3 GFLOP) as an ONNX Runtime session on the backend's threads. A
 * training step's GFLOP/s is read against it (`bench train-transformer` on onnx), since machines of
 * one kind differ by 2× and only same-run ratios mean something.
 */
import { GraphBuilder } from '../backend/onnx/graph-builder.js';
import { ModelSession } from '../backend/onnx/model-session.js';
import { timeMedian } from './timing.js';

export async function measureSgemmGflops(runs = 10, [m, k, n]: [number, number, number] = [2048, 1024, 1024]): Promise<number> {
  const g = new GraphBuilder();
  const a = g.input('a', 'float32', [m, k]);
  const b = g.weight('b', Float32Array.from({ length: k * n }, (_, i) => Math.sin(i) * 0.01), [k, n]);
  g.output(g.matMul(a, b), 'y', 'float32', [m, n]);
  const session = new ModelSession(g.build());
  const feeds = { a: Float32Array.from({ length: m * k }, (_, i) => Math.cos(i) * 0.01) };
  const out = new Float32Array(m * n);
  const ms = await timeMedian(() => void session.run(feeds, () => out), runs, 2);
  return (2 * m * k * n) / (ms * 1e6);
}
