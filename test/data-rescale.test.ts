/**
 * Box downsampling and bicubic upsampling of float NHWC batches: constants, a hand-computed box,
 * linear ramps, the round trip on a smooth image, shapes and bad sizes.
 */
import { describe, expect, it } from 'vitest';
import { bicubicUpsample, boxDownsample } from '../src/data/rescale.js';

/** A smooth [count, size, size, C] batch: low-frequency sines, different per image and channel. */
function smooth(count: number, size: number, channels: number): Float32Array {
  const out = new Float32Array(count * size * size * channels);
  for (let n = 0; n < count; n++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let k = 0; k < channels; k++) {
          const u = (x + 0.5) / size;
          const v = (y + 0.5) / size;
          out[((n * size + y) * size + x) * channels + k] = 0.5 + 0.3 * Math.sin(2 * Math.PI * (u + 0.3 * k + 0.1 * n)) * Math.cos(Math.PI * (v - 0.2 * k));
        }
  return out;
}

describe('boxDownsample', () => {
  it('averages each block of a known 4×4 image', () => {
    // prettier-ignore
    const img = Float32Array.from([
      1, 2, 3, 4,
      5, 6, 7, 8,
      9, 10, 11, 12,
      13, 14, 15, 16,
    ]);
    expect(Array.from(boxDownsample(img, 1, 4, 1, 2))).toEqual([3.5, 5.5, 11.5, 13.5]);
    expect(Array.from(boxDownsample(img, 1, 4, 1, 4))).toEqual([8.5]);
    expect(Array.from(boxDownsample(img, 1, 4, 1, 1))).toEqual(Array.from(img));
  });

  it('keeps channels and images apart', () => {
    // Two 2×2 images with 2 channels: channel 0 = image index, channel 1 = 10·x + y.
    const img = new Float32Array(2 * 2 * 2 * 2);
    for (let n = 0; n < 2; n++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 2; x++) {
          img[((n * 2 + y) * 2 + x) * 2] = n;
          img[((n * 2 + y) * 2 + x) * 2 + 1] = 10 * x + y;
        }
    expect(Array.from(boxDownsample(img, 2, 2, 2, 2))).toEqual([0, 5.5, 1, 5.5]);
  });

  it('keeps a constant image constant', () => {
    const out = boxDownsample(new Float32Array(3 * 8 * 8 * 3).fill(0.37), 3, 8, 3, 4);
    expect(out.length).toBe(3 * 2 * 2 * 3);
    for (const v of out) expect(v).toBeCloseTo(0.37, 6);
  });

  it('refuses sizes not divisible by the factor and wrong lengths', () => {
    expect(() => boxDownsample(new Float32Array(6 * 6), 1, 6, 1, 4)).toThrow(/not divisible/);
    expect(() => boxDownsample(new Float32Array(10), 1, 4, 1, 2)).toThrow(/values, got 10/);
    expect(() => boxDownsample(new Float32Array(16), 1, 4, 1, 0)).toThrow(/factor must be a positive integer/);
  });
});

describe('bicubicUpsample', () => {
  it('gives [count, size·factor, size·factor, C] and keeps a constant image constant', () => {
    const out = bicubicUpsample(new Float32Array(2 * 5 * 5 * 3).fill(0.8), 2, 5, 3, 3);
    expect(out.length).toBe(2 * 15 * 15 * 3);
    for (const v of out) expect(v).toBeCloseTo(0.8, 6);
  });

  it('is the identity for factor 1', () => {
    const img = smooth(2, 6, 3);
    const out = bicubicUpsample(img, 2, 6, 3, 1);
    for (let i = 0; i < img.length; i++) expect(out[i]).toBeCloseTo(img[i]!, 6);
  });

  it('keeps a horizontal linear ramp linear away from the borders', () => {
    const size = 8;
    const factor = 4;
    const img = new Float32Array(size * size);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) img[y * size + x] = 0.1 * x + 0.2;
    const out = bicubicUpsample(img, 1, size, 1, factor);
    const big = size * factor;
    // Output column X samples the source at u = (X + 0.5)/factor − 0.5; the 4 taps stay inside
    // the image when 1 ≤ u ≤ size − 3.
    for (let y = 0; y < big; y++)
      for (let x = 0; x < big; x++) {
        const u = (x + 0.5) / factor - 0.5;
        if (u < 1 || u > size - 3) continue;
        expect(out[y * big + x]).toBeCloseTo(0.1 * u + 0.2, 6);
      }
    // At the left border (u = −0.375, taps at −2, −1, 0, 1 clamped to 0, 0, 0, 1) only pixel 1
    // differs from pixel 0, weighted by Keys(1.375) = −0.5·(1.375³ − 5·1.375² + 8·1.375 − 4):
    // a slight undershoot, as with any clamped Catmull-Rom.
    const k = -0.5 * (1.375 ** 3 - 5 * 1.375 ** 2 + 8 * 1.375 - 4);
    expect(out[0]).toBeCloseTo(0.2 + 0.1 * k, 6);
    expect(out[big - 1]).toBeCloseTo(0.2 + 0.1 * (size - 1) - 0.1 * k, 6);
  });

  it('then box-downsampling by the same factor comes back close to a smooth original', () => {
    const size = 16;
    for (const factor of [2, 4]) {
      const img = smooth(2, size, 3);
      const back = boxDownsample(bicubicUpsample(img, 2, size, 3, factor), 2, size * factor, 3, factor);
      expect(back.length).toBe(img.length);
      let worst = 0;
      for (let i = 0; i < img.length; i++) worst = Math.max(worst, Math.abs(back[i]! - img[i]!));
      expect(worst).toBeLessThan(0.02);
    }
  });

  it('refuses bad sizes', () => {
    expect(() => bicubicUpsample(new Float32Array(15), 1, 4, 1, 2)).toThrow(/values, got 15/);
    expect(() => bicubicUpsample(new Float32Array(16), 1, 4, 1, 1.5)).toThrow(/factor must be a positive integer/);
    expect(() => bicubicUpsample(new Float32Array(0), 0, 4, 1, 2)).toThrow(/count must be a positive integer/);
  });
});
