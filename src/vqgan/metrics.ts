/**
 * Reconstruction and codebook figures as pure functions over plain arrays: images are HWC
 * Float32Arrays in [0, 1]; token ids are integers in [0, K).
 */

/** PSNR in dB of one image against its reference (peak 1). Identical images give Infinity. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`psnr: sizes differ (${a.length} vs ${b.length})`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const mid = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) sum += k[i] = Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i]! /= sum;
  return k;
}

/** Separable 'valid' filtering of one channel plane [h, w]. */
function filterValid(plane: Float64Array, h: number, w: number, k: Float64Array): { data: Float64Array; h: number; w: number } {
  const n = k.length;
  const w1 = w - n + 1;
  const h1 = h - n + 1;
  const rows = new Float64Array(h * w1);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w1; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * plane[y * w + x + i]!;
      rows[y * w1 + x] = s;
    }
  const out = new Float64Array(h1 * w1);
  for (let y = 0; y < h1; y++)
    for (let x = 0; x < w1; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * rows[(y + i) * w1 + x]!;
      out[y * w1 + x] = s;
    }
  return { data: out, h: h1, w: w1 };
}

/**
 * SSIM (Wang et al. 2004) of one HWC image against its reference: Gaussian window 11, σ = 1.5,
 * K1 = 0.01, K2 = 0.03, data range 1, mean over the valid region and the channels. The window
 * shrinks to fit images smaller than 11 pixels.
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, height: number, width: number, channels: number): number {
  if (a.length !== b.length || a.length !== height * width * channels) throw new Error('ssim: sizes do not match the shape');
  const size = Math.min(11, height, width);
  const k = gaussianKernel(size, 1.5);
  const c1 = 0.01 ** 2;
  const c2 = 0.03 ** 2;
  let total = 0;
  for (let c = 0; c < channels; c++) {
    const planes = [0, 1, 2, 3, 4].map(() => new Float64Array(height * width));
    for (let i = 0; i < height * width; i++) {
      const x = a[i * channels + c]!;
      const y = b[i * channels + c]!;
      planes[0]![i] = x;
      planes[1]![i] = y;
      planes[2]![i] = x * x;
      planes[3]![i] = y * y;
      planes[4]![i] = x * y;
    }
    const [mx, my, mxx, myy, mxy] = planes.map((p) => filterValid(p, height, width, k).data) as Float64Array[];
    let sum = 0;
    for (let i = 0; i < mx!.length; i++) {
      const ux = mx![i]!;
      const uy = my![i]!;
      const vx = mxx![i]! - ux * ux;
      const vy = myy![i]! - uy * uy;
      const cxy = mxy![i]! - ux * uy;
      sum += ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
    total += sum / mx!.length;
  }
  return total / channels;
}

/** How often each code was used. */
export function codeHistogram(ids: ArrayLike<number>, codebookSize: number): Float64Array {
  const counts = new Float64Array(codebookSize);
  for (let i = 0; i < ids.length; i++) counts[ids[i]!]!++;
  return counts;
}

/** Fraction of the codebook used at least once. */
export function codebookUsage(counts: ArrayLike<number>): number {
  let used = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) used++;
  return used / counts.length;
}

/** exp(entropy) of the code distribution: K for uniform use of K codes, 1 for a single code. */
export function perplexity(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return 0;
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    const p = counts[i]! / total;
    if (p > 0) h -= p * Math.log(p);
  }
  return Math.exp(h);
}
