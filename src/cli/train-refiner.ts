/** `maskgen train-refiner`: trains the latent-diffusion refiner (autoencoder, then denoiser) on a data folder. */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { z } from 'zod';
import { loadImageFolder, selectImages } from '../data/imagefolder.js';
import { holdOutSplit } from '../data/split.js';
import { RefinerTrainSchema } from '../diffusion-refiner/config.js';
import { runRefinerTraining } from '../diffusion-refiner/run.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadConfig } from '../io/config.js';
import { TextEncoderSpecSchema } from '../text/encoder.js';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { handle, printJson, resumeChoice, startBackend, stopOnSignal, trainingOptions, warn, type GlobalArgs } from './common.js';
import { progress, trainingProgress, type Progress } from './progress.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  config: string;
  data: string;
  out: string;
  resume?: string;
  steps?: number;
  autoencoderSteps?: number;
  batchSize?: number;
  limit?: number;
  size?: number;
  factor?: number;
  channels?: number;
  holdOut: number;
  compiled: boolean;
}

export const HOLDOUT_FILE = 'holdout.json';

export const trainRefinerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'train-refiner',
  describe: 'train the latent-diffusion refiner (a conv autoencoder, then a text-conditioned denoiser) on high-resolution images; adds the refiner/ part to the bundle in --out',
  builder: (y: Argv<GlobalArgs>) =>
    trainingOptions(y, {
      sections: "'refiner', 'textEncoder' and 'refinerTrain'",
      data: 'data folder: images + metadata.jsonl, loaded at the refiner size (the output resolution)',
      out: 'run folder or an existing bundle; the refiner part is added to it',
      steps: 'override the number of denoiser training steps',
      batchSize: 'override the denoiser batch size',
    })
      .usage('$0 train-refiner --config C --data DIR --out RUN [--resume [latest-good]]')
      .option('autoencoder-steps', { type: 'number', describe: 'override the number of autoencoder training steps' })
      .option('size', { type: 'number', describe: "override the preset's output size (a multiple of 4)" })
      .option('factor', { type: 'number', describe: "override the preset's upsampling factor" })
      .option('channels', { choices: [1, 3], type: 'number', describe: '1 for grayscale data such as Fashion-MNIST, 3 for RGB' })
      .option('compiled', {
        type: 'boolean',
        default: true,
        describe:
          'on the onnx backend, compute each step (autoencoder, then denoiser) in one compiled ONNX Runtime session; ' +
          '--no-compiled: tfjs autograd, one ORT call a kernel (other backends always use tfjs autograd)',
      })
      .option('hold-out', { type: 'number', default: 0, describe: `fraction of the images (seeded) kept out of training for evaluation; their files are listed in RUN/${HOLDOUT_FILE}` }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const resume = resumeChoice(args.resume);
    const refiner = await loadConfig(z.record(z.string(), z.unknown()), args.config, 'refiner');
    if (args.size !== undefined) refiner.size = positiveInt(args.size, '--size');
    if (args.factor !== undefined) refiner.factor = positiveInt(args.factor, '--factor');
    if (args.channels !== undefined) refiner.channels = args.channels;
    const text = await loadConfig(TextEncoderSpecSchema, args.config, 'textEncoder');
    const train = await loadConfig(RefinerTrainSchema, args.config, 'refinerTrain');
    if (args.steps !== undefined) train.steps = positiveInt(args.steps, '--steps');
    if (args.autoencoderSteps !== undefined) train.autoencoderSteps = positiveInt(args.autoencoderSteps, '--autoencoder-steps');
    if (args.batchSize !== undefined) train.batchSize = positiveInt(args.batchSize, '--batch-size');
    if (!(args.holdOut >= 0 && args.holdOut < 1)) throw new UserError(`--hold-out must be a fraction in [0, 1), got ${args.holdOut}`);
    const backend = await startBackend(args);

    const size = Number(refiner.size ?? 64);
    let loading: Progress | undefined;
    const all = await loadImageFolder(args.data, {
      size,
      channels: (refiner.channels ?? 3) as 1 | 3,
      limit: args.limit === undefined ? undefined : positiveInt(args.limit, '--limit'),
      onProgress: (done, total) => (loading ??= progress('loading images', total)).update(done),
    });
    loading?.stop();
    const split = holdOutSplit(all.count, args.holdOut, train.seed);
    const data = split.held.length > 0 ? selectImages(all, split.train) : all;
    await fsp.mkdir(args.out, { recursive: true });
    if (split.held.length > 0) {
      await writeFileAtomic(path.join(args.out, HOLDOUT_FILE), JSON.stringify({ data: args.data, files: split.held.map((i) => all.files[i]) }, null, 1) + '\n');
    }
    process.stderr.write(`maskgen: ${data.count} training images (${split.held.length} held out, ${all.skipped} skipped)\n`);

    let bar: ReturnType<typeof trainingProgress> | undefined;
    let encoding: Progress | undefined;
    const stop = stopOnSignal();
    const result = await runRefinerTraining({
      data,
      refiner,
      text,
      train,
      out: args.out,
      resume,
      onWarning: warn,
      shouldStop: stop.requested,
      compiled: args.compiled && compiledByDefault(),
      onStage: (stage, _start, steps) => {
        bar?.stop();
        bar = trainingProgress(`train-refiner ${stage}`, steps);
      },
      onEncode: (done, total) => (encoding ??= progress('encoding latents', total)).update(done),
      onStep: (_stage, step, m) => bar?.report(step, { loss: m.loss }),
    });
    bar?.stop();
    stop.dispose();
    const secs = result.seconds.autoencoder + result.seconds.denoiser;
    process.stderr.write(`maskgen: ${result.interrupted ? 'interrupted; checkpoint saved' : 'done'} in ${secs.toFixed(0)}s → bundle ${args.out}\n`);
    printJson(args, { out: args.out, backend, interrupted: result.interrupted, seconds: result.seconds, latentScale: result.latentScale, ...(result.last ?? {}) });
    result.refiner?.dispose();
  }),
};
