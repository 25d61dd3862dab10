/**
 * Seeded epoch shuffling, batching, and turning a batch of an ImageSet into one float tensor.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.js';
import type { ImageSet } from './imagefolder.js';

/**
 * The batches of one epoch over n items: a permutation drawn from `rng` (or 0..n-1 in order when
 * `rng` is null), cut into batches of `batchSize`. The last, smaller batch is dropped when
 * `dropLast` is true. Each index appears exactly once (at most once with dropLast).
 */
export function* batchIndices(n: number, batchSize: number, rng: Rng | null, dropLast = false): Generator<number[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const order = rng ? rng.permutation(n) : Array.from({ length: n }, (_, i) => i);
  for (let start = 0; start < n; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (dropLast && batch.length < batchSize) return;
    yield batch;
  }
}

/**
 * Endless batches, epoch after epoch, each epoch reshuffled from the same `rng`. Yields the epoch
 * number (from 0) with each batch. With `dropLast` and n < batchSize it yields nothing.
 */
export function* epochBatches(
  n: number,
  batchSize: number,
  rng: Rng,
  dropLast = true,
): Generator<{ epoch: number; indices: number[] }> {
  if (n === 0 || (dropLast && n < batchSize)) return;
  for (let epoch = 0; ; epoch++) {
    for (const indices of batchIndices(n, batchSize, rng, dropLast)) yield { epoch, indices };
  }
}

export interface BatchOptions {
  /** Flip each image left–right with probability `flipProbability`, drawn from this rng. Off when absent. */
  hflip?: Rng;
  /** Default 0.5. */
  flipProbability?: number;
}

/**
 * The images at `indices` as one Float32Array of [B, H, W, C] values in [0, 1], with optional
 * seeded horizontal flips. Useful where no tensor is wanted (workers, tests).
 */
export function imagesToFloat32(set: ImageSet, indices: readonly number[], opts: BatchOptions = {}): Float32Array {
  const { width: w, height: h, channels: c } = set;
  const imageBytes = w * h * c;
  const rowBytes = w * c;
  const out = new Float32Array(indices.length * imageBytes);
  const p = opts.flipProbability ?? 0.5;
  const scale = 1 / 255;
  indices.forEach((index, b) => {
    if (!Number.isInteger(index) || index < 0 || index >= set.count) {
      throw new Error(`image index ${index} out of range 0..${set.count - 1}`);
    }
    const src = set.pixels.subarray(index * imageBytes, (index + 1) * imageBytes);
    const base = b * imageBytes;
    const flip = opts.hflip !== undefined && opts.hflip.next() < p;
    if (!flip) {
      for (let i = 0; i < imageBytes; i++) out[base + i] = src[i]! * scale;
      return;
    }
    for (let y = 0; y < h; y++) {
      const row = y * rowBytes;
      for (let x = 0; x < w; x++) {
        const from = row + (w - 1 - x) * c;
        const to = base + row + x * c;
        for (let k = 0; k < c; k++) out[to + k] = src[from + k]! * scale;
      }
    }
  });
  return out;
}

/** The images at `indices` as one float32 tensor [B, H, W, C] in [0, 1]. The caller disposes it. */
export function imagesToTensor(set: ImageSet, indices: readonly number[], opts: BatchOptions = {}): tf.Tensor4D {
  const data = imagesToFloat32(set, indices, opts);
  return tf.tensor4d(data, [indices.length, set.height, set.width, set.channels], 'float32');
}

/** The captions at `indices`. */
export function captionsAt(set: ImageSet, indices: readonly number[]): string[] {
  return indices.map((i) => set.captions[i]!);
}

/**
 * The set with every image flipped left–right (captions, labels and the rest as they are): the
 * mirrored half of a flip-augmented data set whose tokens are computed once, as the transformer's are.
 */
export function mirrored(set: ImageSet): ImageSet {
  const { width: w, height: h, channels: c } = set;
  const pixels = new Uint8Array(set.pixels.length);
  for (let row = 0; row < set.count * h; row++) {
    const base = row * w * c;
    for (let x = 0; x < w; x++) pixels.set(set.pixels.subarray(base + (w - 1 - x) * c, base + (w - x) * c), base + x * c);
  }
  return { ...set, pixels };
}
