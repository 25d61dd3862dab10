/** `maskgen train-transformer`: trains the text encoder (if trainable) and the masked transformer. */
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { z } from 'zod';
import { loadImageFolder } from '../data/imagefolder.js';
import { loadConfig } from '../io/config.js';
import { TextEncoderSpecSchema } from '../text/encoder.js';
import { TransformerTrainSchema } from '../transformer/config.js';
import { runTransformerTraining } from '../transformer/run.js';
import { loadTokenizer } from '../vqgan/io.js';
import { handle, printJson, resumeChoice, startBackend, stopOnSignal, trainingOptions, warn, type GlobalArgs } from './common.js';
import { progress, trainingProgress, type Progress } from './progress.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  config: string;
  data: string;
  tokenizer: string;
  out: string;
  resume?: string;
  steps?: number;
  batchSize?: number;
  limit?: number;
  textEncoder?: string;
  objective?: 'masked' | 'autoregressive';
  ema?: number;
  flip?: boolean;
}

export const trainTransformerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'train-transformer',
  describe: 'train the masked transformer (and the built-in text encoder) on a data folder with a frozen tokenizer; --out becomes a bundle',
  builder: (y: Argv<GlobalArgs>) =>
    trainingOptions(y, {
      sections: "'transformer', 'textEncoder' and 'transformerTrain'",
      data: 'data folder: images + metadata.jsonl (captions are the prompts)',
      out: 'run folder; becomes a bundle (vqgan, text-encoder, transformer)',
    })
      .usage('$0 train-transformer --config C --data DIR --tokenizer RUN --out RUN [--resume [latest-good]]')
      .option('tokenizer', { type: 'string', demandOption: true, describe: 'a trained tokenizer: a run folder, bundle or vqgan/ part' })
      .option('objective', {
        choices: ['masked', 'autoregressive'] as const,
        describe:
          "masked (default; Muse: fill in masked tokens, parallel decoding) or autoregressive (Parti-style baseline: causal self-attention, next token in raster order, decoded token by token; the same text conditioning and caption dropout). Overrides the preset's transformer.objective",
      })
      .option('ema', {
        type: 'number',
        describe: "keep a moving average of the weights with this decay (e.g. 0.999) and ship it in the bundle; 0 = none. May be turned on with --resume. Overrides transformerTrain.ema",
      })
      .option('flip', {
        type: 'boolean',
        describe: 'train on every image and its left–right mirror (--no-flip: the images alone). May be turned on or off with --resume. Overrides transformerTrain.augmentFlip',
      })
      .option('text-encoder', {
        type: 'string',
        describe: 'use a pretrained, frozen text encoder instead of the preset\'s: a local transformers.js model folder (config.json, tokenizer.json, onnx/) or a hub id already in the local cache',
      }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const resume = resumeChoice(args.resume);
    const preset = await loadConfig(z.record(z.string(), z.union([z.number(), z.string()])), args.config, 'transformer');
    const transformer = args.objective ? { ...preset, objective: args.objective } : preset;
    let text = await loadConfig(TextEncoderSpecSchema, args.config, 'textEncoder');
    if (args.textEncoder) text = { kind: 'pretrained', model: args.textEncoder, maxLength: text.maxLength, localOnly: true };
    const train = await loadConfig(TransformerTrainSchema, args.config, 'transformerTrain');
    if (args.steps !== undefined) train.steps = positiveInt(args.steps, '--steps');
    if (args.batchSize !== undefined) train.batchSize = positiveInt(args.batchSize, '--batch-size');
    if (args.ema !== undefined) {
      if (!(args.ema >= 0 && args.ema < 1)) throw new UserError(`--ema must be in [0, 1), got ${args.ema}`);
      train.ema = args.ema;
    }
    if (args.flip !== undefined) train.augmentFlip = args.flip;
    const backend = await startBackend(args);
    const tokenizer = await loadTokenizer(args.tokenizer);

    let loading: Progress | undefined;
    const data = await loadImageFolder(args.data, {
      size: tokenizer.config.imageSize,
      channels: tokenizer.config.channels,
      limit: args.limit === undefined ? undefined : positiveInt(args.limit, '--limit'),
      onProgress: (done, total) => (loading ??= progress('loading images', total)).update(done),
    });
    loading?.stop();
    process.stderr.write(`maskgen: ${data.count} images (${data.skipped} skipped), ${new Set(data.captions).size} distinct captions\n`);

    let tokenizing: Progress | undefined;
    const bar = trainingProgress('train-transformer', train.steps);
    const stop = stopOnSignal();
    const result = await runTransformerTraining({
      data,
      tokenizer,
      transformer,
      text,
      train,
      out: args.out,
      resume,
      onWarning: warn,
      shouldStop: stop.requested,
      onTokenize: (done, total) => (tokenizing ??= progress('tokenizing', total)).update(done),
      onStep: (step, m) => bar.report(step, { loss: m.loss, acc: m.accuracy }),
    });
    bar.stop();
    stop.dispose();
    process.stderr.write(
      `maskgen: ${result.interrupted ? 'interrupted; checkpoint saved' : 'done'}: ${result.steps} steps in ${result.seconds.toFixed(0)}s → bundle ${args.out}\n`,
    );
    printJson(args, { out: args.out, backend, steps: result.steps, seconds: result.seconds, interrupted: result.interrupted, ...(result.last ?? {}) });
    result.model.dispose();
    result.text.dispose();
    tokenizer.dispose();
  }),
};
