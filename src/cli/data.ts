/**
 * `maskgen data <command>`: importers that write data folders (images + metadata.jsonl).
 */
import type { Argv, CommandModule } from 'yargs';
import { importEmoji } from '../data/emoji.js';
import { FASHION_MNIST_DIR, importFashionMnist, type FashionMnistSplit } from '../data/fashion-mnist.js';
import { splitDataFolder } from '../data/split.js';
import { UserError } from '../errors.js';
import { handle, printJson, type GlobalArgs } from './common.js';
import { progress, type Progress } from './progress.js';

/** A progress bar made when the total is first known. */
function lazyProgress(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  let bar: Progress | null = null;
  return {
    update(done, total) {
      bar ??= progress(label, total);
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

interface FashionArgs extends GlobalArgs {
  out: string;
  limit?: number;
  split: FashionMnistSplit;
  source: string;
}

const importFashion: CommandModule<GlobalArgs, FashionArgs> = {
  command: 'import-fashion-mnist',
  describe: "write a data folder of Fashion-MNIST images (28×28 grayscale PNGs) captioned from their class names, from Debian's dataset-fashion-mnist",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 data import-fashion-mnist --out DIR [--limit N] [--split train|test] [--source DIR]')
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write the PNGs and metadata.jsonl into (created if needed)' })
      .option('limit', { type: 'number', describe: 'import only the first N images of the split (default: all)' })
      .option('split', {
        choices: ['train', 'test'] as const,
        default: 'train' as FashionMnistSplit,
        describe: 'which split: train (60,000 images) or test (10,000)',
      })
      .option('source', {
        type: 'string',
        default: FASHION_MNIST_DIR,
        describe: 'folder with the idx files (gzipped or not); install them with apt-get install dataset-fashion-mnist',
      }) as unknown as Argv<FashionArgs>,
  handler: handle(async (args: FashionArgs) => {
    if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit >= 1)) {
      throw new UserError(`--limit must be a positive integer, got ${args.limit}`);
    }
    const bar = lazyProgress('fashion-mnist');
    const t0 = Date.now();
    let result;
    try {
      result = await importFashionMnist({
        out: args.out,
        split: args.split,
        limit: args.limit,
        sourceDir: args.source,
        onProgress: bar.update,
      });
    } finally {
      bar.stop();
    }
    const secs = (Date.now() - t0) / 1000;
    process.stdout.write(
      `wrote ${result.count} Fashion-MNIST ${result.split} images and metadata.jsonl to ${result.out} in ${secs.toFixed(1)}s\n`,
    );
    printJson(args, { command: 'data import-fashion-mnist', ...result, seconds: secs });
  }),
};

interface EmojiArgs extends GlobalArgs {
  vendors: string;
  out: string;
  size: number;
  limit?: number;
}

const importEmojiCommand: CommandModule<GlobalArgs, EmojiArgs> = {
  command: 'import-emoji',
  describe: 'write a data folder of emoji images (RGB PNGs on white) captioned with their names, from the npm emoji-datasource-* packages',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 data import-emoji --vendors twitter,google --out DIR [--size 64] [--limit N]')
      .option('vendors', {
        type: 'string',
        default: 'twitter,google',
        describe: 'comma-separated emoji sets: twitter, google, apple, facebook (each needs npm package emoji-datasource-<vendor>)',
      })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write the PNGs and metadata.jsonl into (created if needed)' })
      .option('size', { type: 'number', default: 64, describe: 'width and height of the written images in pixels (the source images are 64)' })
      .option('limit', { type: 'number', describe: 'import at most N emoji per vendor (default: all)' }) as unknown as Argv<EmojiArgs>,
  handler: handle(async (args: EmojiArgs) => {
    if (!Number.isInteger(args.size) || args.size < 1) throw new UserError(`--size must be a positive integer, got ${args.size}`);
    if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit >= 1)) {
      throw new UserError(`--limit must be a positive integer, got ${args.limit}`);
    }
    const bar = lazyProgress('emoji');
    const t0 = Date.now();
    let result;
    try {
      result = await importEmoji({
        vendors: args.vendors.split(','),
        out: args.out,
        size: args.size,
        limit: args.limit,
        onProgress: bar.update,
      });
    } finally {
      bar.stop();
    }
    const secs = (Date.now() - t0) / 1000;
    const per = Object.entries(result.perVendor)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ');
    process.stdout.write(
      `wrote ${result.count} emoji images (${per}) at ${result.size}×${result.size} and metadata.jsonl to ${result.out} in ${secs.toFixed(1)}s` +
        (result.skipped ? `; skipped ${result.skipped} unreadable` : '') +
        '\n',
    );
    printJson(args, { command: 'data import-emoji', ...result, seconds: secs });
  }),
};

interface SplitArgs extends GlobalArgs {
  data: string;
  holdOut: number;
  seed: number;
  train: string;
  held: string;
}

const splitCommand: CommandModule<GlobalArgs, SplitArgs> = {
  command: 'split',
  describe: 'split a data folder into a training folder and a held-out folder (a seeded fraction; the same images train-refiner --hold-out holds out with the same seed)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 data split --data DIR --hold-out 0.1 --train DIR --held DIR [--seed S]')
      .option('data', { type: 'string', demandOption: true, describe: 'data folder to split (images + metadata.jsonl)' })
      .option('hold-out', { type: 'number', default: 0.1, describe: 'fraction of the images held out' })
      .option('seed', { type: 'number', default: 0, describe: 'seed of the split' })
      .option('train', { type: 'string', demandOption: true, describe: 'folder for the training images (created)' })
      .option('held', { type: 'string', demandOption: true, describe: 'folder for the held-out images (created)' }) as unknown as Argv<SplitArgs>,
  handler: handle(async (args: SplitArgs) => {
    if (!Number.isInteger(args.seed) || args.seed < 0) throw new UserError(`--seed must be a whole number >= 0, got ${args.seed}`);
    const result = await splitDataFolder(args.data, args.holdOut, args.seed, args.train, args.held);
    process.stdout.write(`wrote ${result.train} training images to ${args.train} and ${result.held} held-out images to ${args.held}\n`);
    printJson(args, { command: 'data split', ...result, trainDir: args.train, heldDir: args.held });
  }),
};

export const dataCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'data <command>',
  describe: 'import data sets into data folders (images + metadata.jsonl), or split one',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(importFashion)
      .command(importEmojiCommand)
      .command(splitCommand)
      .demandCommand(1, 'name a data command: import-fashion-mnist, import-emoji or split'),
  handler: () => {},
};
