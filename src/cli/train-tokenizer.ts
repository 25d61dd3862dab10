/** `maskgen train-tokenizer`: trains the ViT-VQGAN on a data folder. */
import type { Argv, CommandModule } from 'yargs';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { loadImageFolder } from '../data/imagefolder.js';
import { UserError } from '../errors.js';
import { loadConfig } from '../io/config.js';
import { VqganConfigSchema, VqganTrainSchema } from '../vqgan/config.js';
import { runTokenizerTraining } from '../vqgan/run.js';
import { handle, printJson, resumeChoice, startBackend, stopOnSignal, trainingOptions, warn, type GlobalArgs } from './common.js';
import { progress, trainingProgress, type Progress } from './progress.js';

interface Args extends GlobalArgs {
  config: string;
  data: string;
  out: string;
  resume?: string;
  steps?: number;
  batchSize?: number;
  limit?: number;
  channels?: number;
  compiled: boolean;
}

export const trainTokenizerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'train-tokenizer',
  describe: 'train the ViT-VQGAN image tokenizer on a data folder; the result is the vqgan/ part of a bundle in --out',
  builder: (y: Argv<GlobalArgs>) =>
    trainingOptions(y, {
      sections: "'vqgan' and 'vqganTrain'",
      data: 'data folder: images + metadata.jsonl',
      out: 'run folder: bundle part, checkpoints and logs go here',
    })
      .usage('$0 train-tokenizer --config C --data DIR --out RUN [--resume [latest-good]]')
      .option('channels', { choices: [1, 3], type: 'number', describe: "override the preset's channels: 1 for grayscale data such as Fashion-MNIST, 3 for RGB" })
      .option('compiled', {
        type: 'boolean',
        default: true,
        describe:
          'on the onnx backend, compute each step (generator and, once it starts, the discriminator) in one compiled ONNX Runtime session; ' +
          '--no-compiled: tfjs autograd, one ORT call a kernel (other backends always use tfjs autograd)',
      }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const resume = resumeChoice(args.resume);
    const model = await loadConfig(VqganConfigSchema, args.config, 'vqgan');
    if (args.channels !== undefined) model.channels = args.channels as 1 | 3;
    const train = await loadConfig(VqganTrainSchema, args.config, 'vqganTrain');
    if (args.steps !== undefined) train.steps = positiveInt(args.steps, '--steps');
    if (args.batchSize !== undefined) train.batchSize = positiveInt(args.batchSize, '--batch-size');
    const backend = await startBackend(args);

    let loading: Progress | undefined;
    const data = await loadImageFolder(args.data, {
      size: model.imageSize,
      channels: model.channels,
      fit: train.fit,
      limit: args.limit === undefined ? undefined : positiveInt(args.limit, '--limit'),
      onProgress: (done, total) => (loading ??= progress('loading images', total)).update(done),
    });
    loading?.stop();
    process.stderr.write(`maskgen: ${data.count} images (${data.skipped} skipped) at ${model.imageSize}px, ${model.channels} channel(s)\n`);

    const bar = trainingProgress('train-tokenizer', train.steps);
    const stop = stopOnSignal();
    const result = await runTokenizerTraining({
      data,
      model,
      train,
      out: args.out,
      resume,
      onWarning: warn,
      shouldStop: stop.requested,
      compiled: args.compiled && compiledByDefault(),
      onStep: (step, m) => bar.report(step, { loss: m.loss, l2: m.l2, usage: m.usage, ...(m.dLoss ? { d: m.dLoss } : {}) }),
    });
    bar.stop();
    stop.dispose();
    const summary = {
      out: args.out,
      backend,
      steps: result.steps,
      seconds: result.seconds,
      interrupted: result.interrupted,
      ...(result.last ? { loss: result.last.loss, l2: result.last.l2, usage: result.last.usage } : {}),
    };
    process.stderr.write(
      `maskgen: ${result.interrupted ? 'interrupted; checkpoint saved' : 'done'}: ${result.steps} steps in ${result.seconds.toFixed(0)}s → ${args.out}/vqgan\n`,
    );
    printJson(args, summary);
    result.model.dispose();
  }),
};

export function positiveInt(v: number, flag: string): number {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`${flag} must be a positive integer, got ${v}`);
  return v;
}
