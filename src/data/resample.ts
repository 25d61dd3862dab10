/**
 * Pixel operations for the fast image path, written to agree with what sharp (libvips) does to
 * within a grey level or so: flattening alpha onto a background, sRGB → grey in linear light
 * (Rec. 709 luminance), and separable Lanczos-3 resizing (antialiased when shrinking).
 */

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

const NAMED: Record<string, Rgb> = {
  white: { r: 255, g: 255, b: 255 },
  black: { r: 0, g: 0, b: 0 },
  gray: { r: 128, g: 128, b: 128 },
  grey: { r: 128, g: 128, b: 128 },
};

/** A background colour as 0–255 components, or null when it is a CSS string this module does not parse. */
export function parseColor(color: string | Rgb): Rgb | null {
  if (typeof color !== 'string') return color;
  const s = color.trim().toLowerCase();
  if (NAMED[s]) return NAMED[s]!;
  let m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/.exec(s);
  if (m) return { r: parseInt(m[1]! + m[1]!, 16), g: parseInt(m[2]! + m[2]!, 16), b: parseInt(m[3]! + m[3]!, 16) };
  m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/.exec(s);
  if (m) return { r: parseInt(m[1]!, 16), g: parseInt(m[2]!, 16), b: parseInt(m[3]!, 16) };
  m = /^rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(s);
  if (m) return { r: +m[1]!, g: +m[2]!, b: +m[3]! };
  return null;
}

const TO_LINEAR = new Float32Array(256).map((_, i) => {
  const v = i / 255;
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
});
const ENC_STEPS = 16384;
const FROM_LINEAR = new Uint8Array(ENC_STEPS + 1).map((_, i) => {
  const v = i / ENC_STEPS;
  const s = v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055;
  return Math.round(Math.min(1, Math.max(0, s)) * 255);
});

/** The grey level of an sRGB colour, computed in linear light as libvips does. */
export function luminance(r: number, g: number, b: number): number {
  const y = 0.2126 * TO_LINEAR[r]! + 0.7152 * TO_LINEAR[g]! + 0.0722 * TO_LINEAR[b]!;
  return FROM_LINEAR[Math.round(Math.min(1, y) * ENC_STEPS)]!;
}

/**
 * Converts decoded pixels (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA) to `to` channels (1 or 3),
 * flattening alpha onto `bg`.
 */
export function toChannels(data: Uint8Array, pixels: number, from: 1 | 2 | 3 | 4, to: 1 | 3, bg: Rgb): Uint8Array {
  if (from === to) return data;
  const out = new Uint8Array(pixels * to);
  const bgGrey = luminance(bg.r, bg.g, bg.b);
  const greyBg = bg.r === bg.g && bg.g === bg.b;
  for (let p = 0; p < pixels; p++) {
    let r: number;
    let g: number;
    let b: number;
    if (from === 1 || from === 2) {
      r = g = b = data[p * from]!;
    } else {
      r = data[p * from]!;
      g = data[p * from + 1]!;
      b = data[p * from + 2]!;
    }
    if (from === 2 || from === 4) {
      const a = data[p * from + from - 1]!;
      if (a !== 255) {
        if (to === 1 && from === 2 && greyBg) {
          out[p] = Math.round((r * a + bgGrey * (255 - a)) / 255);
          continue;
        }
        r = Math.round((r * a + bg.r * (255 - a)) / 255);
        g = Math.round((g * a + bg.g * (255 - a)) / 255);
        b = Math.round((b * a + bg.b * (255 - a)) / 255);
      }
    }
    if (to === 1) {
      out[p] = r === g && g === b ? r : luminance(r, g, b);
    } else {
      out[p * 3] = r;
      out[p * 3 + 1] = g;
      out[p * 3 + 2] = b;
    }
  }
  return out;
}

interface Weights {
  /** First source index (unclamped) for each output index. */
  start: Int32Array;
  /** Taps per output index. */
  taps: number;
  /** taps weights per output index, normalized. */
  w: Float32Array;
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

const weightCache = new Map<string, Weights>();

function weights(src: number, dst: number): Weights {
  const key = `${src}>${dst}`;
  const cached = weightCache.get(key);
  if (cached) return cached;
  const ratio = src / dst;
  const scale = Math.max(ratio, 1);
  const support = 3 * scale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(dst);
  const w = new Float32Array(dst * taps);
  for (let o = 0; o < dst; o++) {
    const center = (o + 0.5) * ratio;
    const first = Math.floor(center - support);
    start[o] = first;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const v = lanczos3((first + t + 0.5 - center) / scale);
      w[o * taps + t] = v;
      sum += v;
    }
    for (let t = 0; t < taps; t++) w[o * taps + t]! /= sum;
  }
  const result = { start, taps, w };
  if (weightCache.size > 64) weightCache.clear();
  weightCache.set(key, result);
  return result;
}

/** Resizes HWC uint8 pixels with a separable Lanczos-3 filter (edges extended). */
export function resize(data: Uint8Array, sw: number, sh: number, c: number, dw: number, dh: number): Uint8Array {
  if (sw === dw && sh === dh) return data;
  // Horizontal pass: sh rows × dw columns, float.
  const wx = weights(sw, dw);
  const tmp = new Float32Array(sh * dw * c);
  for (let y = 0; y < sh; y++) {
    const srow = y * sw * c;
    const trow = y * dw * c;
    for (let x = 0; x < dw; x++) {
      const first = wx.start[x]!;
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let t = 0; t < wx.taps; t++) {
          const wt = wx.w[x * wx.taps + t]!;
          if (wt === 0) continue;
          const sx = Math.min(sw - 1, Math.max(0, first + t));
          acc += wt * data[srow + sx * c + k]!;
        }
        tmp[trow + x * c + k] = acc;
      }
    }
  }
  // Vertical pass.
  const wy = weights(sh, dh);
  const out = new Uint8Array(dh * dw * c);
  const rowLen = dw * c;
  for (let y = 0; y < dh; y++) {
    const first = wy.start[y]!;
    const orow = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let t = 0; t < wy.taps; t++) {
        const wt = wy.w[y * wy.taps + t]!;
        if (wt === 0) continue;
        const sy = Math.min(sh - 1, Math.max(0, first + t));
        acc += wt * tmp[sy * rowLen + i]!;
      }
      out[orow + i] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
    }
  }
  return out;
}

/** Scales to fit inside dw×dh keeping the aspect ratio, and pads the rest with `bg`, centred. */
export function contain(data: Uint8Array, sw: number, sh: number, c: 1 | 3, dw: number, dh: number, bg: Rgb): Uint8Array {
  const scale = Math.min(dw / sw, dh / sh);
  const w = Math.max(1, Math.min(dw, Math.round(sw * scale)));
  const h = Math.max(1, Math.min(dh, Math.round(sh * scale)));
  const inner = resize(data, sw, sh, c, w, h);
  if (w === dw && h === dh) return inner;
  const out = new Uint8Array(dw * dh * c);
  const fill = c === 1 ? [luminance(bg.r, bg.g, bg.b)] : [bg.r, bg.g, bg.b];
  for (let i = 0; i < dw * dh; i++) for (let k = 0; k < c; k++) out[i * c + k] = fill[k]!;
  const left = Math.floor((dw - w) / 2);
  const top = Math.floor((dh - h) / 2);
  for (let y = 0; y < h; y++) out.set(inner.subarray(y * w * c, (y + 1) * w * c), ((top + y) * dw + left) * c);
  return out;
}
