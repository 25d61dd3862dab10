import { describe, expect, it } from 'vitest';
import { crop, halfBox, objectBox, objectSquare, sideBySide } from '../src/data/composites.js';

/** A src × src RGB image of one colour. */
const solid = (src: number, rgb: [number, number, number]) => {
  const out = new Uint8Array(src * src * 3);
  for (let i = 0; i < src * src; i++) out.set(rgb, i * 3);
  return out;
};
const pixel = (image: Uint8Array, size: number, x: number, y: number) => Array.from(image.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

describe('side-by-side composites', () => {
  it('places the two objects, shrunk to half width, vertically centred in their halves', () => {
    const out = sideBySide(solid(8, [255, 0, 0]), solid(8, [0, 0, 255]), 8, 3, 16, 255);
    expect(out.length).toBe(16 * 16 * 3);
    expect(pixel(out, 16, 0, 4)).toEqual([255, 0, 0]); // left object's top-left
    expect(pixel(out, 16, 7, 11)).toEqual([255, 0, 0]); // its bottom-right
    expect(pixel(out, 16, 8, 4)).toEqual([0, 0, 255]); // right object's top-left
    expect(pixel(out, 16, 15, 11)).toEqual([0, 0, 255]);
    for (const [x, y] of [[0, 3], [7, 12], [8, 0], [15, 15]] as const) expect(pixel(out, 16, x, y)).toEqual([255, 255, 255]); // background above and below
  });

  it('shrinks the source image rather than cutting it: a left-red, right-green source stays so', () => {
    const src = new Uint8Array(8 * 8 * 3);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) src.set(x < 4 ? [255, 0, 0] : [0, 255, 0], (y * 8 + x) * 3);
    const out = sideBySide(src, src, 8, 3, 16);
    expect(pixel(out, 16, 0, 6)).toEqual([255, 0, 0]);
    expect(pixel(out, 16, 7, 6)).toEqual([0, 255, 0]);
  });

  it('boxes: halves for regions, squares for the objects, and crop cuts them out', () => {
    expect(halfBox('left', 32)).toEqual({ x: 0, y: 0, w: 16, h: 32 });
    expect(halfBox('right', 32)).toEqual({ x: 16, y: 0, w: 16, h: 32 });
    expect(objectBox('right', 32)).toEqual({ x: 16, y: 8, w: 16, h: 16 });
    const out = sideBySide(solid(8, [255, 0, 0]), solid(8, [0, 0, 255]), 8, 3, 16);
    expect(crop(out, 16, 3, objectBox('right', 16))).toEqual(solid(8, [0, 0, 255]));
    expect(crop(out, 16, 3, objectBox('left', 16))).toEqual(solid(8, [255, 0, 0]));
  });

  it("objectSquare cuts one side's object out and enlarges it, as floats in [0, 1]", () => {
    const out = sideBySide(solid(8, [255, 0, 0]), solid(8, [0, 0, 255]), 8, 3, 16);
    const right = objectSquare(out, 16, 3, 'right', 16);
    expect(right.length).toBe(16 * 16 * 3);
    for (let i = 0; i < 16 * 16; i++) expect(Array.from(right.subarray(i * 3, i * 3 + 3))).toEqual([0, 0, 1]);
    expect(Array.from(objectSquare(out, 16, 3, 'left', 4).subarray(0, 3))).toEqual([1, 0, 0]);
  });

  it('errors on sizes that do not split and on images of the wrong size', () => {
    expect(() => sideBySide(solid(8, [0, 0, 0]), solid(8, [0, 0, 0]), 8, 3, 18)).toThrow(/multiple of 4/);
    expect(() => sideBySide(solid(8, [0, 0, 0]), solid(4, [0, 0, 0]), 8, 3, 16)).toThrow(/must be 8×8×3/);
  });
});
