/**
 * The public API: load a bundle, generate images from prompts, edit images.
 *
 *   const pipe = await MaskgenPipeline.load('models/maskgen-emoji-small');
 *   const images = await pipe.generate({ prompts: ['a red heart'], n: 4, seed: 1 });
 *
 * A bundle is a folder with model_index.json and one subfolder per part (DESIGN.md).
 *
 * ## Editing
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
 *     re-mask a fresh seeded random `strength` fraction (default 0.2) of the tokens and resample
 *     them with guidance (default 6, temperature 0.5) toward the prompt (`maskFreeEdit`), so the image moves toward the prompt
 *     while most of its layout stays. `stepsPerIteration` decoding steps per round (default 1).
 *
 * Every edit is deterministic by `seed` (images are made in batches of `batchSize`, batch i seeded
 * with seed + its first image's index, as `generate` does), and returns, per image, the final
 * image, the decoder's output before pasting, the token grid, the token positions the edit was
 * allowed to regenerate and those whose token actually changed.
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from './data/images.js';
import {
  boxToPixelMask,
  cropGrid,
  DEFAULT_CHOICE_TEMPERATURE,
  DEFAULT_EDIT_GUIDANCE,
  DEFAULT_EDIT_ITERATIONS,
  DEFAULT_EDIT_STRENGTH,
  DEFAULT_EDIT_TEMPERATURE,
  DEFAULT_GUIDANCE,
  DEFAULT_STEPS,
  type Extend,
  featherMask,
  type GridSize,
  type GuidanceSchedule,
  guidedPredict,
  maskFreeEdit,
  maskTokens,
  type OutpaintLayout,
  outpaintLayout,
  outpaintPositions,
  parallelDecode,
  type PixelBox,
  pixelMaskToTokens,
  placeInGrid,
  type PolishOptions,
  type PredictFn,
  DEFAULT_REGION_STRENGTH,
  regionBias,
  regionWeightAt,
  type WordRegion,
  autoregressiveDecode,
} from './decoding/index.js';
import { REFINER_PART, loadRefiner, refinerDir } from './diffusion-refiner/io.js';
import type { RefineOptions, Refiner } from './diffusion-refiner/refiner.js';
import { UserError } from './errors.js';
import { partDir, readModelIndex, resolveBundle, type SamplingDefaults } from './io/bundle.js';
import { loadCheckpoint } from './io/checkpoint.js';
import { parseConfig } from './io/config.js';
import { Rng } from './random.js';
import { assignWeights } from './io/tensors.js';
import { loadTextEncoder, type TextEncoder } from './text/encoder.js';
import { TransformerConfigSchema } from './transformer/config.js';
import { logitsFunction, nextTokenFunction } from './transformer/inference.js';
import { MaskedTransformer } from './transformer/model.js';
import { TEXT_PART, TRANSFORMER_PART } from './transformer/run.js';
import { batchSettings, tokenizerImage } from './pipelines/inputs.js';
import { makeVariations, type VariationsOptions, type VariationsResult } from './pipelines/variations.js';
import { VQGAN_PART, loadTokenizer } from './vqgan/io.js';
import type { VitVqgan } from './vqgan/model.js';

export interface GenerateOptions {
  prompts: string[];
  /** Images per prompt (default 1). */
  n?: number;
  /** Decoding steps (default 12). */
  steps?: number;
  /** Classifier-free guidance scale (default 3; 1 = none, 0 = unconditional). */
  guidance?: number;
  guidanceSchedule?: GuidanceSchedule;
  /**
   * Guidance only among the tokens the prompt alone finds plausible: at least this share as probable
   * as the most probable one (0 = off; default: the bundle's, else 0). Guidance's stray specks are
   * tokens outside that set; see `applyPlausibleGuidance`.
   */
  plausibility?: number;
  /** Used as the unconditional branch of guidance instead of the empty prompt. */
  negativePrompt?: string;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Autoregressive bundles: sample among the k most likely tokens only (default: all). */
  topK?: number;
  /** Choice temperature at the first step, annealed to 0 (default 4.5). */
  choiceTemperature?: number;
  /** After decoding, re-mask the least probable generated tokens and sample them again with the whole grid known (default off); see `PolishOptions`. */
  polish?: PolishOptions;
  seed?: number;
  /** Images decoded together (default 16). */
  batchSize?: number;
  /**
   * Paint-with-words (eDiff-I): words of the prompt placed in pixel boxes; the cross-attention
   * logits between the image tokens in a word's box and that word's text tokens get
   * `regionStrength` (default 4) added, falling with the mask ratio over the steps. Needs the
   * built-in text encoder. See src/decoding/paint-with-words.ts.
   */
  regions?: WordRegion[];
  regionStrength?: number;
  /**
   * Called after every decoding step (edits: every step or round). With `preview: true` it is also
   * given the batch as decoded so far (not for outpainting). A returned promise is awaited before
   * decoding goes on (a server can let its event loop turn there).
   */
  onStep?: (done: number, total: number, preview?: StepPreview) => void | Promise<void>;
  /** Compute a StepPreview for `onStep` at every step (one extra decoder pass a step; default false). */
  preview?: boolean;
  /**
   * Run the refiner on every image (needs a pipeline with a refiner): `true` for its defaults, or
   * its settings. The image is then the refined one and `base` the transformer's.
   */
  refine?: boolean | RefineOptions;
}

/** A batch as decoded so far, for live previews (`GenerateOptions.preview`). */
export interface StepPreview {
  /** Index of the batch's first image among all images of the call. */
  first: number;
  /** The batch's token grids after this step, row-major [B·N]; `maskId` where still masked. */
  tokens: Int32Array;
  maskId: number;
  /** The grids through the decoder, one per batch item at the base size: masked tokens painted grey (0.5). */
  images: RawImage<Float32Array>[];
}

export interface GeneratedImage {
  prompt: string;
  /** Index of the image among those of its prompt. */
  index: number;
  /** The seed that reproduces this batch, and the image's position in it. */
  seed: number;
  image: RawImage<Float32Array>;
  /** The base image before refinement (only when refined). */
  base?: RawImage<Float32Array>;
  tokens: Int32Array;
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
  /** Fraction of the tokens resampled per iteration, in (0, 1] (default 0.2). */
  strength?: number;
  /** Resampling rounds (default 10). */
  iterations?: number;
  /** Decoding steps per round (default 1). `steps` is not used by this mode. */
  stepsPerIteration?: number;
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

export type { Variation, VariationsOptions, VariationsResult } from './pipelines/variations.js';

export class MaskgenPipeline {
  constructor(
    readonly tokenizer: VitVqgan,
    readonly text: TextEncoder,
    readonly transformer: MaskedTransformer,
    /** The latent-diffusion refiner, when the bundle has one (or one was given). */
    readonly refiner?: Refiner,
    /** The bundle's decoding settings (model_index.json `sampling`): `generate` uses them where its options give none. */
    readonly sampling: SamplingDefaults = {},
  ) {}

  /**
   * Loads a bundle's parts. Its `refiner` part is loaded when present; `opts.refiner` (a bundle or
   * refiner folder) takes the refiner from elsewhere, `true` requires the bundle's, `false` skips it.
   */
  static async load(bundle: string, opts: { refiner?: string | boolean } = {}): Promise<MaskgenPipeline> {
    bundle = resolveBundle(bundle);
    const index = await readModelIndex(bundle);
    for (const part of [VQGAN_PART, TEXT_PART, TRANSFORMER_PART]) partDir(bundle, part, index); // names a missing part
    const refinerFrom =
      typeof opts.refiner === 'string' ? opts.refiner : opts.refiner === true || (opts.refiner === undefined && index.parts[REFINER_PART] !== undefined) ? bundle : undefined;
    if (refinerFrom !== undefined) await refinerDir(refinerFrom); // names a missing refiner before anything is loaded
    const tokenizer = await loadTokenizer(partDir(bundle, VQGAN_PART, index));
    const text = await loadTextEncoder(partDir(bundle, TEXT_PART, index));
    const dir = partDir(bundle, TRANSFORMER_PART, index);
    const ckpt = await loadCheckpoint(dir, { what: 'transformer' });
    const config = parseConfig(TransformerConfigSchema, ckpt.config, `${dir}/config.json`);
    if (config.codebookSize !== tokenizer.config.codebookSize || config.grid !== tokenizer.grid) {
      throw new UserError(`bundle ${bundle}: the transformer expects a ${config.grid}² grid of ${config.codebookSize} codes, the tokenizer makes ${tokenizer.grid}² of ${tokenizer.config.codebookSize}`);
    }
    const transformer = new MaskedTransformer(config);
    assignWeights(transformer.variables(), ckpt.weights, `transformer ${dir}`);
    const refiner = refinerFrom === undefined ? undefined : await loadRefiner(refinerFrom);
    if (refiner && (refiner.lowSize !== tokenizer.config.imageSize || refiner.config.channels !== tokenizer.config.channels)) {
      const r = refiner;
      refiner.dispose();
      throw new UserError(
        `the refiner takes ${r.lowSize}×${r.lowSize}×${r.config.channels} images but the bundle's tokenizer makes ${tokenizer.config.imageSize}×${tokenizer.config.imageSize}×${tokenizer.config.channels}`,
      );
    }
    return new MaskgenPipeline(tokenizer, text, transformer, refiner, index.sampling ?? {});
  }

  /**
   * Refines images (float HWC in [0, 1], at the refiner's input size) toward their prompts: each
   * comes back `factor` times larger. Deterministic by `o.seed` (image i uses seed + i).
   */
  async refine(images: RawImage<Float32Array | Uint8Array>[], prompts: string[], o: RefineOptions = {}): Promise<RawImage<Float32Array>[]> {
    const r = this.refiner;
    if (!r) throw new UserError('this bundle has no refiner part (train one with `maskgen train-refiner`, or pass a refiner)');
    return r.refineImages(images, prompts, o);
  }

  /** `o` with the bundle's sampling settings where it gives none. */
  samplingOf<T extends Omit<GenerateOptions, 'prompts'>>(o: T): T {
    const out = { ...o };
    for (const [key, value] of Object.entries(this.sampling)) if (out[key as keyof T] === undefined) (out as Record<string, unknown>)[key] = value;
    return out;
  }

  /** Prompts → images. The same options and seed give the same images. Settings not given come from the bundle (`sampling`), then the defaults. */
  async generate(options: GenerateOptions): Promise<GeneratedImage[]> {
    const o = this.samplingOf(options);
    if (o.prompts.length === 0) throw new UserError('give at least one prompt');
    for (const p of o.prompts) if (p.trim() === '') throw new UserError('a prompt is empty');
    const n = o.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new UserError(`n must be a whole number ≥ 1, got ${n}`);
    const seed = o.seed ?? 0;
    const batchSize = o.batchSize ?? 16;
    const jobs = o.prompts.flatMap((prompt) => Array.from({ length: n }, (_, index) => ({ prompt, index })));
    const negative = o.negativePrompt ?? '';
    await this.text.prepare?.([...new Set(o.prompts), negative]);
    const out: GeneratedImage[] = [];
    for (let start = 0; start < jobs.length; start += batchSize) {
      const batch = jobs.slice(start, start + batchSize);
      // Each batch has its own seed so that image i does not depend on how many come after it.
      const batchSeed = seed + start;
      const tokens = await this.sampleTokens(batch.map((j) => j.prompt), negative, batchSeed, o, (t, steps, grids) =>
        o.onStep?.(start * steps + batch.length * t, jobs.length * steps, o.preview ? this.stepPreview(grids, batch.length, start) : undefined),
      );
      const images = this.decodeTokens(tokens, batch.length);
      const refineOpts = o.refine === true ? {} : o.refine;
      const refined = refineOpts ? await this.refine(images, batch.map((j) => j.prompt), { ...refineOpts, seed: refineOpts.seed ?? batchSeed }) : undefined;
      batch.forEach((j, b) =>
        out.push({
          ...j,
          seed: batchSeed,
          image: refined ? refined[b]! : images[b]!,
          ...(refined ? { base: images[b]! } : {}),
          tokens: tokens.slice(b * this.transformer.tokens, (b + 1) * this.transformer.tokens),
        }),
      );
    }
    return out;
  }

  /**
   * Parallel decoding with classifier-free guidance; returns token grids [B·N]. An autoregressive
   * bundle decodes token by token instead (N steps; `steps` and the choice temperature unused, `topK` used).
   */
  async sampleTokens(
    prompts: string[],
    negative: string,
    seed: number,
    o: Omit<GenerateOptions, 'prompts'>,
    onStep?: (t: number, steps: number, tokens: Int32Array) => void | Promise<void>,
    initialTokens?: Int32Array,
  ): Promise<Int32Array> {
    const b = prompts.length;
    const { tokens: n, maskId } = this.transformer;
    const k = this.transformer.config.codebookSize;
    if (this.transformer.config.objective === 'autoregressive') {
      if (initialTokens) throw new UserError('this bundle is autoregressive: it generates from prompts only (no editing or variations)');
      const model = this.guidedModel(prompts, negative, o, n);
      try {
        const result = await autoregressiveDecode({ batch: b, n, k, bos: maskId, predict: model.predict, temperature: o.temperature ?? 1, topK: o.topK, seed, onStep: (info) => onStep?.(info.step + 1, n, info.tokens) });
        return result.tokens;
      } finally {
        model.dispose();
      }
    }
    const steps = o.steps ?? DEFAULT_STEPS;
    const model = this.guidedModel(prompts, negative, o, steps);
    try {
      const result = await parallelDecode({
        batch: b,
        n,
        k,
        maskId,
        steps,
        initialTokens,
        predict: model.predict,
        temperature: o.temperature ?? 1,
        choiceTemperatureStart: o.choiceTemperature ?? DEFAULT_CHOICE_TEMPERATURE,
        seed,
        onStep: (info) => onStep?.(info.step + 1, steps, info.tokens),
        polish: o.polish,
      });
      return result.tokens;
    } finally {
      model.dispose();
    }
  }

  /**
   * The transformer as a guided `predict` for `prompts` (token grids [B·N] → logits [B·N·K]), with
   * `negative` (or the empty prompt) as the unconditional branch, guided over `steps` decoding
   * steps. `dispose()` frees the text encodings.
   */
  private guidedModel(
    prompts: string[],
    negative: string,
    o: Pick<GenerateOptions, 'guidance' | 'guidanceSchedule' | 'plausibility' | 'regions' | 'regionStrength'>,
    steps: number,
  ): { predict: PredictFn; dispose: () => void } {
    const b = prompts.length;
    const n = this.transformer.tokens;
    const k = this.transformer.config.codebookSize;
    const scale = o.guidance ?? DEFAULT_GUIDANCE;
    // autoregressive: one position a step (a key/value cache), the step's input tokens [B] → logits [B·K]
    const autoregressive = this.transformer.config.objective === 'autoregressive';
    if (autoregressive && o.regions?.length) throw new UserError('paint-with-words (--region) needs a masked bundle; this one is autoregressive');
    // Text for both branches, encoded once: rows [cond prompts ; negative or null prompt].
    const both = this.text.encode([...prompts, ...prompts.map(() => negative)]);
    const cond = this.text.encode(prompts);
    const dispose = () => tf.dispose([both.embeddings, both.keyBias, cond.embeddings, cond.keyBias]);
    try {
      const twice = new Int32Array(2 * b * (autoregressive ? 1 : n));
      // Paint-with-words: the conditional rows' cross-attention bias at step t (none on the unconditional ones).
      const painted = o.regions?.length ? this.paintBias(prompts, o.regions, both.length) : undefined;
      const strength = o.regionStrength ?? DEFAULT_REGION_STRENGTH;
      const biasBoth = painted && new Float32Array(2 * painted.length);
      const biasCond = painted && new Float32Array(painted.length);
      const biasAt = (step: number, out: Float32Array | undefined) => {
        if (!painted || !out) return undefined;
        const w = regionWeightAt(step, steps, strength);
        for (let i = 0; i < painted.length; i++) out[i] = w * painted[i]!;
        return out;
      };
      let modelBoth: (tokens: Int32Array, step: number) => Float32Array;
      let modelCond: (tokens: Int32Array, step: number) => Float32Array;
      if (autoregressive) {
        modelBoth = nextTokenFunction(this.transformer, both, 2 * b);
        modelCond = nextTokenFunction(this.transformer, cond, b);
      } else {
        const logitsBoth = logitsFunction(this.transformer, both, 2 * b);
        const logitsCond = logitsFunction(this.transformer, cond, b);
        modelBoth = (tokens, step) => logitsBoth(tokens, biasAt(step, biasBoth));
        modelCond = (tokens, step) => logitsCond(tokens, biasAt(step, biasCond));
      }
      const predict = guidedPredict({
        steps,
        scale,
        schedule: o.guidanceSchedule,
        plausibility: o.plausibility,
        vocab: k,
        predictBoth: (tokens, step) => {
          twice.set(tokens);
          twice.set(tokens, tokens.length);
          const logits = modelBoth(twice, step);
          const half = logits.length / 2;
          return { cond: logits.subarray(0, half), uncond: logits.subarray(half) };
        },
        // an autoregressive step extends its branch's cache, so every step must run the same branches
        predictCond: autoregressive && scale !== 1 ? undefined : modelCond,
      });
      return { predict, dispose };
    } catch (err) {
      dispose();
      throw err;
    }
  }

  /** Paint-with-words: each prompt's region bias at weight 1 (`regionBias`), one after the other: [B·N·L]. */
  private paintBias(prompts: string[], regions: readonly WordRegion[], textLength: number): Float32Array {
    if (this.text.kind !== 'builtin') throw new UserError('paint-with-words (--region) needs a bundle with the built-in text encoder (its words are its tokens)');
    const { imageSize: size, patchSize: patch } = this.tokenizer.config;
    const per = this.transformer.tokens * textLength;
    const out = new Float32Array(prompts.length * per);
    prompts.forEach((prompt, i) => out.set(regionBias({ prompt, regions, image: { width: size, height: size, patch }, textLength }), i * per));
    return out;
  }

  /** Partly decoded grids [B·N] → a StepPreview: decoded with [MASK] as code 0, masked patches then painted grey. */
  private stepPreview(tokens: Int32Array, batch: number, first: number): StepPreview {
    const { maskId } = this.transformer;
    const g = this.tokenizer.grid;
    const { patchSize: p, channels: C, imageSize: size } = this.tokenizer.config;
    const images = this.decodeTokens(tokens.map((t) => (t === maskId ? 0 : t)), batch);
    images.forEach((im, b) => {
      for (let i = 0; i < g * g; i++) {
        if (tokens[b * g * g + i] !== maskId) continue;
        const x0 = (i % g) * p;
        const y0 = Math.floor(i / g) * p;
        for (let y = y0; y < y0 + p; y++) im.data.fill(0.5, (y * size + x0) * C, (y * size + x0 + p) * C);
      }
    });
    return { first, tokens, maskId, images };
  }

  /** Token grids [B·N] → images in [0, 1]. */
  decodeTokens(tokens: Int32Array, batch: number): RawImage<Float32Array>[] {
    const g = this.tokenizer.grid;
    const { imageSize: size, channels } = this.tokenizer.config;
    const pixels = tf.tidy(() => this.tokenizer.decode(tf.tensor3d(tokens, [batch, g, g], 'int32')).dataSync() as Float32Array);
    const per = size * size * channels;
    return Array.from({ length: batch }, (_, i) => ({ data: pixels.slice(i * per, (i + 1) * per), width: size, height: size, channels }));
  }

  /**
   * Edits an image toward a prompt: inpainting, outpainting or mask-free editing (see the top of
   * this file). The same options and seed give the same result.
   */
  async edit(o: EditOptions): Promise<EditResult> {
    const { imageSize: size, channels, patchSize: patch } = this.tokenizer.config;
    const original = tokenizerImage(this, o.image, 'the image to edit');
    if (o.prompt.trim() === '') throw new UserError('the prompt is empty');
    const { n, seed, batchSize } = batchSettings(o);
    const feather = (o.mode === 'inpaint' || o.mode === 'outpaint') && o.feather !== undefined ? o.feather : Math.max(1, Math.round(patch / 2));
    if (!Number.isInteger(feather) || feather < 0) throw new UserError(`feather must be a whole number of pixels ≥ 0, got ${feather}`);

    const g = this.tokenizer.grid;
    const N = g * g;
    const sourceTokens = this.encodeImage(original);
    const sourceGrid = { cols: g, rows: g };
    const negative = o.negativePrompt ?? '';
    await this.text.prepare?.([o.prompt, negative]);

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
      perBatch = o.steps ?? DEFAULT_STEPS;
    } else if (o.mode === 'outpaint') {
      layout = outpaintLayout({ width: size, height: size, patch }, o.extend);
      grid = layout.grid;
      regenerated = outpaintPositions(layout);
      pixelMask = new Uint8Array(layout.width * layout.height).fill(1);
      for (let y = 0; y < size; y++) pixelMask.fill(0, (y + layout.pixelOffset.y) * layout.width + layout.pixelOffset.x, (y + layout.pixelOffset.y) * layout.width + layout.pixelOffset.x + size);
      perBatch = outpaintWindows(layout, g).length * (o.steps ?? DEFAULT_STEPS);
    } else if (o.mode === 'mask-free') {
      perBatch = o.iterations ?? DEFAULT_EDIT_ITERATIONS;
    } else {
      throw new UserError(`unknown edit mode '${String((o as { mode: unknown }).mode)}' (inpaint, outpaint or mask-free)`);
    }
    const width = grid.cols * patch;
    const height = grid.rows * patch;
    const alpha = pixelMask && o.mode !== 'mask-free' && o.paste !== false ? featherMask(pixelMask, width, height, feather) : undefined;
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
        tokens = await this.sampleTokens(
          prompts,
          negative,
          batchSeed,
          o,
          (t, _steps, grids) => o.onStep?.(done0 + t, totalUnits, o.preview ? this.stepPreview(grids, B, start) : undefined),
          maskTokens(source, regenerated, this.transformer.maskId, N),
        );
      } else if (o.mode === 'outpaint') {
        tokens = await this.fillOutpaint(source, B, layout!, prompts, negative, batchSeed, o, (u) => o.onStep?.(done0 + u, totalUnits));
      } else {
        const steps = o.stepsPerIteration ?? 1;
        const model = this.guidedModel(prompts, negative, { ...o, guidance: o.guidance ?? DEFAULT_EDIT_GUIDANCE }, steps);
        resampled = Array.from({ length: B }, () => new Set<number>());
        try {
          const res = await maskFreeEdit({
            tokens: source,
            batch: B,
            n: N,
            k: this.transformer.config.codebookSize,
            maskId: this.transformer.maskId,
            predict: model.predict,
            iterations: o.iterations,
            strength: o.strength ?? DEFAULT_EDIT_STRENGTH,
            stepsPerIteration: steps,
            temperature: o.temperature ?? DEFAULT_EDIT_TEMPERATURE,
            choiceTemperatureStart: o.choiceTemperature ?? DEFAULT_CHOICE_TEMPERATURE,
            seed: batchSeed,
            onIteration: ({ iteration, resampled: chosen, tokens: grids }) => {
              chosen.forEach((positions, b) => positions.forEach((i) => resampled![b]!.add(i)));
              return o.onStep?.(done0 + iteration + 1, totalUnits, o.preview ? this.stepPreview(grids, B, start) : undefined);
            },
          });
          tokens = res.tokens;
        } finally {
          model.dispose();
        }
      }
      const decoded = layout ? this.decodeGrid(tokens, B, layout.grid, outpaintWindows(layout, g)) : this.decodeTokens(tokens, B);
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
    return { mode: o.mode, prompt: o.prompt, sourceTokens, sourceGrid, grid, width, height, pixelMask, layout, images };
  }

  /**
   * Variations of one image (image prompts): each re-masks its own seeded random `strength` share
   * of the image's tokens and fills them again toward `prompt` (the image's caption, another
   * prompt, or '' for none); see src/pipelines/variations.ts.
   */
  variations(o: VariationsOptions): Promise<VariationsResult> {
    return makeVariations(this, o);
  }

  /** An image (HWC in [0, 1], the tokenizer's size) → its token grid [g·g]. */
  encodeImage(image: RawImage<Float32Array>): Int32Array {
    const { imageSize: size, channels } = this.tokenizer.config;
    return Int32Array.from(tf.tidy(() => this.tokenizer.encode(tf.tensor4d(image.data, [1, size, size, channels])).dataSync() as Int32Array));
  }

  /**
   * Outpainting's token filling: the source grids [B, g·g] placed in the larger grid, then one
   * parallel decoding per g × g window of `outpaintWindows`, each seeded from `seed` and the
   * window's index. Returns the filled grids [B, cols·rows].
   */
  private async fillOutpaint(
    source: Int32Array,
    B: number,
    layout: OutpaintLayout,
    prompts: string[],
    negative: string,
    seed: number,
    o: Omit<GenerateOptions, 'prompts'>,
    onUnit: (done: number) => void,
  ): Promise<Int32Array> {
    const g = this.tokenizer.grid;
    const { maskId } = this.transformer;
    const size = { cols: g, rows: g };
    const steps = o.steps ?? DEFAULT_STEPS;
    const tokens = placeInGrid(source, layout, maskId);
    const seeds = new Rng(seed);
    const windows = outpaintWindows(layout, g);
    for (const [w, at] of windows.entries()) {
      const windowSeed = seeds.seed(); // drawn for every window, so a window's seed depends only on its index
      const crop = cropGrid(tokens, layout.grid, at, size);
      if (crop.includes(maskId)) {
        const filled = await this.sampleTokens(prompts, negative, windowSeed, o, (t) => onUnit(w * steps + t), crop);
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
  decodeGrid(tokens: Int32Array, batch: number, grid: GridSize, windows: { col: number; row: number }[]): RawImage<Float32Array>[] {
    const g = this.tokenizer.grid;
    const { patchSize: p, channels: C } = this.tokenizer.config;
    if (grid.cols === g && grid.rows === g) return this.decodeTokens(tokens, batch);
    const S = g * p;
    const W = grid.cols * p;
    const H = grid.rows * p;
    const tent = Float32Array.from({ length: S }, (_, u) => Math.min(u + 0.5, S - u - 0.5));
    const acc = Array.from({ length: batch }, () => new Float32Array(W * H * C));
    const weight = new Float32Array(W * H);
    for (const at of windows) {
      const parts = this.decodeTokens(cropGrid(tokens, grid, at, { cols: g, rows: g }), batch);
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

  dispose(): void {
    this.tokenizer.dispose();
    this.text.dispose();
    this.transformer.dispose();
    this.refiner?.dispose();
  }
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
