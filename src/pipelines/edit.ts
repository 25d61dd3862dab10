/**
 * Editing an image with the trained model, no fine-tuning (Muse §4).
 *
 * `pipe.edit(options)` edits one image (a RawImage, HWC, uint8 0–255 or float in [0, 1], at the
 * tokenizer's size and channel count: `pipe.tokenizer.config.imageSize` / `.channels`; resize
 * first, as `maskgen edit` does) toward one prompt, without fine-tuning (Muse §4). `options.mode`:
 *
 *   - `'inpaint'` with `mask` (width × height, row-major, nonzero = regenerate) or `box`
 *     ({x, y, w, h} in pixels): the image is tokenized, every token the mask touches becomes
 *     [MASK] and parallel decoding with the prompt fills only those; the others never change.
 *     In pixels, the original is pasted back outside the mask with a feathered edge
 *     (`featherMask`, `feather` pixels wide, default half a patch); `paste: false` turns it off.
 *   - `'outpaint'` with `extend` ({left, top, right, bottom} in pixels, each rounded up to whole
 *     tokens): the token grid grows by those tokens; the original tokens are kept and the new ones
 *     generated consistently with them and the prompt. The transformer and the ViT-VQGAN decoder
 *     both have fixed learned positions for their own g × g grid, so:
 *       · filling: g × g windows slide from the original's position outward along each axis by
 *         half a window (g/2 tokens, so each new window overlaps ≥ g/2 rows or columns already
 *         known), clamped at the grid's edges; the windows are visited ring by ring (by how many
 *         slides they are from the original, then by how many slides in total, then row, col), so
 *         every window sees tokens filled by its neighbours nearer the original. Each window is one
 *         parallel decoding with its known tokens as context and [MASK] where still unknown;
 *         windows with nothing unknown are skipped. See `outpaintWindows`.
 *       · decoding: the same windows are decoded separately and blended per pixel with a tent
 *         weight (largest at a window's centre, falling linearly to its edges), so seams between
 *         windows fade; a pixel covered by one window is that window's decoding.
 *     The original pixels are then pasted back over the old area with a feathered edge, as for
 *     inpainting (`paste: false` turns it off).
 *   - `'mask-free'` (Muse §4.2): from the image's own tokens, `iterations` rounds (default 10) each
 *     re-mask a `strength` fraction (default 0.1) of the tokens — those least likely under the
 *     prompt (`selection: 'least-likely'`, default) or a fresh seeded random share (`'random'`, as
 *     Muse) — and resample them with guidance (default 6, temperature 0.5) toward the prompt
 *     (`maskFreeEdit`), so the image moves toward the prompt while most of its layout stays.
 *     `stepsPerIteration` decoding steps per round (default 1).
 *
 * Every edit is deterministic by `seed` (images are made in batches of `batchSize`, batch i seeded
 * with seed + its first image's index, as `generate` does), and returns, per image, the final
 * image, the decoder's output before pasting, the token grid, the token positions the edit was
 * allowed to regenerate and those whose token actually changed.
 */
import type { RawImage } from '../data/images.js';
import {
  boxToPixelMask,
  cropGrid,
  DEFAULT_CHOICE_TEMPERATURE,
  DEFAULT_EDIT_GUIDANCE,
  DEFAULT_EDIT_ITERATIONS,
  DEFAULT_EDIT_REVERT,
  DEFAULT_EDIT_SELECTION,
  DEFAULT_EDIT_STRENGTH,
  DEFAULT_EDIT_TEMPERATURE,
  DEFAULT_GUIDANCE,
  DEFAULT_STEPS,
  type EditSelection,
  type Extend,
  featherMask,
  type GridSize,
  type GuidanceSchedule,
  maskFreeEdit,
  maskTokens,
  type OutpaintLayout,
  outpaintLayout,
  outpaintPositions,
  type PixelBox,
  pixelMaskToTokens,
  placeInGrid,
} from '../decoding/index.js';
import { UserError } from '../errors.js';
import { Rng } from '../random.js';
import { batchSettings, tokenizerImage } from './inputs.js';
import type { SamplingDefaults } from '../io/bundle.js';
import type { GenerateOptions, MaskgenPipeline } from '../pipeline.js';

/** A mask-free edit's settings, each as given, else the bundle's (`sampling.maskFree`), else the library's default. */
export interface MaskFreeSettings {
  strength: number;
  iterations: number;
  /** Decoding steps per round. */
  steps: number;
  revert: number;
  guidance: number;
  temperature: number;
  selection: EditSelection;
}

export function maskFreeSettings(sampling: SamplingDefaults, given: Partial<MaskFreeSettings>): MaskFreeSettings {
  const b = sampling.maskFree ?? {};
  return {
    strength: given.strength ?? b.strength ?? DEFAULT_EDIT_STRENGTH,
    iterations: given.iterations ?? b.iterations ?? DEFAULT_EDIT_ITERATIONS,
    steps: given.steps ?? b.steps ?? 1,
    revert: given.revert ?? b.revert ?? DEFAULT_EDIT_REVERT,
    guidance: given.guidance ?? b.guidance ?? DEFAULT_EDIT_GUIDANCE,
    temperature: given.temperature ?? b.temperature ?? DEFAULT_EDIT_TEMPERATURE,
    selection: given.selection ?? DEFAULT_EDIT_SELECTION,
  };
}

/**
 * The settings an edit runs with (`EditResult.settings`, what a caller records beside the images):
 * each as given, else the bundle's (its `plausibility`; mask-free, `sampling.maskFree`), else the
 * library's default. The bundle's generation guidance and steps are not an edit's.
 */
export interface EditSettings {
  steps: number;
  guidance: number;
  guidanceSchedule: GuidanceSchedule;
  temperature: number;
  choiceTemperature: number;
  plausibility: number;
  negativePrompt?: string;
  /** Inpainting and outpainting. */
  paste?: boolean;
  feather?: number;
  /** Mask-free. */
  strength?: number;
  iterations?: number;
  selection?: EditSelection;
  revert?: number;
}

/** `o`'s settings resolved (see `EditSettings`); `patch` is the tokenizer's patch size (the default feather is half of it). */
export function editSettings(sampling: SamplingDefaults, patch: number, o: EditOptions): EditSettings {
  const shared = {
    guidanceSchedule: o.guidanceSchedule ?? 'constant',
    choiceTemperature: o.choiceTemperature ?? DEFAULT_CHOICE_TEMPERATURE,
    plausibility: o.plausibility ?? sampling.plausibility ?? 0,
    ...(o.negativePrompt !== undefined ? { negativePrompt: o.negativePrompt } : {}),
  };
  if (o.mode === 'mask-free') {
    const { steps, guidance, temperature, ...mf } = maskFreeSettings(sampling, { ...o, steps: o.stepsPerIteration });
    return { steps, guidance, temperature, ...shared, ...mf };
  }
  return {
    steps: o.steps ?? DEFAULT_STEPS,
    guidance: o.guidance ?? DEFAULT_GUIDANCE,
    temperature: o.temperature ?? 1,
    ...shared,
    paste: o.paste !== false,
    feather: o.feather ?? Math.max(1, Math.round(patch / 2)),
  };
}

/** The three edits (see the top of this file). */
export type EditMode = 'inpaint' | 'outpaint' | 'mask-free';

/** What every edit takes: the image, the prompt, and `generate`'s sampling settings. */
export interface EditBase extends Omit<GenerateOptions, 'prompts'> {
  /** The image to edit, HWC, uint8 0–255 or float in [0, 1], at the tokenizer's size and channels. */
  image: RawImage<Uint8Array | Float32Array>;
  /** What the edited image (or region) should show. */
  prompt: string;
}

export interface InpaintOptions extends EditBase {
  mode: 'inpaint';
  /** Pixels to regenerate: width × height, row-major, nonzero = regenerate. Give this or `box`. */
  mask?: Uint8Array;
  /** A pixel box to regenerate (inside the image). Give this or `mask`. */
  box?: PixelBox;
  /** Paste the original back outside the mask with a feathered edge (default true). */
  paste?: boolean;
  /** Feather width in pixels (default half a patch, at least 1; 0 = hard edge). */
  feather?: number;
}

export interface OutpaintOptions extends EditBase {
  mode: 'outpaint';
  /** Pixels to add on each side, each rounded up to whole tokens; at least one > 0. */
  extend: Extend;
  /** Paste the original pixels back over the old area with a feathered edge (default true). */
  paste?: boolean;
  /** Feather width in pixels (default half a patch, at least 1; 0 = hard edge). */
  feather?: number;
}

export interface MaskFreeOptions extends EditBase {
  mode: 'mask-free';
  /** Fraction of the tokens resampled per iteration, in (0, 1] (default 0.1). */
  strength?: number;
  /** Resampling rounds (default 10). */
  iterations?: number;
  /** Decoding steps per round (default 1). `steps` is not used by this mode. */
  stepsPerIteration?: number;
  /** Which tokens each round resamples: 'least-likely' under the prompt (default) or 'random'; see `maskFreeEdit`. */
  selection?: EditSelection;
  /** After the rounds, give back changed tokens whose original is at least this times as probable under the prompt (0 = off, default); see `maskFreeEdit`. */
  revert?: number;
}

export type EditOptions = InpaintOptions | OutpaintOptions | MaskFreeOptions;

export interface EditedImage {
  /** Index of the image among the `n` made. */
  index: number;
  /** The seed of its batch (see GeneratedImage.seed). */
  seed: number;
  /** The result: the decoder's output, with the original pasted back when `paste`. */
  image: RawImage<Float32Array>;
  /** The decoder's output before pasting. */
  decoded: RawImage<Float32Array>;
  /** The result's token grid, row-major, `EditResult.grid` (larger than the source's when outpainting). */
  tokens: Int32Array;
  /** Positions (in the result's grid, sorted) the edit regenerated: the masked tokens, the new area, or (mask-free) every token resampled at least once. */
  regenerated: number[];
  /** Positions (in the result's grid, sorted) whose token differs from the source's (outpainting: the whole new area). */
  changed: number[];
  /** Share of the source's tokens kept unchanged, in [0, 1]. */
  kept: number;
}

export interface EditResult {
  mode: EditMode;
  prompt: string;
  /** The settings it ran with, defaults resolved. */
  settings: EditSettings;
  /** The source image's token grid (the tokenizer's g × g). */
  sourceTokens: Int32Array;
  sourceGrid: GridSize;
  /** The results' token grid. */
  grid: GridSize;
  /** The results' size in pixels. */
  width: number;
  height: number;
  /** Inpainting and outpainting: the pixels regenerated (width × height of the result, 1 = new), before feathering. */
  pixelMask?: Uint8Array;
  /** Outpainting: where everything went. */
  layout?: OutpaintLayout;
  images: EditedImage[];
}

/**
 * Edits an image toward a prompt: inpainting, outpainting or mask-free editing (see the top of
 * this file); `MaskgenPipeline.edit`. The same options and seed give the same result.
 */
export async function editImage(pipe: MaskgenPipeline, options: EditOptions): Promise<EditResult> {
  const { imageSize: size, patchSize: patch } = pipe.tokenizer.config;
  const settings = editSettings(pipe.sampling, patch, options);
  const o = { ...options, ...settings };
  const original = tokenizerImage(pipe, o.image, 'the image to edit');
  if (o.prompt.trim() === '') throw new UserError('the prompt is empty');
  const { n, seed, batchSize } = batchSettings(o);
  const feather = settings.feather ?? 0;
  if (!Number.isInteger(feather) || feather < 0) throw new UserError(`feather must be a whole number of pixels ≥ 0, got ${feather}`);

  const g = pipe.tokenizer.grid;
  const N = g * g;
  const sourceTokens = pipe.encodeImage(original);
  const sourceGrid = { cols: g, rows: g };
  const negative = o.negativePrompt ?? '';
  await pipe.text.prepare?.([o.prompt, negative]);

  // Per mode: the starting state, the per-batch work, the result grid.
  let grid: GridSize = sourceGrid;
  let pixelMask: Uint8Array | undefined;
  let layout: OutpaintLayout | undefined;
  let regenerated: number[] = [];
  let perBatch: number; // progress units per image batch
  if (o.mode === 'inpaint') {
    if ((o.mask === undefined) === (o.box === undefined)) throw new UserError('inpainting needs exactly one of a mask or a box');
    pixelMask = o.box ? boxToPixelMask(o.box, size, size) : Uint8Array.from(o.mask!, (v) => (v !== 0 ? 1 : 0));
    regenerated = pixelMaskToTokens(pixelMask, { width: size, height: size, patch });
    perBatch = o.steps;
  } else if (o.mode === 'outpaint') {
    layout = outpaintLayout({ width: size, height: size, patch }, o.extend);
    grid = layout.grid;
    regenerated = outpaintPositions(layout);
    pixelMask = new Uint8Array(layout.width * layout.height).fill(1);
    for (let y = 0; y < size; y++) pixelMask.fill(0, (y + layout.pixelOffset.y) * layout.width + layout.pixelOffset.x, (y + layout.pixelOffset.y) * layout.width + layout.pixelOffset.x + size);
    perBatch = outpaintWindows(layout, g).length * o.steps;
  } else if (o.mode === 'mask-free') {
    perBatch = settings.iterations!;
  } else {
    throw new UserError(`unknown edit mode '${String((o as { mode: unknown }).mode)}' (inpaint, outpaint or mask-free)`);
  }
  const width = grid.cols * patch;
  const height = grid.rows * patch;
  const alpha = pixelMask && settings.paste ? featherMask(pixelMask, width, height, feather) : undefined;
  // The original on the result's canvas (outpainting: at its offset; elsewhere unused as alpha = 1).
  const canvas = layout ? placePixels(original, layout) : original;

  const images: EditedImage[] = [];
  const totalUnits = Math.ceil(n / batchSize) * perBatch;
  for (let start = 0; start < n; start += batchSize) {
    const B = Math.min(batchSize, n - start);
    const batchSeed = seed + start;
    const prompts = Array.from({ length: B }, () => o.prompt);
    const done0 = (start / batchSize) * perBatch;
    const source = repeat(sourceTokens, B);
    let tokens: Int32Array;
    let resampled: Set<number>[] | undefined;
    if (o.mode === 'inpaint') {
      tokens = await pipe.sampleTokens(
        prompts,
        negative,
        batchSeed,
        o,
        (t, _steps, grids) => o.onStep?.(done0 + t, totalUnits, o.preview ? pipe.stepPreview(grids, B, start) : undefined),
        maskTokens(source, regenerated, pipe.transformer.maskId, N),
      );
    } else if (o.mode === 'outpaint') {
      tokens = await fillOutpaint(pipe, source, B, layout!, prompts, negative, batchSeed, o, (u) => o.onStep?.(done0 + u, totalUnits));
    } else {
      const model = pipe.guidedModel(prompts, negative, o, settings.steps);
      resampled = Array.from({ length: B }, () => new Set<number>());
      try {
        const res = await maskFreeEdit({
          tokens: source,
          batch: B,
          n: N,
          k: pipe.transformer.config.codebookSize,
          maskId: pipe.transformer.maskId,
          predict: model.predict,
          iterations: settings.iterations!,
          strength: settings.strength!,
          stepsPerIteration: settings.steps,
          selection: settings.selection!,
          revert: settings.revert!,
          temperature: settings.temperature,
          choiceTemperatureStart: settings.choiceTemperature,
          seed: batchSeed,
          onIteration: ({ iteration, resampled: chosen, tokens: grids }) => {
            chosen.forEach((positions, b) => positions.forEach((i) => resampled![b]!.add(i)));
            return o.onStep?.(done0 + iteration + 1, totalUnits, o.preview ? pipe.stepPreview(grids, B, start) : undefined);
          },
        });
        tokens = res.tokens;
      } finally {
        model.dispose();
      }
    }
    const decoded = layout ? decodeGrid(pipe, tokens, B, layout.grid, outpaintWindows(layout, g)) : pipe.decodeTokens(tokens, B);
    const M = grid.cols * grid.rows;
    for (let b = 0; b < B; b++) {
      const t = tokens.slice(b * M, (b + 1) * M);
      let changed: number[];
      if (layout) {
        changed = regenerated.slice();
      } else {
        changed = [];
        for (let i = 0; i < N; i++) if (t[i] !== sourceTokens[i]) changed.push(i);
      }
      const own = resampled ? [...resampled[b]!].sort((x, y) => x - y) : regenerated.slice();
      const kept = layout ? 1 : 1 - changed.length / N;
      const image = alpha ? composite(decoded[b]!, canvas, alpha) : { ...decoded[b]!, data: decoded[b]!.data.slice() };
      images.push({ index: start + b, seed: batchSeed, image, decoded: decoded[b]!, tokens: t, regenerated: own, changed, kept });
    }
  }
  return { mode: o.mode, prompt: o.prompt, settings, sourceTokens, sourceGrid, grid, width, height, pixelMask, layout, images };
}

/**
 * Outpainting's token filling: the source grids [B, g·g] placed in the larger grid, then one
 * parallel decoding per g × g window of `outpaintWindows`, each seeded from `seed` and the
 * window's index. Returns the filled grids [B, cols·rows].
 */
async function fillOutpaint(
  pipe: MaskgenPipeline,
  source: Int32Array,
  B: number,
  layout: OutpaintLayout,
  prompts: string[],
  negative: string,
  seed: number,
  o: Omit<GenerateOptions, 'prompts'>,
  onUnit: (done: number) => void,
): Promise<Int32Array> {
  const g = pipe.tokenizer.grid;
  const { maskId } = pipe.transformer;
  const size = { cols: g, rows: g };
  const steps = o.steps ?? DEFAULT_STEPS;
  const tokens = placeInGrid(source, layout, maskId);
  const seeds = new Rng(seed);
  const windows = outpaintWindows(layout, g);
  for (const [w, at] of windows.entries()) {
    const windowSeed = seeds.seed(); // drawn for every window, so a window's seed depends only on its index
    const crop = cropGrid(tokens, layout.grid, at, size);
    if (crop.includes(maskId)) {
      const filled = await pipe.sampleTokens(prompts, negative, windowSeed, o, (t) => onUnit(w * steps + t), crop);
      writeWindow(tokens, layout.grid, at, size, filled);
    }
    onUnit((w + 1) * steps);
  }
  return tokens;
}

/**
 * Token grids [B, cols·rows] larger than the decoder's g × g → images, decoding each window
 * (g × g, at the given token positions, together covering the grid) and blending overlaps per
 * pixel with a tent weight that is largest at a window's centre.
 */
function decodeGrid(pipe: MaskgenPipeline, tokens: Int32Array, batch: number, grid: GridSize, windows: { col: number; row: number }[]): RawImage<Float32Array>[] {
  const g = pipe.tokenizer.grid;
  const { patchSize: p, channels: C } = pipe.tokenizer.config;
  if (grid.cols === g && grid.rows === g) return pipe.decodeTokens(tokens, batch);
  const S = g * p;
  const W = grid.cols * p;
  const H = grid.rows * p;
  const tent = Float32Array.from({ length: S }, (_, u) => Math.min(u + 0.5, S - u - 0.5));
  const acc = Array.from({ length: batch }, () => new Float32Array(W * H * C));
  const weight = new Float32Array(W * H);
  for (const at of windows) {
    const parts = pipe.decodeTokens(cropGrid(tokens, grid, at, { cols: g, rows: g }), batch);
    const x0 = at.col * p;
    const y0 = at.row * p;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const w = tent[y]! * tent[x]!;
        const q = (y0 + y) * W + x0 + x;
        weight[q] += w;
        for (let b = 0; b < batch; b++) {
          const src = parts[b]!.data;
          const dst = acc[b]!;
          for (let c = 0; c < C; c++) dst[q * C + c] += w * src[(y * S + x) * C + c]!;
        }
      }
    }
  }
  for (let q = 0; q < W * H; q++) {
    if (weight[q] === 0) throw new Error(`decodeGrid: pixel ${q % W},${Math.floor(q / W)} is in no window`);
    for (const a of acc) for (let c = 0; c < C; c++) a[q * C + c]! /= weight[q]!;
  }
  return acc.map((data) => ({ data, width: W, height: H, channels: C }));
}

/**
 * Outpainting's windows: the top-left token positions of the g × g windows (g = `size`, the
 * model's grid) that together cover `layout.grid`, in the order they are filled. Along each axis
 * the windows start at the original's position and slide outward by `stride` (default ⌊g/2⌋, so
 * each overlaps the previous one by at least half) to 0 and to the grid's size − g; the 2-D windows
 * are every pair, ordered by ring (the larger of the two axes' slide counts), then by total slides,
 * then row, then column. The first is the original's own window.
 */
export function outpaintWindows(layout: OutpaintLayout, size: number, stride = Math.max(1, Math.floor(size / 2))): { col: number; row: number }[] {
  const { grid, oldGrid, offset } = layout;
  if (oldGrid.cols !== size || oldGrid.rows !== size) throw new UserError(`outpainting: the image's ${oldGrid.cols}×${oldGrid.rows} grid is not the model's ${size}×${size}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > size) throw new UserError(`outpainting: window stride must be a whole number in [1, ${size}], got ${stride}`);
  const axis = (len: number, startAt: number) => {
    const out = [{ pos: startAt, k: 0 }];
    for (let pos = startAt, k = 1; pos > 0; k++) out.push({ pos: (pos = Math.max(0, pos - stride)), k });
    for (let pos = startAt, k = 1; pos < len - size; k++) out.push({ pos: (pos = Math.min(len - size, pos + stride)), k });
    return out;
  };
  const cols = axis(grid.cols, offset.col);
  const rows = axis(grid.rows, offset.row);
  return rows
    .flatMap((r) => cols.map((c) => ({ col: c.pos, row: r.pos, ring: Math.max(c.k, r.k), total: c.k + r.k })))
    .sort((a, b) => a.ring - b.ring || a.total - b.total || a.row - b.row || a.col - b.col)
    .map(({ col, row }) => ({ col, row }));
}

/** Writes windows [B, size] back into grids [B, grid] at `at` (the inverse of cropGrid), in place. */
function writeWindow(tokens: Int32Array, grid: GridSize, at: { col: number; row: number }, size: GridSize, window: Int32Array): void {
  const n = grid.cols * grid.rows;
  const m = size.cols * size.rows;
  for (let b = 0; b < tokens.length / n; b++) {
    for (let r = 0; r < size.rows; r++) {
      tokens.set(window.subarray(b * m + r * size.cols, b * m + (r + 1) * size.cols), b * n + (r + at.row) * grid.cols + at.col);
    }
  }
}

/** B copies of a token grid, one after the other. */
function repeat(tokens: Int32Array, copies: number): Int32Array {
  const out = new Int32Array(tokens.length * copies);
  for (let b = 0; b < copies; b++) out.set(tokens, b * tokens.length);
  return out;
}

/** The original image on outpainting's larger canvas, at its pixel offset (0 elsewhere). */
function placePixels(image: RawImage<Float32Array>, layout: OutpaintLayout): RawImage<Float32Array> {
  const { width: W, height: H } = layout;
  const { x: x0, y: y0 } = layout.pixelOffset;
  const C = image.channels;
  const data = new Float32Array(W * H * C);
  for (let y = 0; y < image.height; y++) data.set(image.data.subarray(y * image.width * C, (y + 1) * image.width * C), ((y + y0) * W + x0) * C);
  return { data, width: W, height: H, channels: C };
}

/** alpha · generated + (1 − alpha) · original, per pixel. */
function composite(generated: RawImage<Float32Array>, original: RawImage<Float32Array>, alpha: Float32Array): RawImage<Float32Array> {
  const C = generated.channels;
  const data = new Float32Array(generated.data.length);
  for (let q = 0; q < alpha.length; q++) {
    const a = alpha[q]!;
    for (let c = 0; c < C; c++) {
      const i = q * C + c;
      data[i] = a === 1 ? generated.data[i]! : a === 0 ? original.data[i]! : a * generated.data[i]! + (1 - a) * original.data[i]!;
    }
  }
  return { ...generated, data };
}

/** The edit's input (uint8, the model's size) on the result's canvas: grey where outpainting added pixels. */
export function beforeOnCanvas(image: RawImage, layout?: OutpaintLayout): RawImage<Float32Array> {
  const { width: S, channels } = image;
  const before: RawImage<Float32Array> = { ...image, data: Float32Array.from(image.data, (v) => v / 255) };
  if (!layout) return before;
  const { width: W, height: H, pixelOffset } = layout;
  const data = new Float32Array(W * H * channels).fill(0.5);
  for (let y = 0; y < image.height; y++) data.set(before.data.subarray(y * S * channels, (y + 1) * S * channels), ((y + pixelOffset.y) * W + pixelOffset.x) * channels);
  return { data, width: W, height: H, channels };
}
