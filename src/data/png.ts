/**
 * A small PNG codec in plain TypeScript over node:zlib. Data sets hold tens of thousands of tiny
 * PNGs, and sharp's per-image pipeline overhead (about 1 ms) dominates their decoding; this path
 * takes tens of microseconds. It covers every non-interlaced PNG (all colour types and bit depths,
 * palettes and tRNS); anything else (interlaced, an embedded ICC profile) returns null so the caller
 * falls back to sharp, which also has the last word on corrupt files.
 */
import { deflateSync, inflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as PNG chunks use it (zlib's crc32 needs Node ≥ 20.15). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Decoded 8-bit pixels, HWC, with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels. */
export interface DecodedPng {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Decodes a PNG into 8-bit pixels (16-bit samples keep their high byte), or returns null when the
 * file is one this decoder leaves to sharp. Throws on a malformed file.
 */
export function decodePng(bytes: Uint8Array): DecodedPng | null {
  if (!isPng(bytes)) throw new Error('not a PNG');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);
    if (pos + 12 + length > bytes.length) throw new Error(`truncated ${type} chunk`);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + length)) !== view.getUint32(pos + 8 + length)) {
      throw new Error(`bad CRC in ${type} chunk`);
    }
    pos += 12 + length;
    if (type === 'IHDR') {
      if (length !== 13) throw new Error('bad IHDR');
      const h = new DataView(data.buffer, data.byteOffset, 13);
      width = h.getUint32(0);
      height = h.getUint32(4);
      depth = data[8]!;
      colorType = data[9]!;
      if (data[10] !== 0 || data[11] !== 0) throw new Error('unknown compression or filter method');
      if (data[12] !== 0) return null; // interlaced: leave to sharp
    } else if (type === 'PLTE') {
      palette = data;
    } else if (type === 'tRNS') {
      trns = data;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'iCCP') {
      return null; // colour-managed: sharp converts to sRGB
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
  }
  if (!ended) throw new Error('no IEND chunk (truncated file)');
  const samples = SAMPLES[colorType];
  if (samples === undefined || width === 0 || height === 0) throw new Error('bad or missing IHDR');
  if (width * height > 0x10000000) return null; // huge: sharp applies its pixel limit
  if (![1, 2, 4, 8, 16].includes(depth) || (colorType !== 0 && colorType !== 3 && depth < 8) || (colorType === 3 && depth > 8)) {
    throw new Error(`bad bit depth ${depth} for colour type ${colorType}`);
  }
  if (colorType === 3 && !palette) throw new Error('palette image without PLTE');
  if (idat.length === 0) throw new Error('no image data');

  const raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  const bitsPerPixel = samples * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < (stride + 1) * height) throw new Error('image data too short');
  const lines = unfilter(raw, stride, height, bpp);

  // Expand to 8-bit samples.
  const n = width * height;
  let data: Uint8Array;
  if (depth === 8) {
    data = lines;
  } else if (depth === 16) {
    data = new Uint8Array(n * samples);
    for (let i = 0; i < data.length; i++) data[i] = lines[i * 2]!;
  } else {
    data = new Uint8Array(n);
    const scale = colorType === 3 ? 1 : 255 / ((1 << depth) - 1);
    const mask = (1 << depth) - 1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const v = (lines[y * stride + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
        data[y * width + x] = colorType === 3 ? v : Math.round(v * scale);
      }
    }
  }

  if (colorType === 3) {
    const pal = palette!;
    const entries = Math.floor(pal.length / 3);
    const alpha = trns !== null;
    const c = alpha ? 4 : 3;
    const out = new Uint8Array(n * c);
    for (let i = 0; i < n; i++) {
      const k = data[i]!;
      if (k >= entries) throw new Error(`palette index ${k} out of range`);
      out[i * c] = pal[k * 3]!;
      out[i * c + 1] = pal[k * 3 + 1]!;
      out[i * c + 2] = pal[k * 3 + 2]!;
      if (alpha) out[i * c + 3] = k < trns!.length ? trns![k]! : 255;
    }
    return { width, height, channels: c as 3 | 4, data: out };
  }
  if (trns !== null && (colorType === 0 || colorType === 2)) {
    // One transparent colour key (compared at the file's bit depth).
    const tv = new DataView(trns.buffer, trns.byteOffset, trns.byteLength);
    const key = Array.from({ length: samples }, (_, s) => tv.getUint16(2 * s));
    const sampleAt =
      depth === 16
        ? (i: number) => (lines[i * 2]! << 8) | lines[i * 2 + 1]!
        : depth === 8
          ? (i: number) => lines[i]!
          : (i: number) => Math.round(data[i]! / (255 / ((1 << depth) - 1)));
    const c = samples + 1;
    const out = new Uint8Array(n * c);
    for (let p = 0; p < n; p++) {
      let transparent = true;
      for (let s = 0; s < samples; s++) {
        out[p * c + s] = data[p * samples + s]!;
        if (sampleAt(p * samples + s) !== key[s]) transparent = false;
      }
      out[p * c + samples] = transparent ? 0 : 255;
    }
    return { width, height, channels: c as 2 | 4, data: out };
  }
  return { width, height, channels: samples as 1 | 2 | 3 | 4, data: data.length === n * samples ? data : data.subarray(0, n * samples) };
}

/** Reverses the PNG row filters; returns the rows without their filter bytes, packed. */
function unfilter(raw: Uint8Array, stride: number, height: number, bpp: number): Uint8Array {
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), row);
        break;
      case 1:
        for (let x = 0; x < stride; x++) out[row + x] = (raw[src + x]! + (x >= bpp ? out[row + x - bpp]! : 0)) & 255;
        break;
      case 2:
        for (let x = 0; x < stride; x++) out[row + x] = (raw[src + x]! + (y > 0 ? out[prev + x]! : 0)) & 255;
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[row + x - bpp]! : 0;
          const b = y > 0 ? out[prev + x]! : 0;
          out[row + x] = (raw[src + x]! + ((a + b) >> 1)) & 255;
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[row + x - bpp]! : 0;
          const b = y > 0 ? out[prev + x]! : 0;
          const c = x >= bpp && y > 0 ? out[prev + x - bpp]! : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          out[row + x] = (raw[src + x]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
        }
        break;
      default:
        throw new Error(`unknown row filter ${filter}`);
    }
  }
  return out;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes 8-bit HWC pixels (1 = gray, 3 = RGB, 2/4 with alpha) as a PNG, with the Up or None filter per image. */
export function encodePngBytes(data: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Buffer {
  const stride = width * channels;
  if (data.length !== stride * height) throw new Error(`encodePng: ${width}×${height}×${channels} needs ${stride * height} bytes, got ${data.length}`);
  const filtered = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = y * stride;
    if (y === 0) {
      filtered[o] = 0;
      filtered.set(data.subarray(row, row + stride), o + 1);
    } else {
      filtered[o] = 2; // Up: usually smaller for natural images and costs nothing to decide
      for (let x = 0; x < stride; x++) filtered[o + 1 + x] = (data[row + x]! - data[row - stride + x]!) & 255;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  return Buffer.concat([
    Buffer.from(SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(filtered, { level: 6 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
