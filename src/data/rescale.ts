/**
 * Integer-factor rescaling of float NHWC batches for super-resolution: box (block-mean)
 * downsampling to make low-resolution inputs, and bicubic upsampling as the baseline to beat.
 */

function check(pixels: Float32Array, count: number, size: number, channels: number, factor: number): void {
  for (const [name, v] of [['count', count], ['size', size], ['channels', channels], ['factor', factor]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  }
  if (pixels.length !== count * size * size * channels) {
    throw new Error(`expected ${count}×${size}×${size}×${channels} = ${count * size * size * channels} values, got ${pixels.length}`);
  }
}

/** Each factor×factor block replaced by its mean: [count, size, size, C] → [count, size/factor, size/factor, C]. */
export function boxDownsample(pixels: Float32Array, count: number, size: number, channels: number, factor: number): Float32Array {
  check(pixels, count, size, channels, factor);
  if (size % factor !== 0) throw new Error(`image size ${size} is not divisible by the factor ${factor}`);
  const small = size / factor;
  const out = new Float32Array(count * small * small * channels);
  const scale = 1 / (factor * factor);
  for (let n = 0; n < count; n++)
    for (let y = 0; y < small; y++)
      for (let x = 0; x < small; x++)
        for (let k = 0; k < channels; k++) {
          let sum = 0;
          for (let dy = 0; dy < factor; dy++)
            for (let dx = 0; dx < factor; dx++) sum += pixels[((n * size + y * factor + dy) * size + x * factor + dx) * channels + k]!;
          out[((n * small + y) * small + x) * channels + k] = sum * scale;
        }
  return out;
}

/** Keys' cubic convolution kernel with a = −0.5 (Catmull-Rom). */
function keys(t: number): number {
  const a = -0.5;
  const x = Math.abs(t);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** For each output coordinate of one axis: the 4 clamped source indices and their weights. */
function taps(size: number, factor: number): { index: Int32Array; weight: Float64Array } {
  const out = size * factor;
  const index = new Int32Array(out * 4);
  const weight = new Float64Array(out * 4);
  for (let o = 0; o < out; o++) {
    const u = (o + 0.5) / factor - 0.5; // half-pixel centres
    const i0 = Math.floor(u);
    const t = u - i0;
    for (let j = 0; j < 4; j++) {
      index[o * 4 + j] = Math.min(size - 1, Math.max(0, i0 - 1 + j));
      weight[o * 4 + j] = keys(t + 1 - j);
    }
  }
  return { index, weight };
}

/**
 * Separable bicubic enlargement by an integer factor: [count, size, size, C] →
 * [count, size·factor, size·factor, C], sampling at half-pixel centres like PIL and OpenCV's
 * INTER_CUBIC, with edge pixels repeated beyond the border. Values are not clipped.
 */
export function bicubicUpsample(pixels: Float32Array, count: number, size: number, channels: number, factor: number): Float32Array {
  check(pixels, count, size, channels, factor);
  const big = size * factor;
  const { index, weight } = taps(size, factor);
  // Rows first: [count, size, big, C].
  const wide = new Float64Array(count * size * big * channels);
  for (let n = 0; n < count; n++)
    for (let y = 0; y < size; y++) {
      const src = (n * size + y) * size;
      const dst = (n * size + y) * big;
      for (let x = 0; x < big; x++)
        for (let k = 0; k < channels; k++) {
          let v = 0;
          for (let j = 0; j < 4; j++) v += weight[x * 4 + j]! * pixels[(src + index[x * 4 + j]!) * channels + k]!;
          wide[(dst + x) * channels + k] = v;
        }
    }
  // Then columns: [count, big, big, C].
  const out = new Float32Array(count * big * big * channels);
  const row = big * channels;
  for (let n = 0; n < count; n++)
    for (let y = 0; y < big; y++) {
      const dst = (n * big + y) * row;
      for (let j = 0; j < 4; j++) {
        const w = weight[y * 4 + j]!;
        const src = (n * size + index[y * 4 + j]!) * row;
        for (let i = 0; i < row; i++) out[dst + i]! += w * wide[src + i]!;
      }
    }
  return out;
}
