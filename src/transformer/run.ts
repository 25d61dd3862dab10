/**
 * A whole transformer training run. The result is a bundle in `out`:
 *
 * RUN/model_index.json                      parts: vqgan, text-encoder, transformer
 * RUN/vqgan/                                the frozen tokenizer, copied in so the bundle stands alone
 * RUN/text-encoder/, RUN/transformer/       config + weights (+ tokenizer.json)
 * RUN/checkpoints/transformer/              all trainable weights + optimizer state + step
 * RUN/cache/tokens-*.safetensors            the data set's token grids
 * RUN/logs/transformer.jsonl
 */
import path from 'node:path';
import type { ImageSet } from '../data/imagefolder.js';
import { UserError } from '../errors.js';
import { writeModelIndex } from '../io/bundle.js';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { parseConfig } from '../io/config.js';
import { createTextEncoder, loadTextEncoder, type TextEncoder, type TextEncoderSpec } from '../text/encoder.js';
import { checkResume, runBatches, trainingLoop } from '../training/loop.js';
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
  resume?: boolean;
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
  const { steps: _steps, checkpointEvery: _every, ...rest } = train;
  return { model, text, train: rest };
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

  const tokens = await tokenizeDataset(tokenizer, data, path.join(out, 'cache'), opts.onTokenize);
  const text = exists
    ? await loadTextEncoder(path.join(out, TEXT_PART))
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
  if (exists) {
    trainer.restore(await loadCheckpoint(ckptDir, { expectConfig: key, what: 'transformer checkpoint' }), `transformer checkpoint ${ckptDir}`);
  }

  await saveTokenizer(path.join(out, VQGAN_PART), tokenizer);
  const save = async () => {
    const s = trainer.state();
    await saveCheckpoint(ckptDir, { config: key, weights: s.weights, optimizer: s.optimizer, state: { step: s.step } });
    await saveCheckpoint(path.join(out, TRANSFORMER_PART), { config: model.config, weights: model.variables() });
    await text.save(path.join(out, TEXT_PART));
    await writeModelIndex(out, { parts: { [VQGAN_PART]: VQGAN_PART, [TEXT_PART]: TEXT_PART, [TRANSFORMER_PART]: TRANSFORMER_PART } });
  };

  const n = model.tokens;
  const nextBatch = runBatches(data.count, train.batchSize, train.seed, trainer.step);
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
        return trainer.trainStep(batchTokens, indices.map((i) => data.captions[i]!));
      },
      save,
      onStep: opts.onStep,
      shouldStop: opts.shouldStop,
    });
    return { model, text, ...result };
  } finally {
    trainer.dispose();
  }
}
