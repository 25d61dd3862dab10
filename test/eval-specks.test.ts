import { describe, expect, it } from 'vitest';
import { patchMeans, speckShare } from '../src/eval/specks.js';

/** A size×size grey image (one channel) from a function of the pixel. */
const image = (size: number, f: (x: number, y: number) => number) => Float32Array.from({ length: size * size }, (_, i) => f(i % size, Math.floor(i / size)));

describe('specks', () => {
  it('patchMeans averages each patch', () => {
    const im = image(4, (x, y) => (x < 2 && y < 2 ? 1 : 0) + (x === 3 && y === 3 ? 0.4 : 0));
    expect(Array.from(patchMeans(im, 4, 1, 2))).toEqual([1, 0, 0, Math.fround(0.1)]);
    expect(() => patchMeans(im, 4, 1, 3)).toThrow(RangeError);
    expect(() => patchMeans(im.subarray(1), 4, 1, 2)).toThrow(RangeError);
  });

  it('counts a patch unlike all its neighbours, not one that has a like neighbour, nor a smooth gradient', () => {
    // 16 px, patches of 4 → a 4×4 grid. One bright patch in a dark field: 1 speck of 16.
    expect(speckShare(image(16, (x, y) => (x >= 4 && x < 8 && y >= 4 && y < 8 ? 1 : 0)), 16, 1, 4)).toBe(1 / 16);
    // Two bright patches side by side: each has a like neighbour, so none.
    expect(speckShare(image(16, (x, y) => (x >= 4 && x < 12 && y >= 4 && y < 8 ? 1 : 0)), 16, 1, 4)).toBe(0);
    // A ramp whose patches differ by 0.25 < 0.3 from their neighbours: none.
    expect(speckShare(image(16, (x) => Math.floor(x / 4) * 0.25), 16, 1, 4)).toBe(0);
    // A checkerboard of patches: every patch is a speck.
    expect(speckShare(image(16, (x, y) => (Math.floor(x / 4) + Math.floor(y / 4)) % 2), 16, 1, 4)).toBe(1);
    // The threshold decides: a 0.5 patch in a dark field is a speck at 0.3, not at 0.6.
    const mid = image(16, (x, y) => (x < 4 && y < 4 ? 0.5 : 0));
    expect(speckShare(mid, 16, 1, 4, 0.3)).toBe(1 / 16);
    expect(speckShare(mid, 16, 1, 4, 0.6)).toBe(0);
  });
});
