/**
 * Reading and writing images: a built-in PNG codec for the common case (data sets of many small
 * PNGs), sharp for every other format. Pixels are plain typed arrays in HWC order (row-major,
 * channels last), 1 channel (grayscale) or 3 (RGB); alpha is flattened onto a background colour.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { decodePng, encodePngBytes, isPng, type DecodedPng } from './png.js';
import { contain, parseColor, resize, toChannels, type Rgb } from './resample.js';

export type Channels = 1 | 3;
export type Fit = 'fill' | 'contain';
/** A colour: 'white', 'black', 'gray', '#rgb', '#rrggbb', 'rgb(r,g,b)', or 0–255 components. */
export type Background = string | Rgb;
export type { Rgb };

/** An image in memory: `data` holds height*width*channels values, HWC. */
export interface RawImage<T extends Uint8Array | Float32Array = Uint8Array> {
  data: T;
  width: number;
  height: number;
  channels: Channels;
}

export interface ReadImageOptions {
  /** Output size: a number for a square, or width and height. */
  size: number | { width: number; height: number };
  /** 1 = grayscale, 3 = RGB. */
  channels: Channels;
  /** 'fill' stretches to the size; 'contain' keeps the aspect ratio and pads with the background. Default 'fill'. */
  fit?: Fit;
  /** Colour that transparent pixels are flattened onto and 'contain' pads with. Default white. */
  background?: Background;
  /**
   * 'auto' (default): see readImage. 'sharp': sharp does everything, its own resize included
   * (slower; for comparisons).
   */
  decoder?: 'auto' | 'sharp';
}

export const DEFAULT_BACKGROUND: Background = { r: 255, g: 255, b: 255 };

/** An image that could not be read or decoded. `file` names it. */
export class ImageReadError extends UserError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot read image ${file}: ${reason}`);
    this.name = 'ImageReadError';
  }
}

function sizeOf(size: ReadImageOptions['size']): { width: number; height: number } {
  const s = typeof size === 'number' ? { width: size, height: size } : size;
  if (!Number.isInteger(s.width) || !Number.isInteger(s.height) || s.width < 1 || s.height < 1) {
    throw new UserError(`image size must be positive integers, got ${s.width}×${s.height}`);
  }
  return s;
}

function checkChannels(c: number): asserts c is Channels {
  if (c !== 1 && c !== 3) throw new UserError(`channels must be 1 (grayscale) or 3 (RGB), got ${c}`);
}

/** Converts decoded raw pixels with `from` channels to `to` channels (1 ↔ 3), in case sharp gave other than asked. */
function convertChannels(data: Uint8Array, pixels: number, from: number, to: Channels): Uint8Array {
  if (from === to) return data;
  const out = new Uint8Array(pixels * to);
  for (let p = 0; p < pixels; p++) {
    if (to === 1) {
      const r = data[p * from]!;
      const g = data[p * from + (from >= 3 ? 1 : 0)]!;
      const b = data[p * from + (from >= 3 ? 2 : 0)]!;
      out[p] = Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
    } else {
      const v = data[p * from]!;
      const g = from >= 3 ? data[p * from + 1]! : v;
      const b = from >= 3 ? data[p * from + 2]! : v;
      out[p * 3] = v;
      out[p * 3 + 1] = g;
      out[p * 3 + 2] = b;
    }
  }
  return out;
}

/**
 * Reads an image file (or an encoded image in a Buffer) into HWC uint8 pixels at the given size and
 * channel count. Throws an ImageReadError naming the file when it is missing, unreadable or corrupt.
 *
 * Plain PNGs are decoded by the built-in codec and resized here (separable Lanczos-3, pixel centres
 * aligned); other formats are decoded by sharp. Shrinking agrees with sharp's own resize to a fraction
 * of a grey level on average; enlarging is always done here, because libvips's upsizing is offset by
 * half an output pixel, so every format gives the same result.
 */
export async function readImage(input: string | Uint8Array, opts: ReadImageOptions): Promise<RawImage> {
  const { width, height } = sizeOf(opts.size);
  checkChannels(opts.channels);
  const bg = parseColor(opts.background ?? DEFAULT_BACKGROUND);
  if (!bg) {
    throw new UserError(`background must be a colour like 'white', '#rrggbb', 'rgb(r,g,b)' or {r, g, b}, got ${String(opts.background)}`);
  }
  const fit = opts.fit ?? 'fill';
  const name = typeof input === 'string' ? input : '<buffer>';
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      bytes = await readFile(input);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ImageReadError(name, e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a folder' : e.message);
    }
  } else {
    bytes = input;
  }
  if (opts.decoder === 'sharp') return readWithSharp(bytes, name, width, height, opts.channels, fit, bg);

  let decoded: DecodedPng | null = null;
  if (isPng(bytes)) {
    try {
      decoded = decodePng(bytes);
    } catch {
      // malformed: sharp decides below, and words the error
    }
  }
  if (!decoded) {
    const meta = await sharp(bytes).metadata().catch(() => null);
    const enlarging = meta?.width !== undefined && meta.height !== undefined && (meta.width < width || meta.height < height);
    if (!enlarging) return readWithSharp(bytes, name, width, height, opts.channels, fit, bg);
    decoded = await decodeWithSharp(bytes, name);
  }
  let data = toChannels(decoded.data, decoded.width * decoded.height, decoded.channels, opts.channels, bg);
  data =
    fit === 'contain'
      ? contain(data, decoded.width, decoded.height, opts.channels, width, height, bg)
      : resize(data, decoded.width, decoded.height, opts.channels, width, height);
  return { data, width, height, channels: opts.channels };
}

/** Decodes with sharp at the image's own size, to sRGB with alpha kept. */
async function decodeWithSharp(bytes: Uint8Array, name: string): Promise<DecodedPng> {
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels < 1 || info.channels > 4) throw new Error(`${info.channels} channels`);
    return {
      width: info.width,
      height: info.height,
      channels: info.channels as 1 | 2 | 3 | 4,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (err) {
    throw new ImageReadError(name, ((err as Error).message ?? String(err)).split('\n')[0]!);
  }
}

async function readWithSharp(
  bytes: Uint8Array,
  name: string,
  width: number,
  height: number,
  channels: Channels,
  fit: Fit,
  background: Rgb,
): Promise<RawImage> {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    let pipeline = sharp(bytes, { failOn: 'error' })
      .flatten({ background })
      .resize(width, height, { fit: fit === 'contain' ? 'contain' : 'fill', background });
    pipeline = channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
    ({ data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw new ImageReadError(name, ((err as Error).message ?? String(err)).split('\n')[0]!);
  }
  if (info.width !== width || info.height !== height) {
    throw new ImageReadError(name, `decoded to ${info.width}×${info.height}, expected ${width}×${height}`);
  }
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { data: convertChannels(raw, width * height, info.channels, channels), width, height, channels };
}

/** Float pixels in [0,1] (clamped) → uint8 0–255, rounding to nearest. */
export function toUint8(data: Uint8Array | Float32Array): Uint8Array {
  if (data instanceof Uint8Array) return data;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0; // NaN → 0
  }
  return out;
}

function checkImage(image: RawImage<Uint8Array | Float32Array>, what: string): void {
  checkChannels(image.channels);
  const expected = image.width * image.height * image.channels;
  if (image.data.length !== expected) {
    throw new Error(`${what}: ${image.width}×${image.height}×${image.channels} needs ${expected} values, got ${image.data.length}`);
  }
}

/** Encodes an image (uint8 0–255, or float32 in [0,1]) as PNG bytes. */
export async function encodePng(image: RawImage<Uint8Array | Float32Array>): Promise<Buffer> {
  checkImage(image, 'encodePng');
  return encodePngBytes(toUint8(image.data), image.width, image.height, image.channels);
}

/**
 * Writes an image (uint8 0–255, or float32 in [0,1]; HWC, 1 or 3 channels) as a PNG file, creating its
 * folder. Atomically: a full disk or a crash never leaves half a PNG.
 */
export async function writePng(file: string, image: RawImage<Uint8Array | Float32Array>): Promise<void> {
  await writeFileAtomic(file, await encodePng(image));
}

/**
 * Tiles equal-size images into one image, `cols` per row, with `pad` pixels between and around
 * them filled with `padValue` (0–255, default 255 = white). Float images are converted to uint8.
 */
export function makeGrid(images: RawImage<Uint8Array | Float32Array>[], cols: number, pad = 2, padValue = 255): RawImage {
  if (images.length === 0) throw new Error('makeGrid: no images');
  const { width: w, height: h, channels: c } = images[0]!;
  for (const [i, im] of images.entries()) {
    checkImage(im, `makeGrid image ${i}`);
    if (im.width !== w || im.height !== h || im.channels !== c) {
      throw new Error(`makeGrid: image ${i} is ${im.width}×${im.height}×${im.channels}, expected ${w}×${h}×${c}`);
    }
  }
  cols = Math.max(1, Math.min(Math.floor(cols), images.length));
  const rows = Math.ceil(images.length / cols);
  const width = cols * w + (cols + 1) * pad;
  const height = rows * h + (rows + 1) * pad;
  const data = new Uint8Array(width * height * c).fill(padValue);
  const rowBytes = w * c;
  images.forEach((im, i) => {
    const src = toUint8(im.data);
    const x0 = pad + (i % cols) * (w + pad);
    const y0 = pad + Math.floor(i / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      data.set(src.subarray(y * rowBytes, (y + 1) * rowBytes), ((y0 + y) * width + x0) * c);
    }
  });
  return { data, width, height, channels: c };
}
