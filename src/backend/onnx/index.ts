/**
 * The `onnx` tfjs backend: the pure-JS cpu backend (tensors are JS typed arrays, every op and
 * gradient exists) with its hot kernels replaced by ONNX Runtime's native ones, each a cached
 * single-node (or few-node) session run synchronously through the native binding.
 *
 *   await registerOnnxBackend({ threads: 2 });
 *   await tf.setBackend('onnx');
 *
 * Replaced kernels: BatchMatMul and _FusedMatMul (every transpose flag, bias, activations), Conv2D,
 * FusedConv2D and both backprops, the element-wise ops a transformer step spends its time in (Add,
 * Sub, Multiply, RealDiv, SquaredDifference, Pow, Exp, Log, Sqrt, Rsqrt, Sigmoid, Tanh, Erf, Relu,
 * Elu, Step, ...), the reductions Sum / Mean / Max / Min / Prod, Softmax and Transpose; plus JS
 * kernels for GatherV2 and UnsortedSegmentSum (embedding lookup and its gradient). Every replaced
 * kernel falls back to the cpu one for what it does not cover (other dtypes, tiny tensors, odd
 * attributes).
 *
 * Threads: products of ≥ 4 MFLOP run on one shared session with `threads` intra-op threads
 * (engine.ts); everything else runs single-threaded in per-shape sessions (sessions.ts says why).
 * Memory: inputs are read in place; outputs are typed arrays from a pool of recycled buffers
 * (pool.ts), owned by the cpu backend's storage like any cpu tensor's.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendOptions } from '../options.js';
import { disownAliases, OnnxBackend } from './backend.js';
import { nativeBinding } from './binding.js';
import { configureSessions, defaultThreads, isProfiling, recordFallback } from './sessions.js';
import { convKernels } from './kernels/conv.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { layoutKernels } from './kernels/layout.js';
import { matMulKernels } from './kernels/matmul.js';
import { poolKernels } from './kernels/pool.js';
import { adamwInPlace, fusedKernels } from './kernels/fused.js';
import { registerInPlaceAdamW } from '../../nn/fused-kernels.js';
import { reduceKernels } from './kernels/reduce.js';
import type { Kernel, KernelArgs, OnnxKernel } from './kernels/util.js';

export { onnxStats, resetOnnxStats, setProfiling, sessionConfig, clearSessions } from './sessions.js';
export { checkBinding, PINNED_ORT_VERSION } from './binding.js';
export { poolStats, drainPool, setPoolLimit } from './pool.js';

export const BACKEND_NAME = 'onnx';

/** Every kernel the onnx backend runs itself (the rest are the cpu backend's). */
export const ONNX_KERNELS: readonly OnnxKernel[] = [...matMulKernels, ...convKernels, ...elementwiseKernels, ...reduceKernels, ...layoutKernels, ...poolKernels];

let registered = false;

/**
 * Registers the `onnx` backend (once; later calls only update the thread count) and its kernels.
 * Throws if onnxruntime-node's native binding is missing or not the pinned version.
 */
export async function registerOnnxBackend(opts: BackendOptions = {}): Promise<void> {
  configureSessions({ threads: opts.threads ?? defaultThreads() });
  if (registered) return;
  nativeBinding();
  if (!tf.findBackendFactory(BACKEND_NAME)) {
    // below cpu's priority, so that registering never changes the default backend
    tf.registerBackend(BACKEND_NAME, () => new OnnxBackend(), 0);
  }
  const ours = new Map(ONNX_KERNELS.map((k) => [k.name, k]));
  for (const config of tf.getKernelsForBackend('cpu')) {
    if (tf.getKernel(config.kernelName, BACKEND_NAME)) continue;
    const mine = ours.get(config.kernelName);
    const cpu = guarded(config.kernelFunc as unknown as Kernel);
    tf.registerKernel({
      ...config,
      backendName: BACKEND_NAME,
      kernelFunc: (mine ? withFallback(mine, cpu) : cpu) as unknown as tf.KernelFunc,
    });
  }
  for (const f of fusedKernels) {
    if (!tf.getKernel(f.name, BACKEND_NAME)) tf.registerKernel({ kernelName: f.name, backendName: BACKEND_NAME, kernelFunc: f.run as unknown as tf.KernelFunc });
  }
  registerInPlaceAdamW(BACKEND_NAME, adamwInPlace);
  registered = true;
}

/** A cpu kernel, followed by the check that keeps pooled buffers that it aliased out of the pool. */
function guarded(cpu: Kernel): Kernel {
  return (args: KernelArgs) => {
    const out = cpu(args);
    disownAliases(args.backend, args.inputs, out);
    return out;
  };
}

function withFallback(kernel: OnnxKernel, cpu: Kernel): Kernel {
  return (args: KernelArgs) => {
    const out = kernel.run(args);
    if (out) return out;
    if (isProfiling()) {
      const t0 = performance.now();
      const res = cpu(args);
      const shapes = Object.values(args.inputs).map((t) => (t ? `${t.dtype}[${t.shape.join(',')}]` : '-'));
      recordFallback(`${kernel.name} ${shapes.join(' ')}`, performance.now() - t0);
      return res;
    }
    return cpu(args);
  };
}
