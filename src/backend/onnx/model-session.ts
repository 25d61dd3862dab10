/**
 * A whole model (not one kernel) as one ONNX Runtime session, run synchronously: for inference
 * passes that run many times with the same weights (a decoding loop), where one native call per
 * pass replaces hundreds of tfjs kernels (each with its own call into ORT and its own copies).
 * The session has the backend's intra-op thread count (`--threads`).
 */
import * as tf from '@tensorflow/tfjs';
import { createNativeSession, type NativeSession, type OrtData, type OrtTensor } from './binding.js';
import { BACKEND_NAME } from './index.js';
import { buildModel, type GraphSpec, type ValueSpec } from './graphs.js';
import { sessionConfig } from './sessions.js';
import { inPlaceWrites } from './backend.js';

/** Whether models run as compiled sessions unless told otherwise: when the tfjs backend is `onnx`. */
export function compiledByDefault(): boolean {
  return tf.getBackend() === BACKEND_NAME;
}

export class ModelSession {
  private readonly session: NativeSession;
  private readonly inputs: readonly ValueSpec[];
  private readonly outputs: readonly ValueSpec[];

  constructor(spec: GraphSpec, threads = sessionConfig().threads) {
    this.inputs = spec.inputs;
    this.outputs = spec.outputs;
    this.session = createNativeSession(buildModel(spec), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      logSeverityLevel: 3,
    });
  }

  /**
   * Runs the model on `feeds` (every graph input, by name); returns every output, by name. The
   * outputs are fresh arrays, or what `take` gives for those it is asked about (the training step
   * takes its gradients' from the buffer pool, since they go straight into tensors).
   */
  run(feeds: Record<string, OrtData>, take?: (output: ValueSpec, size: number) => OrtData | undefined): Record<string, OrtData> {
    const inputs: Record<string, OrtTensor> = {};
    for (const v of this.inputs) {
      const data = feeds[v.name];
      const size = v.dims.reduce((a, b) => a * b, 1);
      if (!data || data.length !== size) throw new Error(`model input ${v.name}: expected ${size} values, got ${data?.length ?? 'none'}`);
      inputs[v.name] = { type: v.dtype, dims: v.dims, data };
    }
    const fetches: Record<string, OrtTensor> = {};
    for (const v of this.outputs) fetches[v.name] = { type: v.dtype, dims: v.dims, data: take?.(v, sizeOf(v)) ?? allocate(v) };
    this.session.run(inputs, fetches, {});
    const out: Record<string, OrtData> = {};
    for (const v of this.outputs) out[v.name] = fetches[v.name]!.data;
    return out;
  }
}

function sizeOf(v: ValueSpec): number {
  return v.dims.reduce((a, b) => a * b, 1);
}

function allocate(v: ValueSpec): OrtData {
  const size = sizeOf(v);
  switch (v.dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int64':
      return new BigInt64Array(size);
    default:
      return new Uint8Array(size);
  }
}

interface Compiled {
  /** The weights' data ids when compiled: tfjs gives a variable a new one whenever it is assigned. */
  weights: object[];
  /** And how many times each had been written in place then (an optimizer may update weights where they lie). */
  writes: number[];
  sessions: Map<string, ModelSession>;
}

const compiledModels = new WeakMap<object, Compiled>();

/**
 * The session for `owner` (a model) under `key` (e.g. its batch size), built from `build()` on first
 * use and kept while `weights` stay the same: once any of them has been assigned or written in place
 * (by training, by loading), the next call builds afresh.
 */
export function cachedModelSession(owner: object, weights: Record<string, { dataId: object }>, key: string, build: () => GraphSpec): ModelSession {
  const ids = Object.values(weights).map((v) => v.dataId);
  const writes = ids.map(inPlaceWrites);
  let entry = compiledModels.get(owner);
  if (!entry || entry.weights.length !== ids.length || entry.weights.some((id, i) => id !== ids[i] || entry!.writes[i] !== writes[i])) {
    entry = { weights: ids, writes, sessions: new Map() };
    compiledModels.set(owner, entry);
  }
  let session = entry.sessions.get(key);
  if (!session) entry.sessions.set(key, (session = new ModelSession(build())));
  return session;
}
