/**
 * A whole transformer training run. The result is a bundle in `out`:
 *
 * RUN/model_index.json                      parts: vqgan, text-encoder, transformer
 * RUN/vqgan/                                the frozen tokenizer, copied in so the bundle stands alone
 * RUN/text-encoder/, RUN/transformer/       config + weights (+ tokenizer.json)
 * RUN/checkpoints/transformer/step-N/       all trainable weights + optimizer state + step + random
 *                                           state + the text encoder (the last few, see io/checkpoint.ts)
 * RUN/cache/tokens-*.safetensors            the data set's token grids
 * RUN/logs/transformer.jsonl
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { mirrored } from '../data/batches.js';
import type { ImageSet } from '../data/imagefolder.js';
import { UserError } from '../errors.js';
import { writeModelIndex } from '../io/bundle.js';
import { checkConfig, hasCheckpoint, saveCheckpoint, saveTrainingCheckpoint } from '../io/checkpoint.js';
import { parseConfig } from '../io/config.js';
import { createTextEncoder, loadTextEncoder, type TextEncoder, type TextEncoderSpec } from '../text/encoder.js';
import { checkResume, resumeCheckpoint, runBatches, trainingLoop, type Resume } from '../training/loop.js';
import { VQGAN_PART, saveTokenizer } from '../vqgan/io.js';
import type { VitVqgan } from '../vqgan/model.js';
import { TransformerConfigSchema, type TransformerConfig, type TransformerTrainConfig } from './config.js';
import { MaskedTransformer } from './model.js';
import { tokenizeDataset } from './tokenize-dataset.js';
import { TransformerTrainer, type TransformerStepMetrics } from './trainer.js';

export const TRANSFORMER_PART = 'transformer';
export const TEXT_PART = 'text-encoder';

export interface TransformerRunOptions {
  data: ImageSet;
  tokenizer: VitVqgan;
  /** The preset's transformer section; codebookSize, grid and textDim are taken from the tokenizer and text encoder. */
  transformer: Partial<TransformerConfig>;
  text: TextEncoderSpec;
  train: TransformerTrainConfig;
  out: string;
  /** Continue the run in `out` (true: from its newest checkpoint; 'latest-good': the newest undamaged one). */
  resume?: Resume;
  /** Hears about damaged checkpoints skipped on the way to the newest good one. */
  onWarning?: (message: string) => void;
  onTokenize?: (done: number, total: number) => void;
  onStep?: (step: number, metrics: TransformerStepMetrics) => void;
  shouldStop?: () => boolean;
}

export interface TransformerRunResult {
  model: MaskedTransformer;
  text: TextEncoder;
  steps: number;
  interrupted: boolean;
  last?: TransformerStepMetrics;
  seconds: number;
}

function resumeKey(model: TransformerConfig, text: TextEncoderSpec, train: TransformerTrainConfig): unknown {
  // The step count, checkpoint spacing and EMA may change when a run is resumed; so may the flips
  // (compared through `withoutFlip`), which the saved key records only when on.
  const { steps: _steps, checkpointEvery: _every, ema: _ema, augmentFlip, ...rest } = train;
  return { model, text, train: augmentFlip ? { ...rest, augmentFlip } : rest };
}

/** A resume key without its flips: they too may be turned on or off when a run is resumed (a continuation with mirrors). */
function withoutFlip(key: unknown): unknown {
  const k = key as { train?: Record<string, unknown> };
  if (!k?.train || !('augmentFlip' in k.train)) return key;
  const { augmentFlip: _flip, ...train } = k.train;
  return { ...k, train };
}

export async function runTransformerTraining(opts: TransformerRunOptions): Promise<TransformerRunResult> {
  const { data, tokenizer, train, out } = opts;
  const vq = tokenizer.config;
  if (data.width !== vq.imageSize || data.height !== vq.imageSize || data.channels !== vq.channels) {
    throw new UserError(`data is ${data.width}×${data.height}×${data.channels} but the tokenizer expects ${vq.imageSize}×${vq.imageSize}×${vq.channels}`);
  }
  if (data.count < train.batchSize) throw new UserError(`data has ${data.count} images, fewer than one batch of ${train.batchSize}`);
  const ckptDir = path.join(out, 'checkpoints', TRANSFORMER_PART);
  const exists = await checkResume(out, ckptDir, opts.resume);

  // With flips the examples are the images then their mirrors: example i ≥ count is image i − count mirrored.
  const sets = train.augmentFlip ? [data, mirrored(data)] : [data];
  const parts: Int32Array[] = [];
  for (const set of sets) {
    const before = parts.length * data.count;
    parts.push(await tokenizeDataset(tokenizer, set, path.join(out, 'cache'), (done) => opts.onTokenize?.(before + done, sets.length * data.count)));
  }
  const tokens = parts.length === 1 ? parts[0]! : concatTokens(parts);
  const examples = sets.length * data.count;
  const captionOf = (i: number) => data.captions[i % data.count]!;
  const what = 'transformer checkpoint';
  const ckpt = exists ? await resumeCheckpoint(ckptDir, opts.resume, { what, onWarning: opts.onWarning }) : undefined;
  // The text encoder (its vocabulary) is in the checkpoint; checkpoints from before it was are beside the bundle's.
  const textDir = ckpt && (await hasCheckpoint(path.join(ckpt.dir, TEXT_PART))) ? path.join(ckpt.dir, TEXT_PART) : path.join(out, TEXT_PART);
  const text = ckpt
    ? await loadTextEncoder(textDir)
    : await createTextEncoder(opts.text, { captions: data.captions, seed: train.seed + 5 }, 'textEncoder');
  await text.prepare?.([...new Set(data.captions), '']);
  const config = parseConfig(
    TransformerConfigSchema,
    { ...opts.transformer, codebookSize: vq.codebookSize, grid: tokenizer.grid, textDim: text.dim },
    'transformer config',
  );
  const model = new MaskedTransformer(config, train.seed);
  const trainer = new TransformerTrainer(model, text, train);
  const key = resumeKey(config, opts.text, train);
  if (ckpt) {
    try {
      checkConfig(withoutFlip(ckpt.config), withoutFlip(key), `${what} ${ckpt.dir}`);
    } catch (err) {
      tf.dispose([...Object.values(ckpt.weights), ...Object.values(ckpt.optimizer ?? {})]);
      trainer.dispose();
      model.dispose();
      text.dispose();
      throw err;
    }
    trainer.restore(ckpt, `${what} ${ckpt.dir}`);
  }

  await saveTokenizer(path.join(out, VQGAN_PART), tokenizer);
  const save = async () => {
    const s = trainer.state();
    await saveTrainingCheckpoint(
      ckptDir,
      { config: key, weights: s.weights, optimizer: s.optimizer, state: { step: s.step, random: s.random, ...(s.emaUpdates !== undefined ? { emaUpdates: s.emaUpdates } : {}) } },
      { extra: (dir) => text.save(path.join(dir, TEXT_PART)) },
    );
    // The bundle gets the average of the weights when there is one.
    await trainer.withAverage(async () => {
      await saveCheckpoint(path.join(out, TRANSFORMER_PART), { config: model.config, weights: model.variables() });
      await text.save(path.join(out, TEXT_PART));
    });
    await writeModelIndex(out, { parts: { [VQGAN_PART]: VQGAN_PART, [TEXT_PART]: TEXT_PART, [TRANSFORMER_PART]: TRANSFORMER_PART } });
  };

  const n = model.tokens;
  const nextBatch = runBatches(examples, train.batchSize, train.seed, trainer.step);
  const batchTokens = new Int32Array(train.batchSize * n);
  try {
    const result = await trainingLoop({
      out,
      logName: TRANSFORMER_PART,
      startStep: trainer.step,
      steps: train.steps,
      checkpointEvery: train.checkpointEvery,
      step: () => {
        const indices = nextBatch();
        indices.forEach((idx, i) => batchTokens.set(tokens.subarray(idx * n, (idx + 1) * n), i * n));
        return trainer.trainStep(batchTokens, indices.map(captionOf));
      },
      save,
      onStep: opts.onStep,
      shouldStop: opts.shouldStop,
    });
    trainer.ema?.commit(); // the model returned is the bundle's
    return { model, text, ...result };
  } finally {
    trainer.dispose();
  }
}

function concatTokens(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
