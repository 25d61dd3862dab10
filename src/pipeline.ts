/**
 * The public API: load a bundle, generate images from prompts.
 *
 *   const pipe = await MaskgenPipeline.load('models/maskgen-emoji-small');
 *   const images = await pipe.generate({ prompts: ['a red heart'], n: 4, seed: 1 });
 *
 * A bundle is a folder with model_index.json and one subfolder per part (DESIGN.md).
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from './data/images.js';
import { DEFAULT_CHOICE_TEMPERATURE, DEFAULT_STEPS, type GuidanceSchedule, guidedPredict, parallelDecode } from './decoding/index.js';
import { UserError } from './errors.js';
import { partDir, readModelIndex } from './io/bundle.js';
import { loadCheckpoint } from './io/checkpoint.js';
import { parseConfig } from './io/config.js';
import { assignWeights } from './io/tensors.js';
import { loadTextEncoder, type TextEncoder } from './text/encoder.js';
import { TransformerConfigSchema } from './transformer/config.js';
import { MaskedTransformer } from './transformer/model.js';
import { TEXT_PART, TRANSFORMER_PART } from './transformer/run.js';
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
  /** Used as the unconditional branch of guidance instead of the empty prompt. */
  negativePrompt?: string;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Choice temperature at the first step, annealed to 0 (default 4.5). */
  choiceTemperature?: number;
  seed?: number;
  /** Images decoded together (default 16). */
  batchSize?: number;
  onStep?: (done: number, total: number) => void;
}

export interface GeneratedImage {
  prompt: string;
  /** Index of the image among those of its prompt. */
  index: number;
  /** The seed that reproduces this batch, and the image's position in it. */
  seed: number;
  image: RawImage<Float32Array>;
  tokens: Int32Array;
}

export class MaskgenPipeline {
  constructor(
    readonly tokenizer: VitVqgan,
    readonly text: TextEncoder,
    readonly transformer: MaskedTransformer,
  ) {}

  static async load(bundle: string): Promise<MaskgenPipeline> {
    const index = await readModelIndex(bundle);
    for (const part of [VQGAN_PART, TEXT_PART, TRANSFORMER_PART]) partDir(bundle, part, index); // names a missing part
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
    return new MaskgenPipeline(tokenizer, text, transformer);
  }

  /** Prompts → images. The same options and seed give the same images. */
  async generate(o: GenerateOptions): Promise<GeneratedImage[]> {
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
      const tokens = await this.sampleTokens(batch.map((j) => j.prompt), negative, batchSeed, o, (t, steps) =>
        o.onStep?.(start * steps + batch.length * t, jobs.length * steps),
      );
      const images = this.decodeTokens(tokens, batch.length);
      batch.forEach((j, b) => out.push({ ...j, seed: batchSeed, image: images[b]!, tokens: tokens.slice(b * this.transformer.tokens, (b + 1) * this.transformer.tokens) }));
    }
    return out;
  }

  /** Parallel decoding with classifier-free guidance; returns token grids [B·N]. */
  async sampleTokens(
    prompts: string[],
    negative: string,
    seed: number,
    o: Omit<GenerateOptions, 'prompts'>,
    onStep?: (t: number, steps: number) => void,
    initialTokens?: Int32Array,
  ): Promise<Int32Array> {
    const b = prompts.length;
    const { tokens: n, maskId } = this.transformer;
    const k = this.transformer.config.codebookSize;
    const steps = o.steps ?? DEFAULT_STEPS;
    const scale = o.guidance ?? 3;
    // Text for both branches, encoded once: rows [cond prompts ; negative or null prompt].
    const both = this.text.encode([...prompts, ...prompts.map(() => negative)]);
    const cond = this.text.encode(prompts);
    const run = (tokens: Int32Array, text: { embeddings: tf.Tensor2D; keyBias: tf.Tensor2D }, copies: number): Float32Array =>
      tf.tidy(() => {
        const grid = tf.tensor2d(tokens, [b, n], 'int32');
        const input = copies === 1 ? grid : tf.concat([grid, grid], 0);
        return this.transformer.logits(input as tf.Tensor2D, text).dataSync() as Float32Array;
      });
    try {
      const predict = guidedPredict({
        steps,
        scale,
        schedule: o.guidanceSchedule,
        predictBoth: (tokens) => {
          const logits = run(tokens, both, 2);
          const half = b * n * k;
          return { cond: logits.subarray(0, half), uncond: logits.subarray(half) };
        },
        predictCond: (tokens) => run(tokens, cond, 1),
      });
      const result = await parallelDecode({
        batch: b,
        n,
        k,
        maskId,
        steps,
        initialTokens,
        predict,
        temperature: o.temperature ?? 1,
        choiceTemperatureStart: o.choiceTemperature ?? DEFAULT_CHOICE_TEMPERATURE,
        seed,
        onStep: (info) => onStep?.(info.step + 1, steps),
      });
      return result.tokens;
    } finally {
      tf.dispose([both.embeddings, both.keyBias, cond.embeddings, cond.keyBias]);
    }
  }

  /** Token grids [B·N] → images in [0, 1]. */
  decodeTokens(tokens: Int32Array, batch: number): RawImage<Float32Array>[] {
    const g = this.tokenizer.grid;
    const { imageSize: size, channels } = this.tokenizer.config;
    const pixels = tf.tidy(() => this.tokenizer.decode(tf.tensor3d(tokens, [batch, g, g], 'int32')).dataSync() as Float32Array);
    const per = size * size * channels;
    return Array.from({ length: batch }, (_, i) => ({ data: pixels.slice(i * per, (i + 1) * per), width: size, height: size, channels }));
  }

  dispose(): void {
    this.tokenizer.dispose();
    this.text.dispose();
    this.transformer.dispose();
  }
}
