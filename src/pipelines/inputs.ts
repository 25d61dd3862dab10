/** Checks shared by the pipeline's tasks: an input image for the tokenizer, and how many images in which batches. */
import type { RawImage } from '../data/images.js';
import { UserError } from '../errors.js';
import type { MaskgenPipeline } from '../pipeline.js';

/** An image at the tokenizer's size and channel count as float in [0, 1], or a UserError saying what is wrong. */
export function tokenizerImage(pipe: MaskgenPipeline, image: RawImage<Uint8Array | Float32Array>, what: string): RawImage<Float32Array> {
  const { imageSize: size, channels } = pipe.tokenizer.config;
  if (image.width !== size || image.height !== size || image.channels !== channels) {
    throw new UserError(`${what} is ${image.width}×${image.height}×${image.channels}, the tokenizer takes ${size}×${size}×${channels}: resize it first (the CLI does)`);
  }
  if (image.data.length !== size * size * channels) throw new UserError(`${what} has ${image.data.length} values, expected ${size * size * channels}`);
  const data = image.data instanceof Float32Array ? Float32Array.from(image.data) : Float32Array.from(image.data, (v) => v / 255);
  return { data, width: size, height: size, channels };
}

/** `n` (default 1), `seed` (default 0) and `batchSize` (default 16), checked. */
export function batchSettings(o: { n?: number; seed?: number; batchSize?: number }): { n: number; seed: number; batchSize: number } {
  const n = o.n ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`n must be a whole number ≥ 1, got ${n}`);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new UserError(`seed must be a whole number, got ${seed}`);
  const batchSize = o.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`batch size must be a whole number ≥ 1, got ${batchSize}`);
  return { n, seed, batchSize };
}
