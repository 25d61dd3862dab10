/** `maskgen reconstruct`: encode → decode a data folder; PSNR, SSIM, codebook usage. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { imagesToTensor } from '../data/batches.js';
import { loadImageFolder } from '../data/imagefolder.js';
import { makeGrid, writePng, type RawImage } from '../data/images.js';
import { evaluateReconstruction } from '../vqgan/evaluate.js';
import { loadTokenizer } from '../vqgan/io.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { resolveBundle } from '../io/bundle.js';
import { progress } from './progress.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  bundle: string;
  data: string;
  out?: string;
  limit?: number;
  batchSize: number;
  fit: 'fill' | 'contain';
}

export const reconstructCommand: CommandModule<GlobalArgs, Args> = {
  command: 'reconstruct',
  describe: 'encode and decode the images of a data folder with a tokenizer; reports PSNR, SSIM, codebook usage and perplexity',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 reconstruct --bundle B --data DIR [--out DIR] [--json]')
      .option('bundle', { type: 'string', default: defaultBundle(), coerce: resolveBundle, describe: 'a model bundle, a training run folder, or a vqgan/ part folder (or a shipped bundle by name: emoji, fmnist)' })
      .option('data', { type: 'string', demandOption: true, describe: 'data folder: images + metadata.jsonl' })
      .option('out', { type: 'string', describe: 'write side-by-side PNGs (original | reconstruction) and grid.png here' })
      .option('limit', { type: 'number', describe: 'use only the first N images' })
      .option('batch-size', { type: 'number', default: 64, describe: 'images per batch' })
      .option('fit', { choices: ['fill', 'contain'] as const, default: 'fill' as const, describe: 'how images are brought to the tokenizer size' }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const backend = await startBackend(args);
    const model = await loadTokenizer(args.bundle);
    const { imageSize: size, channels } = model.config;
    const data = await loadImageFolder(args.data, {
      size,
      channels,
      fit: args.fit,
      limit: args.limit === undefined ? undefined : positiveInt(args.limit, '--limit'),
    });
    const bar = progress('reconstruct', data.count);
    const pairs: RawImage<Float32Array>[] = [];
    const per = size * size * channels;
    const report = await evaluateReconstruction(model, data.count, (start, count) => imagesToTensor(data, range(start, count)), {
      batchSize: positiveInt(args.batchSize, '--batch-size'),
      onBatch: async (start, orig, rec, done) => {
        bar.update(done);
        if (!args.out) return;
        for (let i = 0; i * per < orig.length; i++) {
          const a: RawImage<Float32Array> = { data: orig.slice(i * per, (i + 1) * per), width: size, height: size, channels };
          const b: RawImage<Float32Array> = { data: rec.slice(i * per, (i + 1) * per), width: size, height: size, channels };
          const pair = makeGrid([a, b], 2, 0);
          await writePng(path.join(args.out, `${String(start + i).padStart(5, '0')}.png`), pair);
          if (pairs.length < 64) pairs.push(a, b);
        }
      },
    });
    bar.stop();
    if (args.out && pairs.length > 0) await writePng(path.join(args.out, 'grid.png'), makeGrid(pairs, 16, 1));
    model.dispose();
    process.stderr.write(
      `maskgen: ${report.n} images: PSNR ${report.psnr.toFixed(2)} dB, SSIM ${report.ssim.toFixed(4)}, codebook usage ${(100 * report.codebookUsage).toFixed(1)}%, perplexity ${report.perplexity.toFixed(1)}\n`,
    );
    printJson(args, { ...report, backend });
  }),
};

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}
