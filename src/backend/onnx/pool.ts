/**
 * A pool of the output buffers the onnx kernels allocate. A training step makes and drops gigabytes
 * of tensors; as fresh ArrayBuffers that cost ~1 s of garbage collection per step of the reference
 * transformer, against ~0.3 s with the pool (the rest: the binding's own output copies, see
 * sessions.ts). Buffers come back
 * here when the backend disposes the tensor that held them, and go out again for the next output of
 * the same byte size (every kernel writes all of its output, so old contents never show).
 *
 * Free buffers are kept up to MASKGEN_ONNX_POOL_MB (default 2048 MB; the longest-waiting go first):
 * the transformer step of shared/PERF-NOTES.md cycles through ~2 GB of distinct output sizes, and
 * at 1 GB the hit rate halves. `setPoolLimit` changes the cap, `drainPool` empties the pool.
 *
 * Only buffers this module handed out are recycled, and only while nothing else can see them: the
 * backend disowns a buffer when its values are read out (dataSync, data, bufferSync) or when a kernel
 * returns a view of it (the cpu Slice and Unpack kernels do), so a recycled buffer is never one that
 * user code or another tensor still holds.
 */

/**
 * Arrays handed out and not (yet) shared with anything but their tensor. The array objects are
 * tracked, not their buffers: a view of the buffer (a subarray, or another array over the whole
 * buffer) is never mistaken for its owner.
 */
const owned = new WeakSet<object>();
const free = new Map<number, ArrayBuffer[]>();
/** Every free buffer, oldest release first (a Map iterates in insertion order). */
const age = new Map<ArrayBuffer, number>();
let freeBytes = 0;
let maxFreeBytes = Number(process.env.MASKGEN_ONNX_POOL_MB ?? 2048) * 2 ** 20;

export interface PoolStats {
  hits: number;
  misses: number;
  freeBytes: number;
}
const stats: PoolStats = { hits: 0, misses: 0, freeBytes: 0 };

/** Arrays below this size are left to the garbage collector when released (cheap, and not worth keeping). */
const MIN_POOLED_BYTES = 16 * 1024;

export function takeFloat32(size: number): Float32Array {
  const out = size * 4 < MIN_POOLED_BYTES ? new Float32Array(size) : new Float32Array(takeBuffer(size * 4), 0, size);
  owned.add(out);
  return out;
}

export function takeInt32(size: number): Int32Array {
  const out = size * 4 < MIN_POOLED_BYTES ? new Int32Array(size) : new Int32Array(takeBuffer(size * 4), 0, size);
  owned.add(out);
  return out;
}

function takeBuffer(bytes: number): ArrayBuffer {
  const buf = free.get(bytes)?.pop();
  if (buf) {
    age.delete(buf);
    freeBytes -= bytes;
    stats.hits++;
    return buf;
  }
  stats.misses++;
  return new ArrayBuffer(bytes);
}

/** `values` left its last tensor: recycle its buffer if it is one of ours and nothing else sees it. */
export function release(values: unknown): void {
  if (!ArrayBuffer.isView(values) || !owned.has(values)) return;
  owned.delete(values);
  const buf = values.buffer as ArrayBuffer;
  if (buf.byteLength < MIN_POOLED_BYTES || buf.byteLength > maxFreeBytes) return;
  // make room by dropping the buffers that have waited longest: the pool follows the sizes in use
  for (const [old, bytes] of age) {
    if (freeBytes + buf.byteLength <= maxFreeBytes) break;
    age.delete(old);
    const list = free.get(bytes)!;
    list.splice(list.indexOf(old), 1);
    freeBytes -= bytes;
  }
  let list = free.get(buf.byteLength);
  if (!list) free.set(buf.byteLength, (list = []));
  list.push(buf);
  age.set(buf, buf.byteLength);
  freeBytes += buf.byteLength;
}

/** Something besides its tensor holds `values` or a view of its buffer: never recycle it. */
export function disown(values: unknown): void {
  if (values !== null && typeof values === 'object') owned.delete(values);
}

/**
 * Whether `values` is an array this module handed out that nothing but its tensor has seen (any
 * size): one that may be written in place (see backend.ts `exclusiveFloat32`).
 */
export function isOwned(values: unknown): boolean {
  return values !== null && typeof values === 'object' && owned.has(values);
}

/** Drops every pooled buffer. */
export function drainPool(): void {
  free.clear();
  age.clear();
  freeBytes = 0;
}

/** Caps the bytes kept in the pool (0 turns pooling off). */
export function setPoolLimit(bytes: number): void {
  maxFreeBytes = Math.max(0, bytes);
  if (freeBytes > maxFreeBytes) drainPool();
}

export function poolStats(): PoolStats {
  return { ...stats, freeBytes };
}
