/**
 * A data set where the prompt decides the picture: a filled square of a named colour at a random
 * place and size on white, captioned "a <colour> square". Generated images can then be scored by
 * their colour.
 */
import type { ImageSet } from '../../src/data/imagefolder.js';
import { Rng } from '../../src/random.js';

export const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 30, 30],
  green: [30, 170, 40],
  blue: [30, 60, 220],
  yellow: [240, 210, 20],
};

export function makeShapes(count: number, size: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const names = Object.keys(COLOURS);
  const pixels = new Uint8Array(count * size * size * 3).fill(255);
  const captions: string[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % names.length;
    const [r, g, b] = COLOURS[names[label]!]!;
    const side = Math.floor(size * (0.4 + 0.4 * rng.next()));
    const x0 = rng.int(size - side + 1);
    const y0 = rng.int(size - side + 1);
    for (let y = y0; y < y0 + side; y++)
      for (let x = x0; x < x0 + side; x++) {
        const o = ((i * size + y) * size + x) * 3;
        pixels[o] = r;
        pixels[o + 1] = g;
        pixels[o + 2] = b;
      }
    captions.push(`a ${names[label]} square`);
    labels.push(label);
  }
  return {
    count,
    width: size,
    height: size,
    channels: 3,
    pixels,
    captions,
    files: captions.map((_, i) => `${i}.png`),
    labels,
    extras: captions.map(() => ({})),
    skipped: 0,
  };
}

/** The colour (index into COLOURS) nearest to the mean of an image's non-white pixels, HWC in [0, 1]. */
export function dominantColour(data: Float32Array): number {
  const sum = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < data.length; i += 3) {
    if (data[i]! > 0.85 && data[i + 1]! > 0.85 && data[i + 2]! > 0.85) continue;
    for (let c = 0; c < 3; c++) sum[c]! += data[i + c]! * 255;
    count++;
  }
  if (count === 0) return -1;
  const mean = sum.map((s) => s / count);
  let best = -1;
  let bestDist = Infinity;
  Object.values(COLOURS).forEach((rgb, k) => {
    const d = rgb.reduce((acc, v, c) => acc + (v - mean[c]!) ** 2, 0);
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  });
  return best;
}
