/**
 * Editing geometry, as pure functions: which token positions a pixel box or a pixel mask touches,
 * how an outpainting extension grows the token grid, a feathered paste-back mask, and which tokens
 * mask-free editing resamples at each iteration (Muse §4.2).
 *
 * An image of width × height pixels is tokenized at patch size p into a grid of
 * (width/p) columns × (height/p) rows; token position = row · cols + col (row-major).
 */
import { UserError } from '../errors.js';
import type { Rng } from '../random.js';

/** An image size and the tokenizer's patch size. */
export interface ImageGrid {
  /** Image width in pixels (a multiple of `patch`). */
  width: number;
  /** Image height in pixels (a multiple of `patch`). */
  height: number;
  /** Patch size p: one token covers p × p pixels. */
  patch: number;
}

/** A token grid size. */
export interface GridSize {
  cols: number;
  rows: number;
}

/** A pixel rectangle: top-left corner (x, y), width w and height h. */
export interface PixelBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Outpainting margins in pixels. */
export interface Extend {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

function whole(v: number, what: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new UserError(`${what} must be a whole number ≥ ${min}, got ${v}`);
}

/** The token grid of an image: (width/p) × (height/p); throws unless both are multiples of p. */
export function tokenGrid(image: ImageGrid): GridSize {
  const { width, height, patch } = image;
  whole(patch, 'patch size', 1);
  whole(width, 'image width', 1);
  whole(height, 'image height', 1);
  if (width % patch !== 0 || height % patch !== 0) {
    throw new UserError(`a ${width}×${height} image does not split into ${patch}×${patch} patches`);
  }
  return { cols: width / patch, rows: height / patch };
}

/**
 * The token positions (sorted, row-major) that a pixel box touches: every token whose p × p patch
 * shares at least one pixel with the box. The box must have whole-pixel coordinates, a size ≥ 1
 * and lie inside the image.
 */
export function boxToTokens(box: PixelBox, image: ImageGrid): number[] {
  const { cols } = tokenGrid(image);
  checkBox(box, image);
  const p = image.patch;
  const c0 = Math.floor(box.x / p);
  const c1 = Math.floor((box.x + box.w - 1) / p);
  const r0 = Math.floor(box.y / p);
  const r1 = Math.floor((box.y + box.h - 1) / p);
  const out: number[] = [];
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) out.push(r * cols + c);
  return out;
}

function checkBox(box: PixelBox, image: ImageGrid): void {
  const { x, y, w, h } = box;
  const desc = `box ${x},${y},${w},${h}`;
  for (const [v, name] of [[x, 'x'], [y, 'y'], [w, 'width'], [h, 'height']] as const) {
    if (!Number.isInteger(v)) throw new UserError(`${desc}: ${name} must be a whole number of pixels`);
  }
  if (w < 1 || h < 1) throw new UserError(`${desc}: width and height must be at least 1 pixel`);
  if (x < 0 || y < 0 || x + w > image.width || y + h > image.height) {
    throw new UserError(`${desc} is not inside the ${image.width}×${image.height} image (x + w ≤ ${image.width}, y + h ≤ ${image.height} needed)`);
  }
}

/** Parses "x,y,w,h" (as given to `--box`) into a PixelBox; the numbers must be whole. */
export function parseBox(text: string): PixelBox {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 4 || parts.some((s) => !/^-?\d+$/.test(s))) {
    throw new UserError(`--box must be x,y,w,h in whole pixels (e.g. 8,8,16,16), got '${text}'`);
  }
  const [x, y, w, h] = parts.map(Number) as [number, number, number, number];
  return { x, y, w, h };
}

/** A pixel mask (width × height, 1 inside the box, else 0) for a box; the box must be inside the image. */
export function boxToPixelMask(box: PixelBox, width: number, height: number): Uint8Array {
  whole(width, 'image width', 1);
  whole(height, 'image height', 1);
  checkBox(box, { width, height, patch: 1 });
  const m = new Uint8Array(width * height);
  for (let y = box.y; y < box.y + box.h; y++) m.fill(1, y * width + box.x, y * width + box.x + box.w);
  return m;
}

/**
 * The token positions (sorted, row-major) of a pixel mask: `mask` is width × height, row-major,
 * nonzero = regenerate; a token is masked if any of its pixels is. Throws if the mask has the wrong
 * size or selects no pixel.
 */
export function pixelMaskToTokens(mask: Uint8Array, image: ImageGrid): number[] {
  const { cols, rows } = tokenGrid(image);
  const { width, height, patch: p } = image;
  if (mask.length !== width * height) {
    throw new UserError(`mask has ${mask.length} pixels, expected ${width}×${height} = ${width * height} (the image's size)`);
  }
  const hit = new Uint8Array(cols * rows);
  for (let y = 0; y < height; y++) {
    const r = Math.floor(y / p);
    for (let x = 0; x < width; x++) if (mask[y * width + x] !== 0) hit[r * cols + Math.floor(x / p)] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < hit.length; i++) if (hit[i]) out.push(i);
  if (out.length === 0) throw new UserError('the mask selects no pixel (white = regenerate): nothing to edit');
  return out;
}

/** A 0/1 mask of length `count` with 1 at the given positions. */
export function positionsToMask(positions: readonly number[], count: number): Uint8Array {
  const m = new Uint8Array(count);
  for (const i of positions) {
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new UserError(`token position ${i} is outside [0, ${count - 1}]`);
    m[i] = 1;
  }
  return m;
}

/**
 * A copy of `tokens` ([B, n], or [n]) with the given positions set to `maskId` in every batch
 * item: the starting tokens for inpainting.
 */
export function maskTokens(tokens: Int32Array, positions: readonly number[], maskId: number, n: number = tokens.length): Int32Array {
  whole(n, 'tokens per image', 1);
  if (tokens.length % n !== 0) throw new UserError(`${tokens.length} tokens do not split into images of ${n}`);
  const out = Int32Array.from(tokens);
  const mask = positionsToMask(positions, n);
  for (let b = 0; b < tokens.length / n; b++) for (let i = 0; i < n; i++) if (mask[i]) out[b * n + i] = maskId;
  return out;
}

/**
 * Feathered paste-back weights for an inpainting mask: width × height, 1 on the mask's pixels, and
 * outside it falling linearly with the Euclidean distance d to the nearest mask pixel,
 * max(0, 1 − d/(radius + 1)); radius 0 gives a hard edge. Composite per pixel as
 * alpha · generated + (1 − alpha) · original.
 */
export function featherMask(mask: Uint8Array, width: number, height: number, radius: number): Float32Array {
  whole(width, 'image width', 1);
  whole(height, 'image height', 1);
  whole(radius, 'feather radius', 0);
  if (mask.length !== width * height) throw new UserError(`mask has ${mask.length} pixels, expected ${width}×${height}`);
  const alpha = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] !== 0) {
        alpha[y * width + x] = 1;
        continue;
      }
      let best = Infinity;
      for (let dy = -radius; dy <= radius; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -radius; dx <= radius; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width || mask[yy * width + xx] === 0) continue;
          const d2 = dx * dx + dy * dy;
          if (d2 < best) best = d2;
        }
      }
      if (best !== Infinity) alpha[y * width + x] = Math.max(0, 1 - Math.sqrt(best) / (radius + 1));
    }
  }
  return alpha;
}

/** Where outpainting puts things: every size both in tokens and in pixels. */
export interface OutpaintLayout {
  patch: number;
  /** The margins rounded up to whole tokens. */
  tokens: Extend;
  /** The margins actually added, in pixels (tokens · patch ≥ what was asked). */
  pixels: Extend;
  /** The original token grid. */
  oldGrid: GridSize;
  /** The new, larger token grid. */
  grid: GridSize;
  /** Where the old grid's top-left token sits in the new grid. */
  offset: { col: number; row: number };
  /** The new image size in pixels. */
  width: number;
  height: number;
  /** Where the old image's top-left pixel sits in the new image. */
  pixelOffset: { x: number; y: number };
}

/**
 * The layout of an outpainting: each margin (pixels, whole, ≥ 0, at least one > 0) is rounded up to
 * whole tokens; the new grid is the old one plus those tokens on each side.
 */
export function outpaintLayout(image: ImageGrid, extend: Extend): OutpaintLayout {
  const oldGrid = tokenGrid(image);
  const p = image.patch;
  const sides = ['left', 'top', 'right', 'bottom'] as const;
  for (const s of sides) whole(extend[s], `--extend ${s}`, 0);
  if (sides.every((s) => extend[s] === 0)) throw new UserError('--extend: every margin is 0, nothing to outpaint');
  const t = (v: number): number => Math.ceil(v / p);
  const tokens: Extend = { left: t(extend.left), top: t(extend.top), right: t(extend.right), bottom: t(extend.bottom) };
  const pixels: Extend = { left: tokens.left * p, top: tokens.top * p, right: tokens.right * p, bottom: tokens.bottom * p };
  const grid = { cols: oldGrid.cols + tokens.left + tokens.right, rows: oldGrid.rows + tokens.top + tokens.bottom };
  return {
    patch: p,
    tokens,
    pixels,
    oldGrid,
    grid,
    offset: { col: tokens.left, row: tokens.top },
    width: grid.cols * p,
    height: grid.rows * p,
    pixelOffset: { x: pixels.left, y: pixels.top },
  };
}

/** Parses "left,top,right,bottom" (as given to `--extend`) in whole pixels. */
export function parseExtend(text: string): Extend {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 4 || parts.some((s) => !/^\d+$/.test(s))) {
    throw new UserError(`--extend must be left,top,right,bottom in whole pixels ≥ 0 (e.g. 0,0,16,0), got '${text}'`);
  }
  const [left, top, right, bottom] = parts.map(Number) as [number, number, number, number];
  return { left, top, right, bottom };
}

/**
 * Places token grids ([B, old cols · old rows]) into the outpainting grid ([B, cols · rows]) at the
 * layout's offset, with `maskId` everywhere else: the starting tokens for outpainting.
 */
export function placeInGrid(tokens: Int32Array, layout: OutpaintLayout, maskId: number): Int32Array {
  const { oldGrid, grid, offset } = layout;
  const oldN = oldGrid.cols * oldGrid.rows;
  const n = grid.cols * grid.rows;
  if (tokens.length % oldN !== 0 || tokens.length === 0) throw new UserError(`${tokens.length} tokens do not split into ${oldGrid.cols}×${oldGrid.rows} grids`);
  const B = tokens.length / oldN;
  const out = new Int32Array(B * n).fill(maskId);
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < oldGrid.rows; r++) {
      const src = b * oldN + r * oldGrid.cols;
      out.set(tokens.subarray(src, src + oldGrid.cols), b * n + (r + offset.row) * grid.cols + offset.col);
    }
  }
  return out;
}

/** The positions of the new grid that outpainting generates (outside the old grid), sorted. */
export function outpaintPositions(layout: OutpaintLayout): number[] {
  const { oldGrid, grid, offset } = layout;
  const out: number[] = [];
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      const inside = r >= offset.row && r < offset.row + oldGrid.rows && c >= offset.col && c < offset.col + oldGrid.cols;
      if (!inside) out.push(r * grid.cols + c);
    }
  }
  return out;
}

/**
 * A token window of `size` inside a grid ([B, grid.cols · grid.rows]) at (col, row), as
 * [B, size.cols · size.rows]: e.g. to run a fixed-size model over part of an outpainting grid.
 */
export function cropGrid(tokens: Int32Array, grid: GridSize, at: { col: number; row: number }, size: GridSize): Int32Array {
  const n = grid.cols * grid.rows;
  if (tokens.length % n !== 0 || tokens.length === 0) throw new UserError(`${tokens.length} tokens do not split into ${grid.cols}×${grid.rows} grids`);
  if (at.col < 0 || at.row < 0 || at.col + size.cols > grid.cols || at.row + size.rows > grid.rows) {
    throw new UserError(`a ${size.cols}×${size.rows} window at (${at.col}, ${at.row}) is not inside the ${grid.cols}×${grid.rows} grid`);
  }
  const B = tokens.length / n;
  const m = size.cols * size.rows;
  const out = new Int32Array(B * m);
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < size.rows; r++) {
      const src = b * n + (r + at.row) * grid.cols + at.col;
      out.set(tokens.subarray(src, src + size.cols), b * m + r * size.cols);
    }
  }
  return out;
}

/** How many of n tokens mask-free editing resamples per iteration: round(strength · n), at least 1. */
export function resampleCount(n: number, strength: number): number {
  whole(n, 'the number of tokens', 1);
  if (!Number.isFinite(strength) || strength <= 0 || strength > 1) {
    throw new UserError(`--strength (the fraction of tokens resampled per iteration) must be in (0, 1], got ${strength}`);
  }
  return Math.min(n, Math.max(1, Math.round(strength * n)));
}

/**
 * Mask-free editing's choice for one iteration (Muse §4.2): a uniformly random subset of
 * `resampleCount(n, strength)` of the n token positions, sorted, drawn from `rng` (one
 * permutation of n per call, so a seeded Rng gives the same sequence of subsets).
 */
export function resampleSelection(n: number, strength: number, rng: Rng): number[] {
  const count = resampleCount(n, strength);
  return rng
    .permutation(n)
    .slice(0, count)
    .sort((a, b) => a - b);
}

/** A box in an image of w × h pixels → the pixels it covers in the same image resized to s × s (at least 1 each way). */
export function scaleBox(box: PixelBox, w: number, h: number, s: number): PixelBox {
  const x0 = Math.floor((box.x * s) / w);
  const y0 = Math.floor((box.y * s) / h);
  const x1 = Math.min(s, Math.max(x0 + 1, Math.ceil(((box.x + box.w) * s) / w)));
  const y1 = Math.min(s, Math.max(y0 + 1, Math.ceil(((box.y + box.h) * s) / h)));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/**
 * A mask (w × h, 1 channel, 0–255) → s × s, 1 where any pixel of the original it covers is white
 * (≥ 128), so that a thin stroke is not lost when shrinking.
 */
export function scaleMask(mask: Uint8Array, w: number, h: number, s: number): Uint8Array {
  const out = new Uint8Array(s * s);
  for (let ty = 0; ty < s; ty++) {
    const y0 = Math.floor((ty * h) / s);
    const y1 = Math.max(y0 + 1, Math.ceil(((ty + 1) * h) / s));
    for (let tx = 0; tx < s; tx++) {
      const x0 = Math.floor((tx * w) / s);
      const x1 = Math.max(x0 + 1, Math.ceil(((tx + 1) * w) / s));
      let hit = false;
      for (let y = y0; y < y1 && !hit; y++) for (let x = x0; x < x1 && !hit; x++) hit = mask[y * w + x]! >= 128;
      out[ty * s + tx] = hit ? 1 : 0;
    }
  }
  return out;
}
