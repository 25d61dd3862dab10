/**
 * `maskgen bench refine`: the refiner's speed on this backend at a preset's configuration —
 * sampling (images/s, ms per DDIM step with classifier-free guidance) and training (ms per
 * autoencoder step and per denoiser step; on onnx each one's compiled step and its per-kernel step
 * side by side). Text embeddings are a fixed random context.
 */
import * as tf from '@tensorflow/tfjs';
import { RefinerTrainSchema, type RefinerConfig } from '../diffusion-refiner/config.js';
import { Refiner } from '../diffusion-refiner/refiner.js';
import { AutoencoderTrainer, DenoiserTrainer } from '../diffusion-refiner/trainer.js';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { pairedRatio, timeInterleavedStats, timeMedian } from './timing.js';
import { FixedText } from './transformer.js';

export interface RefineBench {
  backend: string;
  /**
   * Whether sampling ran the denoiser, and training the autoencoder and the denoiser, as one compiled
   * ONNX Runtime session per step (the onnx backend) or as tfjs kernels.
   */
  compiled: boolean;
  config: RefinerConfig;
  images: number;
  steps: number;
  guidance: number;
  msPerImage: number;
  imagesPerSec: number;
  msPerSamplerStep: number;
  autoencoderBatchSize: number;
  msPerAutoencoderStep: number;
  /**
   * When compiled: the autoencoder's per-kernel (tfjs autograd) step measured in the same run, taken
   * in turn with the compiled one, and how many times slower it is (the median of the ratios of the
   * two steps of each round, which a host whose speed wanders affects least).
   */
  msPerAutoencoderStepPerKernel?: number;
  autoencoderSpeedup?: number;
  batchSize: number;
  msPerDenoiserStep: number;
  /** When compiled: the denoiser's per-kernel step, as the autoencoder's. */
  msPerDenoiserStepPerKernel?: number;
  denoiserSpeedup?: number;
}

export interface RefineBenchOptions {
  images: number;
  steps: number;
  guidance: number;
  batchSize: number;
  autoencoderBatchSize: number;
  textTokens: number;
  runs: number;
  /** Sample with the compiled denoiser (default: on the onnx backend). */
  compiled?: boolean;
}

export async function benchRefine(config: RefinerConfig, o: RefineBenchOptions): Promise<RefineBench> {
  const compiled = o.compiled ?? compiledByDefault();
  const refiner = Refiner.create(config, new FixedText(config.textDim, o.textTokens));
  const low = refiner.lowSize;
  const lowImages = Float32Array.from({ length: o.images * low * low * config.channels }, (_, i) => Math.sin(i * 0.37));
  const prompts = Array.from({ length: o.images }, (_, i) => `prompt ${i}`);
  const msRefine = await timeMedian(() => void refiner.refine(lowImages, prompts, { steps: o.steps, guidance: o.guidance, compiled }), o.runs, 1);

  const train = RefinerTrainSchema.parse({ batchSize: o.batchSize, autoencoderBatchSize: o.autoencoderBatchSize, steps: 1000, warmup: 10 });
  const x = tf.randomUniform([o.autoencoderBatchSize, config.size, config.size, config.channels], -1, 1, 'float32', 3) as tf.Tensor4D;
  // compiled and per-kernel steps interleaved, as bench tokenizer does: this host's throughput
  // wanders 2–3× within seconds, and their ratio should see the same machine
  const aeTrainers = { compiled: new AutoencoderTrainer(refiner.autoencoder, train, { compiled }), ...(compiled ? { perKernel: new AutoencoderTrainer(refiner.autoencoder, train, { compiled: false }) } : {}) };
  const ae = await timeInterleavedStats(Object.fromEntries(Object.entries(aeTrainers).map(([k, t]) => [k, () => void t.trainStep(x)])), o.runs, 2, 1);
  for (const t of Object.values(aeTrainers)) t.dispose();
  const msAe = ae.compiled!.median;
  const msAePerKernel = ae.perKernel?.median;
  const aeSpeedup = ae.perKernel ? pairedRatio(ae.perKernel, ae.compiled!) : undefined;
  x.dispose();

  const latents = Float32Array.from({ length: o.batchSize * refiner.latentSize }, (_, i) => Math.cos(i * 0.11));
  const lowBatch = Float32Array.from({ length: o.batchSize * low * low * config.channels }, (_, i) => Math.sin(i * 0.23));
  const captions = Array.from({ length: o.batchSize }, (_, i) => `caption ${i}`);
  const dnTrainers = { compiled: new DenoiserTrainer(refiner, train, { compiled }), ...(compiled ? { perKernel: new DenoiserTrainer(refiner, train, { compiled: false }) } : {}) };
  const dn = await timeInterleavedStats(Object.fromEntries(Object.entries(dnTrainers).map(([k, t]) => [k, () => void t.trainStep(latents, lowBatch, captions)])), o.runs, 2, 1);
  for (const t of Object.values(dnTrainers)) t.dispose();
  const msDn = dn.compiled!.median;
  const msDnPerKernel = dn.perKernel?.median;
  const dnSpeedup = dn.perKernel ? pairedRatio(dn.perKernel, dn.compiled!) : undefined;
  refiner.dispose();
  return {
    backend: tf.getBackend(),
    compiled,
    config,
    images: o.images,
    steps: o.steps,
    guidance: o.guidance,
    msPerImage: msRefine / o.images,
    imagesPerSec: (1000 * o.images) / msRefine,
    msPerSamplerStep: msRefine / o.steps,
    autoencoderBatchSize: o.autoencoderBatchSize,
    msPerAutoencoderStep: msAe,
    ...(msAePerKernel === undefined ? {} : { msPerAutoencoderStepPerKernel: msAePerKernel, autoencoderSpeedup: aeSpeedup }),
    batchSize: o.batchSize,
    msPerDenoiserStep: msDn,
    ...(msDnPerKernel === undefined ? {} : { msPerDenoiserStepPerKernel: msDnPerKernel, denoiserSpeedup: dnSpeedup }),
  };
}
