/**
 * The public API: load a bundle, generate images from prompts, edit images.
 *
 *   const pipe = await MaskgenPipeline.load('models/maskgen-emoji-small');
 *   const images = await pipe.generate({ prompts: ['a red heart'], n: 4, seed: 1 });
 *
 * A bundle is a folder with model_index.json and one subfolder per part (DESIGN.md).
 *
 * Editing (inpainting, outpainting, mask-free): `pipe.edit`, src/pipelines/edit.ts.
 *
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from './data/images.js';
import {
  DEFAULT_CHOICE_TEMPERATURE,
  DEFAULT_GUIDANCE,
  DEFAULT_STEPS,
  type GuidanceSchedule,
  guidedPredict,
  parallelDecode,
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
import { tensorValues } from './nn/values.js';
import { partDir, readModelIndex, resolveBundle, type SamplingDefaults } from './io/bundle.js';
import { loadCheckpoint } from './io/checkpoint.js';
import { parseConfig } from './io/config.js';
import { assignWeights } from './io/tensors.js';
import { loadTextEncoder, type TextEncoder } from './text/encoder.js';
import { TransformerConfigSchema } from './transformer/config.js';
import { logitsFunction, nextTokenFunction } from './transformer/inference.js';
import { MaskedTransformer } from './transformer/model.js';
import { TEXT_PART, TRANSFORMER_PART } from './transformer/run.js';
import { editImage, type EditOptions, type EditResult } from './pipelines/edit.js';
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

export type { EditBase, EditedImage, EditMode, EditOptions, EditResult, EditSettings, InpaintOptions, MaskFreeOptions, MaskFreeSettings, OutpaintOptions } from './pipelines/edit.js';
export { beforeOnCanvas, editSettings, maskFreeSettings, outpaintWindows } from './pipelines/edit.js';

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
  /** @internal The guided model of generation and editing (src/pipelines/ use it). */
  guidedModel(
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
  /** @internal */
  stepPreview(tokens: Int32Array, batch: number, first: number): StepPreview {
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
    const pixels = tensorValues(() => this.tokenizer.decode(tf.tensor3d(tokens, [batch, g, g], 'int32'))) as Float32Array;
    const per = size * size * channels;
    return Array.from({ length: batch }, (_, i) => ({ data: pixels.slice(i * per, (i + 1) * per), width: size, height: size, channels }));
  }

  /**
   * Edits an image toward a prompt: inpainting, outpainting or mask-free editing (src/pipelines/edit.ts).
   * The same options and seed give the same result.
   */
  edit(o: EditOptions): Promise<EditResult> {
    return editImage(this, o);
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
    return Int32Array.from(tensorValues(() => this.tokenizer.encode(tf.tensor4d(image.data, [1, size, size, channels]))));
  }

  dispose(): void {
    this.tokenizer.dispose();
    this.text.dispose();
    this.transformer.dispose();
    this.refiner?.dispose();
  }
}


