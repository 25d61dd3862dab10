/**
 * The backend class: the cpu backend (tensors are JS typed arrays in its data storage) with the
 * buffer pool wired into it. Buffers the onnx kernels allocated go back to the pool when their
 * tensor's data is disposed, unless their values were read out or viewed by another tensor.
 */
import type * as tf from '@tensorflow/tfjs';
import { engine as tfEngine } from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { disown, isOwned, release } from './pool.js';

type DataId = object;

export class OnnxBackend extends MathBackendCPU {
  constructor() {
    super();
    // the cpu backend's first write prints "install tfjs-node to speed things up": not for us
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const entry = this.data.get(dataId);
    const values = entry?.values;
    const disposed = super.disposeData(dataId, force);
    if (disposed && entry && !this.data.has(dataId)) release(values);
    return disposed;
  }

  /** Values read out may be kept by the caller (dataSync returns them without a copy). */
  override readSync(dataId: DataId): tf.backend_util.BackendValues {
    const entry = this.data.get(dataId);
    if (entry) disown(entry.values);
    return super.readSync(dataId);
  }
}

/**
 * After a cpu kernel: if an output's values share a buffer with an input's (Slice and Unpack return
 * subarrays), that buffer now backs two tensors and must not be recycled when one of them goes.
 */
export function disownAliases(backend: MathBackendCPU, inputs: tf.NamedTensorInfoMap, out: tf.TensorInfo | tf.TensorInfo[]): void {
  const outs = Array.isArray(out) ? out : [out];
  for (const o of outs) {
    const ov = backend.data.get(o.dataId)?.values;
    if (!ArrayBuffer.isView(ov)) continue;
    for (const name in inputs) {
      const t = inputs[name];
      if (!t || t.dataId === o.dataId) continue;
      const iv = backend.data.get(t.dataId)?.values;
      if (ArrayBuffer.isView(iv) && iv.buffer === ov.buffer) {
        disown(iv);
        disown(ov);
      }
    }
  }
}

/**
 * A float32 tensor's values as they lie in the onnx backend, for a reader that is done with them
 * before it returns (an ORT feed, read synchronously): unlike `dataSync`, this does not disown the
 * buffer, so it can still be recycled when its tensor goes.
 */
export function peekFloat32(t: tf.Tensor): Float32Array {
  const backend = t.dtype === 'float32' ? (tfEngine().backend as MathBackendCPU) : undefined;
  const values = backend instanceof OnnxBackend ? backend.data.get(t.dataId)?.values : undefined;
  return values instanceof Float32Array ? values : (t.dataSync() as Float32Array);
}

/**
 * A float32 tensor's values, when they may be written in place: the tensor lives in the onnx
 * backend, no other tensor shares its data (a reshape or a variable made from it would), and the
 * array is one a kernel allocated that was never read out or viewed (pool.ts `isOwned`). Otherwise
 * undefined. Whoever writes calls `wroteInPlace`, so that what was built from the old values (a
 * session with the weights baked in) knows they changed.
 */
export function exclusiveFloat32(t: tf.Tensor): Float32Array | undefined {
  const backend = tfEngine().backend;
  if (t.dtype !== 'float32' || !(backend instanceof OnnxBackend)) return undefined;
  const entry = backend.data.get(t.dataId);
  const values = entry?.values;
  return entry && entry.refCount === 1 && values instanceof Float32Array && isOwned(values) ? values : undefined;
}

const writes = new WeakMap<DataId, number>();

/** Records that the values of `dataId` were changed in place. */
export function wroteInPlace(dataId: DataId): void {
  writes.set(dataId, (writes.get(dataId) ?? 0) + 1);
}

/** How many times the values of `dataId` were changed in place (0: never): with the data id, what identifies its contents. */
export function inPlaceWrites(dataId: DataId): number {
  return writes.get(dataId) ?? 0;
}
