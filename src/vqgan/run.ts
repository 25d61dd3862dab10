/**
 * A whole tokenizer training run over a loaded image set: batching, the trainer's steps, periodic
 * atomic checkpoints, `resume`, and the `vqgan/` bundle part written at every checkpoint.
 *
 * RUN/model_index.json, RUN/vqgan/          the bundle part (config + weights)
 * RUN/checkpoints/vqgan/step-N/             weights + discriminator + optimizer state + step + random
 *                                           state (the last few, see io/checkpoint.ts)
 * RUN/logs/vqgan.jsonl                      one line of metrics every `logEvery` steps
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { imagesToTensor } from '../data/batches.js';
import type { ImageSet } from '../data/imagefolder.js';
import { UserError } from '../errors.js';
import { writeModelIndex } from '../io/bundle.js';
import { saveTrainingCheckpoint } from '../io/checkpoint.js';
import { assignWeights } from '../io/tensors.js';
import { Rng, restoreRngs, saveRngs } from '../random.js';
import { checkResume, resumeCheckpoint, runBatches, trainingLoop, type Resume } from '../training/loop.js';
import type { VqganConfig, VqganTrainConfig } from './config.js';
import { VQGAN_PART, saveTokenizer } from './io.js';
import { VitVqgan } from './model.js';
import { TokenizerTrainer, type TokenizerStepMetrics } from './trainer.js';

export interface TokenizerRunOptions {
  data: ImageSet;
  model: VqganConfig;
  train: VqganTrainConfig;
  out: string;
  /** Continue the run in `out` (true: from its newest checkpoint; 'latest-good': the newest undamaged one). */
  resume?: Resume;
  /** Hears about damaged checkpoints skipped on the way to the newest good one. */
  onWarning?: (message: string) => void;
  logEvery?: number;
  onStep?: (step: number, metrics: TokenizerStepMetrics) => void;
  onCheckpoint?: (step: number) => void;
  /** Polled between steps; when true the run saves a checkpoint and returns early. */
  shouldStop?: () => boolean;
  /** Compute each step in one compiled ONNX Runtime session (default: on the onnx backend; see trainer.ts). */
  compiled?: boolean;
}

export interface TokenizerRunResult {
  model: VitVqgan;
  steps: number;
  interrupted: boolean;
  last?: TokenizerStepMetrics;
  seconds: number;
}

export function checkpointDir(out: string): string {
  return path.join(out, 'checkpoints', VQGAN_PART);
}

/** What a checkpoint must match to be resumed: the model, and the training config but for its length. */
function resumeKey(model: VqganConfig, train: VqganTrainConfig): unknown {
  const { steps: _steps, checkpointEvery: _every, ...rest } = train;
  return { model, train: rest };
}

export async function runTokenizerTraining(opts: TokenizerRunOptions): Promise<TokenizerRunResult> {
  const { data, train, out } = opts;
  const cfg = opts.model;
  if (data.width !== cfg.imageSize || data.height !== cfg.imageSize || data.channels !== cfg.channels) {
    throw new UserError(`data is ${data.width}×${data.height}×${data.channels} but the tokenizer expects ${cfg.imageSize}×${cfg.imageSize}×${cfg.channels}`);
  }
  if (data.count < train.batchSize) throw new UserError(`data has ${data.count} images, fewer than one batch of ${train.batchSize}`);

  const ckptDir = checkpointDir(out);
  const exists = await checkResume(out, ckptDir, opts.resume);

  const model = new VitVqgan(cfg, train.seed);
  const trainer = new TokenizerTrainer(model, train, { compiled: opts.compiled });
  const key = resumeKey(cfg, train);
  // Random state of the run itself (the trainer's is in trainer.rngs); data order follows from the seed and step.
  const runRngs: Record<string, Rng> = train.augmentFlip ? { flip: new Rng(train.seed + 3) } : {};
  if (exists) {
    const ckpt = await resumeCheckpoint(ckptDir, opts.resume, { expectConfig: key, what: 'tokenizer checkpoint', onWarning: opts.onWarning });
    const own: Record<string, tf.Tensor> = {};
    const rest: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(ckpt.weights)) (k.startsWith('disc/') ? rest : own)[k] = v;
    try {
      assignWeights(model.variables(), own, `tokenizer checkpoint ${ckpt.dir}`);
      trainer.load(rest, ckpt.optimizer ?? {}, ckpt.step, { random: ckpt.state?.random, codeCounts: ckpt.state?.codeCounts });
      restoreRngs(runRngs, ckpt.state?.random);
    } finally {
      tf.dispose([...Object.values(rest), ...Object.values(ckpt.optimizer ?? {})]);
    }
  }

  const save = async () => {
    const s = trainer.state();
    const state = { step: s.step, random: { ...s.random, ...saveRngs(runRngs) }, codeCounts: s.codeCounts };
    await saveTrainingCheckpoint(ckptDir, { config: key, weights: s.weights, optimizer: s.optimizer, state });
    await saveTokenizer(path.join(out, VQGAN_PART), model);
    await writeModelIndex(out, { parts: { [VQGAN_PART]: VQGAN_PART } });
    opts.onCheckpoint?.(s.step);
  };

  const flipRng = runRngs.flip;
  const nextBatch = runBatches(data.count, train.batchSize, train.seed, trainer.step);

  try {
    const result = await trainingLoop({
      out,
      logName: VQGAN_PART,
      startStep: trainer.step,
      steps: train.steps,
      checkpointEvery: train.checkpointEvery,
      logEvery: opts.logEvery,
      step: () => {
        const x = imagesToTensor(data, nextBatch(), { hflip: flipRng });
        const m = trainer.trainStep(x);
        x.dispose();
        return m;
      },
      save,
      onStep: opts.onStep,
      shouldStop: opts.shouldStop,
    });
    return { model, ...result };
  } finally {
    trainer.dispose();
  }
}
