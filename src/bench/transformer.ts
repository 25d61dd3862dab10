/**
 * `maskgen bench train-transformer` and `bench generate`: the masked transformer's training and
 * generation speed on this backend, at any configuration — by default the PyTorch peer's (width
 * 256, 6 layers, 4 heads, 64 image tokens, 16 text tokens, codebook 512, batch 32; one image with 12
 * steps and classifier-free guidance). Text embeddings are a fixed random context, as in the peer.
 * `benchGenerateBundle` times a bundle's own transformer and text encoder instead, masked or
 * autoregressive, through `MaskgenPipeline.sampleTokens` (what `maskgen generate` runs).
 */
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_CHOICE_TEMPERATURE, guidedPredict, parallelDecode } from '../decoding/index.js';
import { blockFlops } from '../vqgan/flops.js';
import type { TextEncoder, TextEncoding } from '../text/encoder.js';
import { TransformerTrainSchema, type TransformerConfig } from '../transformer/config.js';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { BACKEND_NAME } from '../backend/onnx/index.js';
import { gflopsOf, SGEMM_SHAPES, sgemmProbe } from './sgemm.js';
import { logitsFunction } from '../transformer/inference.js';
import { MaskedTransformer } from '../transformer/model.js';
import { TransformerTrainer } from '../transformer/trainer.js';
import type { MaskgenPipeline } from '../pipeline.js';
import { median, timeInterleavedStats, timeMedian } from './timing.js';

export const PEER_CONFIG: TransformerConfig = { codebookSize: 512, grid: 8, width: 256, depth: 6, heads: 4, mlpRatio: 4, textDim: 256 };

/** A frozen text encoder that returns the same random context for every prompt. */
export class FixedText implements TextEncoder {
  readonly kind = 'pretrained' as const;
  readonly trainable = false;
  private readonly row: tf.Tensor2D;

  constructor(readonly dim: number, readonly maxLength: number) {
    this.row = tf.randomNormal([maxLength, dim], 0, 1, 'float32', 7);
  }

  encode(prompts: string[]): TextEncoding {
    const b = prompts.length;
    return tf.tidy(() => ({
      embeddings: tf.tile(this.row, [b, 1]) as tf.Tensor2D,
      keyBias: tf.zeros([b, this.maxLength]) as tf.Tensor2D,
      batch: b,
      length: this.maxLength,
    }));
  }

  variables(): Record<string, tf.Variable> {
    return {};
  }

  async save(): Promise<void> {}

  dispose(): void {
    this.row.dispose();
  }
}

/** Forward FLOPs of the transformer for one image (matMuls, attention, cross-attention, head). */
export function transformerFlops(c: TransformerConfig, textLength: number): number {
  const n = c.grid * c.grid;
  const cross = 2 * n * c.width * c.width * 2 + 2 * textLength * c.textDim * 2 * c.width + 2 * 2 * n * textLength * c.width;
  return c.depth * (blockFlops(n, c.width, c.mlpRatio) + cross) + 2 * n * c.width * c.codebookSize;
}

export interface TrainTransformerBench {
  backend: string;
  /** Whether each step's gradients came from one compiled ONNX Runtime session (the onnx backend) or tfjs autograd. */
  compiled: boolean;
  config: TransformerConfig;
  batchSize: number;
  textTokens: number;
  msPerStep: number;
  tokensPerSec: number;
  gflops: number;
  /**
   * On onnx: the machine's sgemm limit (sgemm.ts: in each round the faster of two back-to-back
   * MatMul probes timed between the steps; the median over rounds), and the step's share of it: the
   * median over the rounds of the step's GFLOP/s over that round's limit, since this host's
   * throughput wanders within seconds. `sgemmBestGflops` is the fastest round's limit, and
   * `ofSgemmBest` the step's median GFLOP/s over it: a lower bound of the share that a round whose
   * probes met a slow spell of the host cannot inflate (that round's `ofSgemm` can pass 1).
   */
  sgemmGflops?: number;
  sgemmBestGflops?: number;
  ofSgemm?: number;
  ofSgemmBest?: number;
}

export async function benchTrainTransformer(config: TransformerConfig, batchSize: number, textTokens: number, runs = 5, compiled = compiledByDefault()): Promise<TrainTransformerBench> {
  const model = new MaskedTransformer(config, 0);
  const text = new FixedText(config.textDim, textTokens);
  const trainer = new TransformerTrainer(model, text, TransformerTrainSchema.parse({ batchSize, steps: 1000, warmup: 10 }), { compiled });
  const n = model.tokens;
  const tokens = Int32Array.from({ length: batchSize * n }, (_, i) => (i * 7919) % config.codebookSize);
  const captions = Array.from({ length: batchSize }, (_, i) => `caption ${i}`);
  const step = () => void trainer.trainStep(tokens, captions);
  const probes = tf.getBackend() === BACKEND_NAME ? SGEMM_SHAPES.map((shape) => sgemmProbe(shape)) : undefined;
  let ms: number;
  const stepFlop = 3 * transformerFlops(config, textTokens) * batchSize;
  let sgemm: { gflops: number; best: number; share: number } | undefined;
  if (probes) {
    const fns: Record<string, () => void> = { step, ...Object.fromEntries(probes.map((p, j) => [`probe${j}`, p.run])) };
    const t = await timeInterleavedStats(fns, runs, 2, 1);
    ms = t.step!.median;
    // each round's limit: the faster probe of that round
    const limits = t.step!.times.map((_, i) => Math.max(...probes.map((p, j) => gflopsOf(p.flop, t[`probe${j}`]!.times[i]!))));
    sgemm = {
      gflops: median(limits),
      best: Math.max(...limits),
      share: median(t.step!.times.map((stepMs, i) => gflopsOf(stepFlop, stepMs) / limits[i]!)),
    };
  } else ms = await timeMedian(step, runs, 2);
  trainer.dispose();
  model.dispose();
  text.dispose();
  const gflops = gflopsOf(stepFlop, ms);
  return {
    backend: tf.getBackend(),
    compiled,
    config,
    batchSize,
    textTokens,
    msPerStep: ms,
    tokensPerSec: (batchSize * n * 1000) / ms,
    gflops,
    ...(sgemm === undefined ? {} : { sgemmGflops: sgemm.gflops, sgemmBestGflops: sgemm.best, ofSgemm: sgemm.share, ofSgemmBest: gflops / sgemm.best }),
  };
}

export interface GenerateBench {
  backend: string;
  /** Parallel decoding of a masked model, or token by token (an autoregressive bundle: `steps` = N, with the key/value cache when compiled). */
  decoding: 'parallel' | 'autoregressive';
  /** Whether the model ran as one compiled ONNX Runtime session per step (the onnx backend) or as tfjs kernels. */
  compiled: boolean;
  config: TransformerConfig;
  images: number;
  steps: number;
  guidance: number;
  msPerImage: number;
  msPerStep: number;
  imagesPerSec: number;
  gflops: number;
}

/**
 * Generation of `images` images together (token sampling included, pixel decoding not), through the
 * same model call as `maskgen generate` (on onnx: the compiled forward pass, compiled in the warm-up run).
 */
export async function benchGenerate(config: TransformerConfig, images: number, steps: number, textTokens: number, runs = 5, compiled = compiledByDefault(), guidance = 3): Promise<GenerateBench> {
  const model = new MaskedTransformer(config, 0);
  const text = new FixedText(config.textDim, textTokens);
  const both = text.encode(Array.from({ length: 2 * images }, () => ''));
  const n = model.tokens;
  const k = config.codebookSize;
  const logits = logitsFunction(model, both, 2 * images, { compiled });
  const twice = new Int32Array(2 * images * n);
  const generateOnce = async () => {
    const predict = guidedPredict({
      steps,
      scale: guidance,
      predictBoth: (tokens) => {
        twice.set(tokens);
        twice.set(tokens, images * n);
        const out = logits(twice);
        return { cond: out.subarray(0, images * n * k), uncond: out.subarray(images * n * k) };
      },
    });
    await parallelDecode({ batch: images, n, k, maskId: model.maskId, steps, predict, seed: 1, choiceTemperatureStart: DEFAULT_CHOICE_TEMPERATURE });
  };
  const ms = await timeMedian(generateOnce, runs, 1);
  tf.dispose([both.embeddings, both.keyBias]);
  model.dispose();
  text.dispose();
  return {
    backend: tf.getBackend(),
    decoding: 'parallel',
    compiled,
    config,
    images,
    steps,
    guidance,
    msPerImage: ms / images,
    msPerStep: ms / steps,
    imagesPerSec: (images * 1000) / ms,
    gflops: (transformerFlops(config, textTokens) * 2 * images * steps) / (ms * 1e6),
  };
}

/**
 * `images` images of `prompt` generated together by a bundle's transformer (its text encoder's
 * encoding included, pixel decoding not), with `guidance` and the bundle's sampling settings, as
 * `maskgen generate` makes them: `steps` parallel steps for a masked bundle, N token-by-token steps
 * for an autoregressive one. GFLOP/s counts a masked step as one full forward pass of each branch
 * and an autoregressive image as one (its key/value cache computes each position once).
 */
export async function benchGenerateBundle(
  pipe: MaskgenPipeline,
  o: { images: number; steps: number; guidance: number; prompt: string; runs: number },
): Promise<GenerateBench> {
  const config = pipe.transformer.config;
  const autoregressive = config.objective === 'autoregressive';
  const steps = autoregressive ? pipe.transformer.tokens : o.steps;
  const prompts = Array.from({ length: o.images }, () => o.prompt);
  await pipe.text.prepare?.([o.prompt, '']);
  const sampling = pipe.samplingOf({ steps, guidance: o.guidance });
  const ms = await timeMedian(async () => void (await pipe.sampleTokens(prompts, '', 1, sampling)), o.runs, 1);
  const passes = autoregressive ? 1 : steps;
  return {
    backend: tf.getBackend(),
    decoding: autoregressive ? 'autoregressive' : 'parallel',
    compiled: compiledByDefault(),
    config,
    images: o.images,
    steps,
    guidance: o.guidance,
    msPerImage: ms / o.images,
    msPerStep: ms / steps,
    imagesPerSec: (o.images * 1000) / ms,
    gflops: (transformerFlops(config, pipe.text.maxLength) * (o.guidance === 1 ? 1 : 2) * o.images * passes) / (ms * 1e6),
  };
}
