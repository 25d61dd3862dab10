/**
 * A tiny text-to-image pipeline trained inside a test on coloured squares named by their colour
 * (16×16 images, patch 4, so a 4×4 token grid): tokenizer (300 steps), then the transformer with
 * its built-in text encoder from the `tiny` preset. About 25 s of CPU.
 */
import path from 'node:path';
import { z } from 'zod';
import type { ImageSet } from '../../src/data/imagefolder.js';
import { loadConfig } from '../../src/io/config.js';
import { MaskgenPipeline } from '../../src/pipeline.js';
import { TextEncoderSpecSchema } from '../../src/text/encoder.js';
import { TransformerTrainSchema } from '../../src/transformer/config.js';
import { runTransformerTraining } from '../../src/transformer/run.js';
import { VqganConfigSchema, VqganTrainSchema } from '../../src/vqgan/config.js';
import { runTokenizerTraining } from '../../src/vqgan/run.js';
import { makeShapes } from './shapes.js';

export interface TinyPipelineOptions {
  /** The training set (default: 512 coloured squares of 16 px, seed 1). */
  data?: ImageSet;
  /** Told the transformer's loss at every step. */
  onStep?: (step: number, metrics: { loss: number }) => void;
  /** Tokenizer training steps (default 300). */
  tokenizerSteps?: number;
  /** Overrides of the `tiny` transformerTrain preset. */
  train?: Record<string, unknown>;
  /** Overrides of the `tiny` transformer preset (e.g. objective: 'autoregressive'). */
  transformer?: Record<string, unknown>;
}

/** Trains the tiny pipeline under `dir` (tok/, run/) and loads the bundle at `dir`/run. */
export async function trainTinyPipeline(dir: string, o: TinyPipelineOptions = {}): Promise<MaskgenPipeline> {
  const data = o.data ?? makeShapes(512, 16, 1);
  const vqgan = await loadConfig(VqganConfigSchema, 'tiny', 'vqgan');
  const vqTrain = await loadConfig(VqganTrainSchema, 'tiny', 'vqganTrain');
  const tok = await runTokenizerTraining({ data, model: vqgan, train: { ...vqTrain, steps: o.tokenizerSteps ?? 300 }, out: path.join(dir, 'tok') });
  const transformer = await loadConfig(z.record(z.string(), z.number()), 'tiny', 'transformer');
  const text = await loadConfig(TextEncoderSpecSchema, 'tiny', 'textEncoder');
  const train = await loadConfig(TransformerTrainSchema, 'tiny', 'transformerTrain');
  const run = await runTransformerTraining({ data, tokenizer: tok.model, transformer: { ...transformer, ...o.transformer }, text, train: { ...train, ...o.train }, out: path.join(dir, 'run'), onStep: o.onStep });
  run.model.dispose();
  run.text.dispose();
  tok.model.dispose();
  return MaskgenPipeline.load(path.join(dir, 'run'));
}
