/**
 * Synchronous access to ONNX Runtime's native Node binding.
 *
 * onnxruntime-node's public `InferenceSession.run` returns a Promise, but all it does is call the
 * native binding's `run` (which is synchronous) on the next tick. tfjs kernels must be synchronous,
 * so this module loads the native binding itself (`onnxruntime-node/dist/binding.js`) and calls it
 * directly. That is an internal interface: it is pinned to exactly one onnxruntime-node version (the
 * one @xenova/transformers uses, so one native library is loaded), and `checkBinding` verifies its
 * shape; test/onnx-binding.test.ts fails loudly if either changes.
 *
 * The binding in 1.14.0 (onnxruntime/js/node/src/inference_session_wrap.cc):
 *   new binding.InferenceSession()
 *   session.loadModel(path, options)  // or (buffer: ArrayBuffer, byteOffset, byteLength, options)
 *   session.inputNames / session.outputNames: string[]
 *   session.run(feeds, fetches, runOptions) → { [output]: { type, dims, data, size } }
 * Feeds are `{ type, dims, data }` with `data` a typed array of the matching kind (read in place,
 * no copy). A fetch is `null` (the binding allocates and copies the output into a new typed array)
 * or a `{ type, dims, data }` whose `data` the binding writes the output into (no extra copy).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** The onnxruntime-node version whose binding this module speaks to. */
export const PINNED_ORT_VERSION = '1.14.0';

export type OrtDataType = 'float32' | 'int32' | 'int64' | 'bool' | 'uint8';
export type OrtData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

/** A tensor as the binding reads and writes it. */
export interface OrtTensor {
  type: OrtDataType;
  dims: readonly number[];
  data: OrtData;
}

export interface NativeSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode?: 'sequential' | 'parallel';
  enableCpuMemArena?: boolean;
  enableMemPattern?: boolean;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

/** The native `InferenceSession` object of onnxruntime-node 1.14.0. */
export interface NativeSession {
  loadModel(path: string, options: NativeSessionOptions): void;
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: NativeSessionOptions): void;
  readonly inputNames: string[];
  readonly outputNames: string[];
  run(
    feeds: Record<string, OrtTensor>,
    fetches: Record<string, OrtTensor | null>,
    options: Record<string, unknown>,
  ): Record<string, OrtTensor & { size?: number }>;
}

interface NativeBinding {
  InferenceSession: new () => NativeSession;
}

const require = createRequire(import.meta.url);
let loaded: NativeBinding | undefined;

/** The installed onnxruntime-node version (read from its package.json). */
export function installedOrtVersion(): string {
  const pkg = require('onnxruntime-node/package.json') as { version?: unknown };
  return String(pkg.version);
}

/**
 * Problems with the installed binding's shape, or [] if it is what this module expects. Checks the
 * version pin, the exported constructor and the session's methods and properties.
 */
export function checkBinding(): string[] {
  const problems: string[] = [];
  let version: string;
  try {
    version = installedOrtVersion();
  } catch (err) {
    return [`onnxruntime-node is not installed (${(err as Error).message})`];
  }
  if (version !== PINNED_ORT_VERSION) {
    problems.push(`onnxruntime-node is ${version}; the onnx backend speaks to the native binding of exactly ${PINNED_ORT_VERSION}`);
  }
  let mod: unknown;
  try {
    mod = require('onnxruntime-node/dist/binding.js');
  } catch (err) {
    problems.push(`cannot load onnxruntime-node/dist/binding.js: ${(err as Error).message}`);
    return problems;
  }
  const binding = (mod as { binding?: unknown } | null)?.binding as Record<string, unknown> | undefined;
  if (!binding || typeof binding !== 'object') {
    problems.push('onnxruntime-node/dist/binding.js no longer exports `binding`');
    return problems;
  }
  const ctor = binding.InferenceSession;
  if (typeof ctor !== 'function') {
    problems.push('binding.InferenceSession is not a constructor');
    return problems;
  }
  const proto = (ctor as { prototype?: object }).prototype ?? {};
  for (const method of ['loadModel', 'run']) {
    const d = Object.getOwnPropertyDescriptor(proto, method);
    if (!d || typeof d.value !== 'function') problems.push(`binding.InferenceSession.prototype.${method} is missing`);
  }
  for (const prop of ['inputNames', 'outputNames']) {
    const d = Object.getOwnPropertyDescriptor(proto, prop);
    if (!d || typeof d.get !== 'function') problems.push(`binding.InferenceSession.prototype.${prop} (getter) is missing`);
  }
  return problems;
}

/** The native binding; throws (with every problem found) if it is not the pinned one. */
export function nativeBinding(): NativeBinding {
  if (loaded) return loaded;
  const problems = checkBinding();
  if (problems.length > 0) throw new Error(`onnx backend: unusable onnxruntime-node binding: ${problems.join('; ')}`);
  loaded = (require('onnxruntime-node/dist/binding.js') as { binding: NativeBinding }).binding;
  return loaded;
}

let modelDir: string | null | undefined;
let modelCount = 0;

/**
 * A native session loaded from ONNX model bytes.
 *
 * The model goes through a temporary file: in 1.14.0 the binding's `loadModel(buffer, byteOffset,
 * byteLength, options)` never reads `options` (any value is accepted and ORT's defaults apply: a
 * thread pool per session sized to the machine), while `loadModel(path, options)` parses and applies
 * them. test/onnx-binding.test.ts checks both behaviours.
 */
export function createNativeSession(model: Uint8Array, options: NativeSessionOptions): NativeSession {
  const session = new (nativeBinding().InferenceSession)();
  const file = modelFile();
  if (file === null) {
    // no writable temp dir: the model loads, with ORT's default threading
    session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, options);
    return session;
  }
  fs.writeFileSync(file, model);
  try {
    session.loadModel(file, options);
  } finally {
    fs.rmSync(file, { force: true });
  }
  return session;
}

/** A fresh file name in a private temp dir (removed at exit), or null if none can be made. */
function modelFile(): string | null {
  if (modelDir === undefined) {
    try {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskgen-onnx-'));
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      modelDir = dir;
    } catch {
      modelDir = null;
    }
  }
  return modelDir === null ? null : path.join(modelDir, `m${modelCount++}.onnx`);
}
