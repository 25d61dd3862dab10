/** `maskgen bench <what>`: speed figures as JSON. */
import type { Argv, CommandModule } from 'yargs';
import { benchTokenizer } from '../bench/tokenizer.js';
import { loadConfig } from '../io/config.js';
import { VqganConfigSchema, VqganTrainSchema } from '../vqgan/config.js';
import { handle, startBackend, type GlobalArgs } from './common.js';
import { positiveInt } from './train-tokenizer.js';

interface TokenizerArgs extends GlobalArgs {
  config: string;
  batchSize?: number;
  runs: number;
  adversarial: boolean;
}

const tokenizer: CommandModule<GlobalArgs, TokenizerArgs> = {
  command: 'tokenizer',
  describe: 'ViT-VQGAN: train images/s, encode and decode images/s, achieved GFLOP/s',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('config', { type: 'string', default: 'small', describe: 'preset name or config file (its vqgan and vqganTrain sections)' })
      .option('batch-size', { type: 'number', describe: 'override the batch size' })
      .option('runs', { type: 'number', default: 5, describe: 'measured runs (the median is reported)' })
      .option('adversarial', { type: 'boolean', default: true, describe: 'include the discriminator in the training step when the config has one' }) as unknown as Argv<TokenizerArgs>,
  handler: handle(async (args: TokenizerArgs) => {
    const model = await loadConfig(VqganConfigSchema, args.config, 'vqgan');
    const train = await loadConfig(VqganTrainSchema, args.config, 'vqganTrain');
    if (args.batchSize !== undefined) train.batchSize = positiveInt(args.batchSize, '--batch-size');
    if (!args.adversarial) train.adversarial.weight = 0;
    await startBackend(args);
    const result = await benchTokenizer(model, train, positiveInt(args.runs, '--runs'));
    process.stdout.write(JSON.stringify({ bench: 'tokenizer', config: args.config, ...result }) + '\n');
  }),
};

export const benchCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'bench <what>',
  describe: 'benchmarks, printing one JSON object: tokenizer',
  builder: (y: Argv<GlobalArgs>) => y.command(tokenizer as never).demandCommand(1, 'name a benchmark: tokenizer'),
  handler: () => {},
};
