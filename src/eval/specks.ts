/**
 * Stray specks, counted: a speck is a token-sized patch of an image whose mean colour is far from the
 * mean colour of every one of its (up to 4) side neighbours — an isolated token that fits none of
 * the tokens around it. Real images have some (an eye, a button); a sampler that commits tokens the
 * model finds implausible has many more. Pure functions of pixels.
 */

/** Mean colour of each `patch`×`patch` patch of a [size, size, channels] image: [g·g·channels], g = size / patch. */
export function patchMeans(data: Float32Array, size: number, channels: number, patch: number): Float32Array {
  if (!Number.isInteger(patch) || patch < 1 || size % patch !== 0) throw new RangeError(`patch ${patch} does not divide the image size ${size}`);
  if (data.length !== size * size * channels) throw new RangeError(`expected ${size}×${size}×${channels} values, got ${data.length}`);
  const g = size / patch;
  const out = new Float32Array(g * g * channels);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const cell = (Math.floor(y / patch) * g + Math.floor(x / patch)) * channels;
      for (let c = 0; c < channels; c++) out[cell + c]! += data[(y * size + x) * channels + c]!;
    }
  }
  for (let i = 0; i < out.length; i++) out[i]! /= patch * patch;
  return out;
}

/** The share of an image's patches that are specks: farther than `threshold` (Euclidean, colour in [0, 1]) from every side neighbour. */
export function speckShare(data: Float32Array, size: number, channels: number, patch: number, threshold = DEFAULT_SPECK_THRESHOLD): number {
  const means = patchMeans(data, size, channels, patch);
  const g = size / patch;
  const dist = (a: number, b: number) => {
    let s = 0;
    for (let c = 0; c < channels; c++) s += (means[a * channels + c]! - means[b * channels + c]!) ** 2;
    return Math.sqrt(s);
  };
  let specks = 0;
  for (let y = 0; y < g; y++) {
    for (let x = 0; x < g; x++) {
      const i = y * g + x;
      const neighbours = [y > 0 ? i - g : -1, y < g - 1 ? i + g : -1, x > 0 ? i - 1 : -1, x < g - 1 ? i + 1 : -1].filter((j) => j >= 0);
      if (neighbours.every((j) => dist(i, j) > threshold)) specks++;
    }
  }
  return specks / (g * g);
}

/** The colour distance beyond which a patch differs from a neighbour (a third of the grey axis, 0 → 1, is 0.58). */
export const DEFAULT_SPECK_THRESHOLD = 0.3;
