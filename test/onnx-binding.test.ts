/**
 * The onnx backend calls onnxruntime-node's native binding directly (its public API is async only).
 * That binding is internal: these tests pin exactly what the backend relies on, and fail loudly if
 * an upgrade of onnxruntime-node changes it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBinding, createNativeSession, installedOrtVersion, nativeBinding, PINNED_ORT_VERSION } from '../src/backend/onnx/binding.js';
import { buildModel, singleNode } from '../src/backend/onnx/graphs.js';

const require = createRequire(import.meta.url);

function addModel(n: number): Uint8Array {
  return buildModel(
    singleNode(
      'Add',
      [
        { name: 'a', dtype: 'float32', dims: [n] },
        { name: 'b', dtype: 'float32', dims: [n] },
      ],
      { name: 'y', dtype: 'float32', dims: [n] },
    ),
  );
}

const OPTIONS = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3 } as const;

describe('onnxruntime-node native binding', () => {
  it(`is onnxruntime-node ${PINNED_ORT_VERSION} exactly, the version @xenova/transformers uses`, () => {
    expect(installedOrtVersion()).toBe(PINNED_ORT_VERSION);
    const xenova = require('@xenova/transformers/package.json') as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    const wanted = xenova.dependencies?.['onnxruntime-node'] ?? xenova.optionalDependencies?.['onnxruntime-node'];
    expect(wanted).toBe(PINNED_ORT_VERSION);
  });

  it('has the shape the backend relies on', () => {
    expect(checkBinding()).toEqual([]);
    const mod = require('onnxruntime-node/dist/binding.js') as { binding: { InferenceSession: { prototype: object } } };
    const proto = mod.binding.InferenceSession.prototype;
    expect(typeof Object.getOwnPropertyDescriptor(proto, 'loadModel')?.value).toBe('function');
    expect(typeof Object.getOwnPropertyDescriptor(proto, 'run')?.value).toBe('function');
    expect(typeof Object.getOwnPropertyDescriptor(proto, 'inputNames')?.get).toBe('function');
    expect(typeof Object.getOwnPropertyDescriptor(proto, 'outputNames')?.get).toBe('function');
    expect(nativeBinding()).toBe(mod.binding);
  });

  it('loads a model from a buffer with our session options and names its inputs and outputs', () => {
    const s = createNativeSession(addModel(4), OPTIONS);
    expect(s.inputNames).toEqual(['a', 'b']);
    expect(s.outputNames).toEqual(['y']);
  });

  it('runs synchronously and returns { type, dims, data } when the fetch is null', () => {
    const s = createNativeSession(addModel(4), OPTIONS);
    const a = { type: 'float32' as const, dims: [4], data: new Float32Array([1, 2, 3, 4]) };
    const b = { type: 'float32' as const, dims: [4], data: new Float32Array([10, 20, 30, 40]) };
    const out = s.run({ a, b }, { y: null }, {});
    expect(out).not.toBeInstanceOf(Promise);
    const y = out.y!;
    expect(y.type).toBe('float32');
    expect(Array.from(y.dims)).toEqual([4]);
    expect(y.data).toBeInstanceOf(Float32Array);
    expect(Array.from(y.data as Float32Array)).toEqual([11, 22, 33, 44]);
  });

  it('writes into a preallocated fetch and reads inputs that are views at an offset', () => {
    const s = createNativeSession(addModel(3), OPTIONS);
    const backing = new Float32Array([0, 1, 2, 3, 100, 200, 300]);
    const out = new Float32Array(5).fill(-1);
    s.run(
      {
        a: { type: 'float32', dims: [3], data: backing.subarray(1, 4) },
        b: { type: 'float32', dims: [3], data: backing.subarray(4, 7) },
      },
      { y: { type: 'float32', dims: [3], data: out.subarray(1, 4) } },
      {},
    );
    expect(Array.from(out)).toEqual([-1, 101, 202, 303, -1]);
  });

  it('applies session options when the model loads from a path, and ignores them from a buffer (1.14.0)', () => {
    // why createNativeSession goes through a temp file: from a buffer, options never reach ORT
    const model = addModel(4);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'maskgen-onnx-test-')), 'add.onnx');
    fs.writeFileSync(file, model);
    const Session = nativeBinding().InferenceSession;
    const bad = { intraOpNumThreads: 'two' } as unknown as typeof OPTIONS;
    expect(() => new Session().loadModel(file, bad)).toThrow(/intraOpNumThreads/);
    expect(() => new Session().loadModel(file, { ...OPTIONS, graphOptimizationLevel: 'bogus' } as unknown as typeof OPTIONS)).toThrow(/graphOptimizationLevel/);
    // if this starts throwing, the buffer path reads options now and the temp file is no longer needed
    expect(() => new Session().loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, bad)).not.toThrow();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('gives a session loaded with intraOpNumThreads 1 no thread pool', () => {
    if (process.platform !== 'linux') return;
    const threads = () => fs.readdirSync('/proc/self/task').length;
    const before = threads();
    const sessions = [1, 2, 3].map(() => createNativeSession(addModel(8), { ...OPTIONS, intraOpNumThreads: 1 }));
    expect(threads()).toBe(before);
    const pooled = createNativeSession(addModel(8), { ...OPTIONS, intraOpNumThreads: 2 });
    expect(threads()).toBe(before + 1);
    expect(sessions.length + (pooled ? 1 : 0)).toBe(4);
  });

  it('throws (synchronously) on a bad feed', () => {
    const s = createNativeSession(addModel(4), OPTIONS);
    const bad = { type: 'float32' as const, dims: [4], data: new Int32Array(4) as unknown as Float32Array };
    expect(() => s.run({ a: bad, b: bad }, { y: null }, {})).toThrow();
  });
});
