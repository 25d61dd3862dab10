/**
 * Variations from an image (image prompts): new images like a given one. The image is tokenized,
 * each variation re-masks its own seeded random share `strength` of the tokens
 * (`variationPositions`) and parallel decoding fills them again with the image's caption (or any
 * prompt; '' = unconditional), entering generation's cosine schedule where that share is masked
 * (`variationSchedule`). Exposed as `MaskgenPipeline.variations`.
 */
import type { RawImage } from '../data/images.js';
import { DEFAULT_STEPS, DEFAULT_VARIATION_STRENGTH, remaskCopies, variationPositions, variationSchedule } from '../decoding/index.js';
import { batchSettings, tokenizerImage } from './inputs.js';
import type { GenerateOptions, MaskgenPipeline } from '../pipeline.js';

export interface VariationsOptions extends Omit<GenerateOptions, 'prompts' | 'refine' | 'preview'> {
  /** The source image, HWC, uint8 0–255 or float in [0, 1], at the tokenizer's size and channels. */
  image: RawImage<Uint8Array | Float32Array>;
  /** What the variations show: the image's caption, or another prompt; '' or absent = unconditional. */
  prompt?: string;
  /** Share of the tokens each variation re-masks, in (0, 1] (default 0.5). */
  strength?: number;
  /** Steps of the full generation whose schedule the variations enter (default 12); they take `VariationsResult.steps` of them. */
  steps?: number;
}

export interface Variation {
  index: number;
  /** The seed of its batch's decoding (batch i starts at variation i · batchSize, seeded seed + that, as `generate` does); the re-masked positions depend on `seed` and `index` only. */
  seed: number;
  image: RawImage<Float32Array>;
  tokens: Int32Array;
  /** Positions re-masked, sorted. */
  remasked: number[];
  /** Positions whose token differs from the source's, sorted. */
  changed: number[];
}

export interface VariationsResult {
  prompt: string;
  strength: number;
  /** Decoding steps each variation took. */
  steps: number;
  sourceTokens: Int32Array;
  /** The source through the tokenizer and back (what a strength → 0 variation would look like). */
  reconstruction: RawImage<Float32Array>;
  images: Variation[];
}

/** `n` variations of one image; the same options and seed give the same variations. */
export async function makeVariations(pipe: MaskgenPipeline, options: VariationsOptions): Promise<VariationsResult> {
  const o = pipe.samplingOf(options);
  const source = tokenizerImage(pipe, o.image, 'the source image');
  const { n, seed, batchSize } = batchSettings(o);
  const strength = o.strength ?? DEFAULT_VARIATION_STRENGTH;
  const N = pipe.transformer.tokens;
  const plan = variationSchedule(N, strength, o.steps ?? DEFAULT_STEPS);
  const prompt = (o.prompt ?? '').trim();
  const negative = o.negativePrompt ?? '';
  await pipe.text.prepare?.([prompt, negative]);

  const sourceTokens = pipe.encodeImage(source);
  const [reconstruction] = pipe.decodeTokens(sourceTokens, 1);
  const images: Variation[] = [];
  const total = n * plan.steps;
  for (let start = 0; start < n; start += batchSize) {
    const B = Math.min(batchSize, n - start);
    const positions = Array.from({ length: B }, (_, b) => variationPositions(N, plan.masked, seed, start + b));
    const batchSeed = seed + start;
    const tokens = await pipe.sampleTokens(
      Array.from({ length: B }, () => prompt),
      negative,
      batchSeed,
      { ...o, steps: plan.steps },
      (t) => o.onStep?.(start * plan.steps + B * t, total),
      remaskCopies(sourceTokens, positions, pipe.transformer.maskId),
    );
    const decoded = pipe.decodeTokens(tokens, B);
    for (let b = 0; b < B; b++) {
      const t = tokens.slice(b * N, (b + 1) * N);
      const changed: number[] = [];
      for (let i = 0; i < N; i++) if (t[i] !== sourceTokens[i]) changed.push(i);
      images.push({ index: start + b, seed: batchSeed, image: decoded[b]!, tokens: t, remasked: positions[b]!, changed });
    }
  }
  return { prompt, strength, steps: plan.steps, sourceTokens, reconstruction: reconstruction!, images };
}
