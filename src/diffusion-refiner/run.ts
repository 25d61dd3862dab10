/**
 * A whole refiner training run, in two stages. The result is a bundle in `out` (or the refiner part
 * added to the bundle already there):
 *
 * RUN/model_index.json                    parts: refiner (+ whatever the bundle had)
 * RUN/refiner/                            config (with the measured latentScale) + weights + text-encoder/
 * RUN/checkpoints/refiner-autoencoder/    stage 1: autoencoder weights + optimizer + step, in step-N/ folders
 * RUN/checkpoints/refiner/                stage 2: denoiser (+ text encoder) weights + optimizer + step +
 *                                         random state + the text encoder, in step-N/ folders (see io/checkpoint.ts)
 * RUN/logs/refiner-autoencoder.jsonl, RUN/logs/refiner.jsonl
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { imagesToFloat32 } from '../data/batches.js';
import type { ImageSet } from '../data/imagefolder.js';
import { boxDownsample } from '../data/rescale.js';
import { UserError } from '../errors.js';
import { INDEX_FILE, readModelIndex, writeModelIndex } from '../io/bundle.js';
import { checkConfig, hasCheckpoint, hasTrainingCheckpoint, saveTrainingCheckpoint } from '../io/checkpoint.js';
import { parseConfig } from '../io/config.js';
import { createTextEncoder, loadTextEncoder, type TextEncoderSpec } from '../text/encoder.js';
import { checkResume, resumeCheckpoint, runBatches, trainingLoop, type Resume } from '../training/loop.js';
import { ConvAutoencoder } from './autoencoder.js';
import { Denoiser } from './denoiser.js';
import { RefinerConfigSchema, type RefinerConfig, type RefinerTrainConfig } from './config.js';
import { REFINER_PART, saveRefiner } from './io.js';
import { Refiner } from './refiner.js';
import { AutoencoderTrainer, DenoiserTrainer, type StepMetrics } from './trainer.js';

export type RefinerStage = 'autoencoder' | 'denoiser';

export interface RefinerRunOptions {
  /** High-resolution training images, at the refiner's size and channels. */
  data: ImageSet;
  /** The preset's refiner section (size, factor, channels may be overridden by the caller). */
  refiner: Partial<RefinerConfig> | Record<string, unknown>;
  text: TextEncoderSpec;
  train: RefinerTrainConfig;
  out: string;
  /** Continue the run in `out` (true: from its newest checkpoints; 'latest-good': the newest undamaged ones). */
  resume?: Resume;
  /** Hears about damaged checkpoints skipped on the way to the newest good one. */
  onWarning?: (message: string) => void;
  onStage?: (stage: RefinerStage, startStep: number, steps: number) => void;
  onStep?: (stage: RefinerStage, step: number, metrics: StepMetrics) => void;
  onEncode?: (done: number, total: number) => void;
  shouldStop?: () => boolean;
  /** Compute each step (autoencoder and denoiser) in one compiled ONNX Runtime session (default: on the onnx backend; see trainer.ts). */
  compiled?: boolean;
}

export interface RefinerRunResult {
  refiner?: Refiner;
  interrupted: boolean;
  seconds: { autoencoder: number; denoiser: number };
  /** Mean absolute reconstruction error of the autoencoder on the last batch (pixels in [−1, 1]). */
  last?: StepMetrics;
  latentScale?: number;
}

const AE_CKPT = 'refiner-autoencoder';
const TEXT_DIR = 'text-encoder';

/** Scale that brings the latents to unit variance: 1 / their std over every value. */
export function unitVarianceScale(latents: Float32Array): number {
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < latents.length; i++) {
    sum += latents[i]!;
    sq += latents[i]! * latents[i]!;
  }
  const mean = sum / latents.length;
  const std = Math.sqrt(Math.max(1e-12, sq / latents.length - mean * mean));
  return 1 / std;
}

/** Images at `indices` as [B, S, S, C] floats in [−1, 1]. */
function toSigned(set: ImageSet, indices: number[]): Float32Array {
  const x = imagesToFloat32(set, indices);
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * 2 - 1;
  return x;
}

async function mergeIntoIndex(out: string): Promise<void> {
  const hasIndex = await fsp.access(path.join(out, INDEX_FILE)).then(() => true, () => false);
  const index = hasIndex ? await readModelIndex(out) : undefined;
  const { library: _l, version: _v, ...rest } = index ?? { parts: {} };
  await writeModelIndex(out, { ...rest, parts: { ...(index?.parts ?? {}), [REFINER_PART]: REFINER_PART } });
}

export async function runRefinerTraining(opts: RefinerRunOptions): Promise<RefinerRunResult> {
  const { data, train, out } = opts;
  const base = parseConfig(RefinerConfigSchema, { ...opts.refiner, latentScale: 1 }, 'refiner config');
  if (data.width !== base.size || data.height !== base.size || data.channels !== base.channels) {
    throw new UserError(`data is ${data.width}×${data.height}×${data.channels} but the refiner is for ${base.size}×${base.size}×${base.channels}`);
  }
  const minBatch = Math.max(train.batchSize, train.autoencoderBatchSize);
  if (data.count < minBatch) throw new UserError(`data has ${data.count} images, fewer than one batch of ${minBatch}`);
  const aeDir = path.join(out, 'checkpoints', AE_CKPT);
  const dnDir = path.join(out, 'checkpoints', REFINER_PART);
  const aeExists = await checkResume(out, aeDir, opts.resume);
  const seconds = { autoencoder: 0, denoiser: 0 };

  // Stage 1: the autoencoder.
  const ae = new ConvAutoencoder(base.autoencoder, base.channels, train.seed);
  const aeTrainer = new AutoencoderTrainer(ae, train, { compiled: opts.compiled });
  const aeKey = { autoencoder: base.autoencoder, size: base.size, channels: base.channels, lr: train.autoencoderLr, batchSize: train.autoencoderBatchSize, seed: train.seed };
  if (aeExists) {
    const what = 'refiner autoencoder checkpoint';
    const ckpt = await resumeCheckpoint(aeDir, opts.resume, { expectConfig: aeKey, what, onWarning: opts.onWarning });
    aeTrainer.restore(ckpt, `${what} ${ckpt.dir}`);
  }
  let last: StepMetrics | undefined;
  try {
    if (aeTrainer.step < train.autoencoderSteps) {
      opts.onStage?.('autoencoder', aeTrainer.step, train.autoencoderSteps);
      const next = runBatches(data.count, train.autoencoderBatchSize, train.seed + 100, aeTrainer.step);
      const s = base.size;
      const r = await trainingLoop({
        out,
        logName: AE_CKPT,
        startStep: aeTrainer.step,
        steps: train.autoencoderSteps,
        checkpointEvery: train.checkpointEvery,
        step: () => {
          const idx = next();
          const x = tf.tensor4d(toSigned(data, idx), [idx.length, s, s, base.channels]);
          try {
            return aeTrainer.trainStep(x);
          } finally {
            x.dispose();
          }
        },
        save: async () => {
          const st = aeTrainer.state();
          await saveTrainingCheckpoint(aeDir, { config: aeKey, weights: st.weights, optimizer: st.optimizer, state: { step: st.step, random: st.random } });
        },
        onStep: (step, m) => opts.onStep?.('autoencoder', step, m),
        shouldStop: opts.shouldStop,
      });
      seconds.autoencoder = r.seconds;
      last = r.last;
      if (r.interrupted) {
        ae.dispose();
        return { interrupted: true, seconds, last };
      }
    }
  } finally {
    aeTrainer.dispose();
  }

  // Between the stages: every image's latents (with the frozen autoencoder) and low-resolution copy.
  const per = (base.size / 4) ** 2 * base.autoencoder.latentChannels;
  const latents = new Float32Array(data.count * per);
  const lowSide = base.size / base.factor;
  const lowPer = lowSide * lowSide * base.channels;
  const low = new Float32Array(data.count * lowPer);
  const chunk = 64;
  for (let start = 0; start < data.count; start += chunk) {
    const idx = Array.from({ length: Math.min(chunk, data.count - start) }, (_, i) => start + i);
    const x = toSigned(data, idx);
    const z = tf.tidy(() => ae.encode(tf.tensor4d(x, [idx.length, base.size, base.size, base.channels])));
    latents.set(z.dataSync() as Float32Array, start * per);
    z.dispose();
    low.set(boxDownsample(x, idx.length, base.size, base.channels, base.factor), start * lowPer);
    opts.onEncode?.(start + idx.length, data.count);
  }

  // Stage 2: the denoiser, on latents scaled to unit variance.
  const what = 'refiner checkpoint';
  const ckpt = (await hasTrainingCheckpoint(dnDir)) ? await resumeCheckpoint(dnDir, opts.resume, { what, onWarning: opts.onWarning }) : undefined;
  const refinerDir = path.join(out, REFINER_PART);
  // The text encoder (its vocabulary) is in the checkpoint; checkpoints from before it was are beside the bundle's.
  const inCkpt = ckpt ? path.join(ckpt.dir, TEXT_DIR) : '';
  const text = ckpt
    ? await loadTextEncoder((await hasCheckpoint(inCkpt)) ? inCkpt : path.join(refinerDir, TEXT_DIR))
    : await createTextEncoder(opts.text, { captions: data.captions, seed: train.seed + 5 }, 'textEncoder');
  await text.prepare?.([...new Set(data.captions), '']);
  // The checkpoint's key is everything but the latent scale (measured, and kept in its state).
  const { steps: _s, checkpointEvery: _c, ...trainKey } = train;
  const { latentScale: _scale, ...shape } = { ...base, textDim: text.dim };
  const dnKey = JSON.parse(JSON.stringify({ refiner: shape, text: opts.text, train: trainKey })) as unknown;
  if (ckpt) checkConfig(ckpt.config, dnKey, `${what} ${ckpt.dir}`);
  const latentScale = ckpt ? Number(ckpt.state?.latentScale) : unitVarianceScale(latents);
  const config = parseConfig(RefinerConfigSchema, { ...shape, latentScale }, 'refiner config');
  const refiner = new Refiner(config, ae, new Denoiser(config, train.seed + 1), text);
  const dnTrainer = new DenoiserTrainer(refiner, train, { compiled: opts.compiled });
  if (ckpt) dnTrainer.restore(ckpt, `${what} ${ckpt.dir}`);
  for (let i = 0; i < latents.length; i++) latents[i]! *= latentScale;

  const save = async () => {
    const st = dnTrainer.state();
    await saveTrainingCheckpoint(
      dnDir,
      { config: dnKey, weights: st.weights, optimizer: st.optimizer, state: { step: st.step, latentScale, random: st.random } },
      { extra: (dir) => text.save(path.join(dir, TEXT_DIR)) },
    );
    await saveRefiner(refinerDir, refiner);
    await mergeIntoIndex(out);
  };
  opts.onStage?.('denoiser', dnTrainer.step, train.steps);
  const next = runBatches(data.count, train.batchSize, train.seed, dnTrainer.step);
  const bLat = new Float32Array(train.batchSize * per);
  const bLow = new Float32Array(train.batchSize * lowPer);
  try {
    const r = await trainingLoop({
      out,
      logName: REFINER_PART,
      startStep: dnTrainer.step,
      steps: train.steps,
      checkpointEvery: train.checkpointEvery,
      step: () => {
        const idx = next();
        idx.forEach((j, i) => {
          bLat.set(latents.subarray(j * per, (j + 1) * per), i * per);
          bLow.set(low.subarray(j * lowPer, (j + 1) * lowPer), i * lowPer);
        });
        return dnTrainer.trainStep(bLat, bLow, idx.map((j) => data.captions[j]!));
      },
      save,
      onStep: (step, m) => opts.onStep?.('denoiser', step, m),
      shouldStop: opts.shouldStop,
    });
    seconds.denoiser = r.seconds;
    return { refiner, interrupted: r.interrupted, seconds, last: r.last, latentScale };
  } finally {
    dnTrainer.dispose();
  }
}
