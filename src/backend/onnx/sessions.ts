/**
 * The session cache: one native ONNX Runtime session per distinct (op, shapes, dtype, attributes),
 * built on first use and run synchronously afterwards. ORT writes each output into a typed array
 * from the pool (pool.ts), which the cpu backend then owns. (The 1.14 binding also copies every
 * fetched output into a fresh ArrayBuffer that it returns; we drop that copy, it is not avoidable.)
 */
import os from 'node:os';
import { createNativeSession, type NativeSession, type OrtData, type OrtTensor } from './binding.js';
import { buildModel, type GraphSpec, type ValueSpec } from './graphs.js';
import { takeFloat32, takeInt32 } from './pool.js';

export interface SessionConfig {
  /** ORT intra-op threads. */
  threads: number;
}

export interface CompiledOp {
  readonly key: string;
  readonly session: NativeSession;
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** Preallocated feed / fetch records (only `data` changes from call to call). */
  readonly feeds: Record<string, OrtTensor>;
  readonly fetches: Record<string, OrtTensor>;
  /** The op family, for profiles (the key up to its first '|'). */
  readonly family: string;
}

export interface OpStats {
  calls: number;
  ms: number;
}

export interface OnnxStats {
  sessions: number;
  sessionBuildMs: number;
  calls: number;
  /** Per op family (when profiling is on): calls and ms spent inside `run`. */
  byOp: Record<string, OpStats>;
  /** Calls that a replaced kernel left to the cpu kernel (when profiling is on), by kernel and inputs. */
  fallbacks: Record<string, OpStats>;
}

/** At most this many sessions are kept; the oldest is dropped past it. */
const MAX_SESSIONS = 4096;

let config: SessionConfig = { threads: defaultThreads() };
const cache = new Map<string, CompiledOp>();
const RUN_OPTIONS: Record<string, unknown> = {};
let profiling = false;
let stats: OnnxStats = { sessions: 0, sessionBuildMs: 0, calls: 0, byOp: {}, fallbacks: {} };

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Sets the session options; a change drops the cached sessions (they were built with the old ones). */
export function configureSessions(next: Partial<SessionConfig>): void {
  const threads = Math.max(1, Math.floor(next.threads ?? config.threads));
  if (threads !== config.threads) cache.clear();
  config = { threads };
}

export function sessionConfig(): Readonly<SessionConfig> {
  return config;
}

let detailed = false;

/**
 * Turns per-op timing on or off (off by default: it costs two clock reads a call); `perShape`
 * keys the timings by the full session key (op, shapes, attributes) instead of the op family.
 */
export function setProfiling(on: boolean, perShape = false): void {
  profiling = on;
  detailed = perShape;
}

export function isProfiling(): boolean {
  return profiling;
}

export function recordFallback(what: string, ms: number): void {
  const s = (stats.fallbacks[what] ??= { calls: 0, ms: 0 });
  s.calls++;
  s.ms += ms;
}

export function onnxStats(): OnnxStats {
  return { ...stats, sessions: cache.size, byOp: { ...stats.byOp }, fallbacks: { ...stats.fallbacks } };
}

export function resetOnnxStats(): void {
  stats = { sessions: 0, sessionBuildMs: 0, calls: 0, byOp: {}, fallbacks: {} };
}

export function clearSessions(): void {
  cache.clear();
}

/**
 * The compiled op for `key`, built from `build()` on first use. A `threaded` session (only the
 * matMul engine, engine.ts) gets `config.threads` intra-op threads; every other session runs on the
 * calling thread alone (intraOpNumThreads 1: ORT makes no pool for it). ORT gives every session
 * its own pool, whose workers spin for a while after each run, so pools that take turns fight over
 * the cores; see engine.ts.
 */
export function compiled(key: string, build: () => GraphSpec, threaded = false): CompiledOp {
  const hit = cache.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const spec = build();
  const session = createNativeSession(buildModel(spec), {
    intraOpNumThreads: threaded ? config.threads : 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  });
  const feeds: Record<string, OrtTensor> = {};
  for (const v of spec.inputs) feeds[v.name] = { type: v.dtype, dims: v.dims, data: EMPTY[v.dtype] };
  const fetches: Record<string, OrtTensor> = {};
  for (const v of spec.outputs) fetches[v.name] = { type: v.dtype, dims: v.dims, data: EMPTY[v.dtype] };
  const bar = key.indexOf('|');
  const op: CompiledOp = {
    key,
    session,
    inputs: spec.inputs,
    outputs: spec.outputs,
    feeds,
    fetches,
    family: bar < 0 ? key : key.slice(0, bar),
  };
  if (cache.size >= MAX_SESSIONS) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, op);
  stats.sessions++;
  stats.sessionBuildMs += performance.now() - t0;
  return op;
}

const EMPTY: Record<string, OrtData> = {
  float32: new Float32Array(0),
  int32: new Int32Array(0),
  int64: new BigInt64Array(0),
  bool: new Uint8Array(0),
  uint8: new Uint8Array(0),
};

/** Runs `op` synchronously on `inputs` (in the order of its graph inputs), writing into `outputs`. */
export function runCompiled(op: CompiledOp, inputs: readonly OrtData[], outputs: readonly OrtData[]): void {
  const { feeds, fetches } = op;
  for (let i = 0; i < op.inputs.length; i++) feeds[op.inputs[i]!.name]!.data = inputs[i]!;
  for (let i = 0; i < op.outputs.length; i++) fetches[op.outputs[i]!.name]!.data = outputs[i]!;
  stats.calls++;
  if (!profiling) {
    try {
      op.session.run(feeds, fetches, RUN_OPTIONS);
    } finally {
      clearFeeds(op);
    }
    return;
  }
  const t0 = performance.now();
  try {
    op.session.run(feeds, fetches, RUN_OPTIONS);
  } finally {
    clearFeeds(op);
    const s = (stats.byOp[detailed ? op.key : op.family] ??= { calls: 0, ms: 0 });
    s.calls++;
    s.ms += performance.now() - t0;
  }
}

/** Runs `op` on explicitly named feeds and fetches (for models whose inputs vary in shape). */
export function runNamed(op: CompiledOp, feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor>): void {
  stats.calls++;
  if (!profiling) {
    op.session.run(feeds, fetches, RUN_OPTIONS);
    return;
  }
  const t0 = performance.now();
  try {
    op.session.run(feeds, fetches, RUN_OPTIONS);
  } finally {
    const s = (stats.byOp[detailed ? `${op.family}|${Object.values(fetches)[0]?.dims.join(',')}` : op.family] ??= { calls: 0, ms: 0 });
    s.calls++;
    s.ms += performance.now() - t0;
  }
}

/** Whether `op` is still the cached session for its key (a change of options rebuilds them all). */
export function isCached(op: CompiledOp): boolean {
  return cache.get(op.key) === op;
}

/** Drops the references to the caller's arrays so that the cache does not keep them alive. */
function clearFeeds(op: CompiledOp): void {
  for (const v of op.inputs) op.feeds[v.name]!.data = EMPTY[v.dtype]!;
  for (const v of op.outputs) op.fetches[v.name]!.data = EMPTY[v.dtype]!;
}

/** An output array of `dtype` and `size` elements, from the pool (its contents are garbage). */
export function allocate(dtype: 'float32' | 'int32', size: number): Float32Array | Int32Array {
  return dtype === 'int32' ? takeInt32(size) : takeFloat32(size);
}
