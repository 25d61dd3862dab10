/**
 * Two images side by side on one canvas, for training and measuring paint-with-words (eDiff-I):
 * each source image is shrunk to half the canvas width and placed, vertically centred, in the left
 * or the right half. Pure functions over HWC row-major bytes.
 *
 *   ┌────────┬────────┐  size × size canvas, `background` around the two objects;
 *   │        │        │  each object is size/2 × size/2 at (0, size/4) and (size/2, size/4).
 *   │  left  │ right  │
 *   │        │        │
 *   └────────┴────────┘
 */
import { resize } from './resample.js';
import type { PixelBox } from '../decoding/regions.js';

export type Side = 'left' | 'right';

/** The half of a size × size canvas that an object of that side sits in (its paint-with-words region). */
export function halfBox(side: Side, size: number): PixelBox {
  checkSize(size);
  return { x: side === 'left' ? 0 : size / 2, y: 0, w: size / 2, h: size };
}

/** The square an object occupies on a size × size canvas: size/2 wide, vertically centred in its half. */
export function objectBox(side: Side, size: number): PixelBox {
  checkSize(size);
  return { x: side === 'left' ? 0 : size / 2, y: size / 4, w: size / 2, h: size / 2 };
}

/**
 * A size × size canvas with `left` and `right` (each src × src, `channels` bytes a pixel) shrunk to
 * size/2 and placed at their `objectBox`es, the rest filled with `background` (one byte value).
 */
export function sideBySide(left: Uint8Array, right: Uint8Array, src: number, channels: number, size: number, background = 255): Uint8Array {
  checkSize(size);
  const per = src * src * channels;
  if (left.length !== per || right.length !== per) throw new Error(`sideBySide: each image must be ${src}×${src}×${channels} = ${per} bytes, got ${left.length} and ${right.length}`);
  const out = new Uint8Array(size * size * channels).fill(background);
  const half = size / 2;
  for (const [side, image] of [['left', left], ['right', right]] as const) {
    const small = resize(image, src, src, channels, half, half);
    const box = objectBox(side, size);
    for (let y = 0; y < half; y++) {
      out.set(small.subarray(y * half * channels, (y + 1) * half * channels), ((box.y + y) * size + box.x) * channels);
    }
  }
  return out;
}

/**
 * An object as a judge sees it: the `objectBox` of `side` cut out of a size × size composite (HWC
 * bytes) and enlarged to out × out, as floats in [0, 1].
 */
export function objectSquare(composite: Uint8Array, size: number, channels: number, side: Side, out: number): Float32Array {
  const square = crop(composite, size, channels, objectBox(side, size));
  return Float32Array.from(resize(square, size / 2, size / 2, channels, out, out), (v) => v / 255);
}

/** The pixels of `box` cut out of a width-wide image (HWC bytes or floats). */
export function crop<T extends Uint8Array | Float32Array>(image: T, width: number, channels: number, box: PixelBox): T {
  const out = new (image.constructor as { new (n: number): T })(box.w * box.h * channels);
  for (let y = 0; y < box.h; y++) {
    const from = ((box.y + y) * width + box.x) * channels;
    out.set(image.subarray(from, from + box.w * channels) as never, y * box.w * channels);
  }
  return out;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 4 || size % 4 !== 0) throw new Error(`a side-by-side canvas must be a whole multiple of 4 pixels, got ${size}`);
}
