import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { Rng } from '../src/random.js';
import {
  boxToPixelMask,
  boxToTokens,
  cropGrid,
  featherMask,
  maskTokens,
  outpaintLayout,
  outpaintPositions,
  parseBox,
  parseExtend,
  pixelMaskToTokens,
  placeInGrid,
  resampleCount,
  resampleSelection,
  scaleBox,
  scaleMask,
  tokenGrid,
} from '../src/decoding/regions.js';

const img = (patch: number, width = 16, height = 16) => ({ width, height, patch });

/** Reference: every token whose patch shares a pixel with the box, by brute force over pixels. */
function bruteBox(box: { x: number; y: number; w: number; h: number }, width: number, height: number, p: number): number[] {
  const cols = width / p;
  const set = new Set<number>();
  for (let y = box.y; y < box.y + box.h; y++) for (let x = box.x; x < box.x + box.w; x++) set.add(Math.floor(y / p) * cols + Math.floor(x / p));
  return [...set].sort((a, b) => a - b);
}

describe('boxes and masks → token positions', () => {
  it('token grid of an image', () => {
    expect(tokenGrid({ width: 32, height: 24, patch: 8 })).toEqual({ cols: 4, rows: 3 });
    expect(() => tokenGrid({ width: 30, height: 32, patch: 4 })).toThrow(/does not split into 4×4 patches/);
  });

  it('a box not aligned to patches, at patch sizes 2, 4, 8', () => {
    const box = { x: 3, y: 5, w: 2, h: 6 }; // pixels x 3–4, y 5–10
    expect(boxToTokens(box, img(2))).toEqual([17, 18, 25, 26, 33, 34, 41, 42]); // cols 1–2, rows 2–5 of 8
    expect(boxToTokens(box, img(4))).toEqual([4, 5, 8, 9]); // cols 0–1, rows 1–2 of 4
    expect(boxToTokens(box, img(8))).toEqual([0, 2]); // col 0, rows 0–1 of 2
  });

  it('aligned boxes, one pixel, and boxes at the image edge', () => {
    expect(boxToTokens({ x: 4, y: 4, w: 4, h: 4 }, img(4))).toEqual([5]);
    expect(boxToTokens({ x: 4, y: 4, w: 5, h: 4 }, img(4))).toEqual([5, 6]); // one pixel over the edge of a patch
    expect(boxToTokens({ x: 7, y: 0, w: 1, h: 1 }, img(8))).toEqual([0]);
    expect(boxToTokens({ x: 8, y: 0, w: 1, h: 1 }, img(8))).toEqual([1]);
    expect(boxToTokens({ x: 12, y: 12, w: 4, h: 4 }, img(2))).toEqual([54, 55, 62, 63]);
    expect(boxToTokens({ x: 12, y: 12, w: 4, h: 4 }, img(4))).toEqual([15]);
    expect(boxToTokens({ x: 15, y: 15, w: 1, h: 1 }, img(8))).toEqual([3]);
    expect(boxToTokens({ x: 0, y: 0, w: 16, h: 16 }, img(8))).toEqual([0, 1, 2, 3]);
    expect(boxToTokens({ x: 0, y: 30, w: 8, h: 2 }, { width: 32, height: 32, patch: 4 })).toEqual([56, 57]);
  });

  it('boxes agree with the brute-force reference and with their pixel mask, at patch 1, 2, 4, 8', () => {
    const rng = new Rng(17);
    for (const p of [1, 2, 4, 8]) {
      for (let i = 0; i < 40; i++) {
        const x = rng.int(16);
        const y = rng.int(16);
        const box = { x, y, w: 1 + rng.int(16 - x), h: 1 + rng.int(16 - y) };
        const expected = bruteBox(box, 16, 16, p);
        expect(boxToTokens(box, img(p))).toEqual(expected);
        expect(pixelMaskToTokens(boxToPixelMask(box, 16, 16), img(p))).toEqual(expected);
      }
    }
  });

  it('bad boxes throw a UserError naming the box', () => {
    expect(() => boxToTokens({ x: 20, y: 0, w: 4, h: 4 }, img(4))).toThrow(/box 20,0,4,4 is not inside the 16×16 image/);
    expect(() => boxToTokens({ x: 10, y: 10, w: 8, h: 2 }, img(4))).toThrow(UserError);
    expect(() => boxToTokens({ x: -1, y: 0, w: 4, h: 4 }, img(4))).toThrow(UserError);
    expect(() => boxToTokens({ x: 0, y: 0, w: 0, h: 4 }, img(4))).toThrow(/width and height must be at least 1 pixel/);
    expect(() => boxToTokens({ x: 0.5, y: 0, w: 4, h: 4 }, img(4))).toThrow(/whole number/);
  });

  it('parses --box', () => {
    expect(parseBox('8, 4,16,12')).toEqual({ x: 8, y: 4, w: 16, h: 12 });
    expect(() => parseBox('8,4,16')).toThrow(/--box must be x,y,w,h/);
    expect(() => parseBox('a,b,c,d')).toThrow(UserError);
  });

  it('a pixel mask: a token is masked if any of its pixels is', () => {
    const m = new Uint8Array(16 * 16);
    m[9 * 16 + 5] = 255; // pixel (5, 9)
    expect(pixelMaskToTokens(m, img(4))).toEqual([9]);
    expect(pixelMaskToTokens(m, img(2))).toEqual([34]);
    m[0] = 1;
    expect(pixelMaskToTokens(m, img(8))).toEqual([0, 2]);
    expect(() => pixelMaskToTokens(new Uint8Array(256), img(4))).toThrow(/selects no pixel/);
    expect(() => pixelMaskToTokens(new Uint8Array(10), img(4))).toThrow(/mask has 10 pixels, expected 16×16/);
  });

  it('maskTokens masks the positions in every batch item', () => {
    const t = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(maskTokens(t, [1, 2], 9, 4))).toEqual([1, 9, 9, 4, 5, 9, 9, 8]);
    expect(Array.from(t)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => maskTokens(t, [4], 9, 4)).toThrow(UserError);
  });

  it('feathered paste-back weights', () => {
    const m = boxToPixelMask({ x: 3, y: 3, w: 2, h: 2 }, 8, 8);
    expect(Array.from(featherMask(m, 8, 8, 0))).toEqual(Array.from(m));
    const a = featherMask(m, 8, 8, 2);
    expect(a[3 * 8 + 3]).toBe(1);
    expect(a[3 * 8 + 2]).toBeCloseTo(2 / 3, 6); // distance 1
    expect(a[3 * 8 + 1]).toBeCloseTo(1 / 3, 6); // distance 2
    expect(a[3 * 8 + 0]).toBe(0); // distance 3 > radius
    expect(a[2 * 8 + 2]).toBeCloseTo(1 - Math.SQRT2 / 3, 6); // diagonal
  });
});

describe('outpainting', () => {
  const image = { width: 32, height: 32, patch: 4 }; // 8×8 tokens

  it('rounds the margins up to whole tokens and grows the grid by them', () => {
    const L = outpaintLayout(image, { left: 5, top: 0, right: 8, bottom: 1 });
    expect(L.tokens).toEqual({ left: 2, top: 0, right: 2, bottom: 1 });
    expect(L.pixels).toEqual({ left: 8, top: 0, right: 8, bottom: 4 });
    expect(L.oldGrid).toEqual({ cols: 8, rows: 8 });
    expect(L.grid).toEqual({ cols: 12, rows: 9 });
    expect(L.offset).toEqual({ col: 2, row: 0 });
    expect([L.width, L.height]).toEqual([48, 36]);
    expect(L.pixelOffset).toEqual({ x: 8, y: 0 });
    expect(outpaintLayout({ width: 16, height: 16, patch: 8 }, { left: 0, top: 1, right: 0, bottom: 0 }).grid).toEqual({ cols: 2, rows: 3 });
    expect(outpaintLayout({ width: 16, height: 16, patch: 2 }, { left: 3, top: 3, right: 3, bottom: 3 }).grid).toEqual({ cols: 12, rows: 12 });
  });

  it('places the old tokens at the offset, masks the rest, and crops back', () => {
    const L = outpaintLayout(image, { left: 5, top: 4, right: 0, bottom: 8 });
    expect(L.grid).toEqual({ cols: 10, rows: 11 });
    const old = Int32Array.from({ length: 2 * 64 }, (_, i) => i % 50);
    const placed = placeInGrid(old, L, 99);
    expect(placed.length).toBe(2 * 110);
    const gen = outpaintPositions(L);
    expect(gen.length).toBe(110 - 64);
    for (let b = 0; b < 2; b++) for (const i of gen) expect(placed[b * 110 + i]).toBe(99);
    expect(placed[1 * 10 + 2]).toBe(old[0]); // row 1, col 2 holds old (0, 0)
    expect(Array.from(cropGrid(placed, L.grid, L.offset, L.oldGrid))).toEqual(Array.from(old));
    expect(() => cropGrid(placed, L.grid, { col: 3, row: 0 }, L.oldGrid)).toThrow(/not inside the 10×11 grid/);
  });

  it('bad margins throw a UserError', () => {
    expect(() => outpaintLayout(image, { left: 0, top: 0, right: 0, bottom: 0 })).toThrow(/every margin is 0/);
    expect(() => outpaintLayout(image, { left: -4, top: 0, right: 0, bottom: 0 })).toThrow(/--extend left must be a whole number ≥ 0/);
    expect(parseExtend('0,0,16,0')).toEqual({ left: 0, top: 0, right: 16, bottom: 0 });
    expect(() => parseExtend('0,-1,16,0')).toThrow(/--extend must be left,top,right,bottom/);
  });
});

describe('mask-free editing selection', () => {
  it('a seeded subset of round(strength · n) positions, at least one', () => {
    expect(resampleCount(64, 0.1)).toBe(6);
    expect(resampleCount(64, 0.001)).toBe(1);
    expect(resampleCount(64, 1)).toBe(64);
    const a = resampleSelection(64, 0.25, new Rng(3));
    expect(a).toHaveLength(16);
    expect(new Set(a).size).toBe(16);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(resampleSelection(64, 0.25, new Rng(3))).toEqual(a);
    expect(resampleSelection(64, 0.25, new Rng(4))).not.toEqual(a);
    const rng = new Rng(3);
    expect(resampleSelection(64, 0.25, rng)).not.toEqual(resampleSelection(64, 0.25, rng)); // fresh each iteration
    expect(() => resampleCount(64, 0)).toThrow(UserError);
    expect(() => resampleCount(64, 1.5)).toThrow(UserError);
  });
});

describe('scaling user geometry to the model size', () => {
  it('a box covers at least the pixels it touched, at least one each way', () => {
    // 64 × 48 → 32: x 10..30 → 5..15, y 6..18 → 4..12 (rounded outward)
    expect(scaleBox({ x: 10, y: 6, w: 20, h: 12 }, 64, 48, 32)).toEqual({ x: 5, y: 4, w: 10, h: 8 });
    expect(scaleBox({ x: 63, y: 47, w: 1, h: 1 }, 64, 48, 32)).toEqual({ x: 31, y: 31, w: 1, h: 1 });
  });

  it('a mask keeps a one-pixel stroke when shrunk, and grows by whole cells', () => {
    const mask = new Uint8Array(8 * 8);
    for (let y = 0; y < 8; y++) mask[y * 8 + 5] = 255; // a vertical line at x = 5
    const small = scaleMask(mask, 8, 8, 4);
    expect(Array.from(small)).toEqual([0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
    expect(Array.from(scaleMask(Uint8Array.from([0, 127, 128, 0]), 2, 2, 2))).toEqual([0, 0, 1, 0]);
  });
});
