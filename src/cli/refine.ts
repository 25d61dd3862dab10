/** `maskgen refine`: one low-resolution image + a prompt → the refiner's larger image. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { makeGrid, readImage, writePng } from '../data/images.js';
import { REFINE_DEFAULTS } from '../diffusion-refiner/config.js';
import { loadRefiner } from '../diffusion-refiner/io.js';
import { UserError } from '../errors.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { resolveBundle } from '../io/bundle.js';
import { progress } from './progress.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  image: string;
  prompt: string;
  out: string;
  bundle: string;
  n: number;
  steps: number;
  guidance: number;
  augment: number;
  seed: number;
}

export const refineCommand: CommandModule<GlobalArgs, Args> = {
  command: 'refine',
  describe: "upsample an image with the latent-diffusion refiner, guided by a prompt (the image is first resized to the refiner's input size)",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 refine --image low.png --prompt P [--out refined.png] [--steps T] [--guidance S] [--seed S]')
      .option('image', { type: 'string', demandOption: true, describe: 'the low-resolution image (PNG, JPEG, …)' })
      .option('prompt', { type: 'string', demandOption: true, describe: 'what the image shows' })
      .option('out', { type: 'string', default: 'refined.png', describe: 'output PNG (with --n > 1: -0, -1, … before .png, and a grid)' })
      .option('bundle', { type: 'string', default: defaultBundle(), coerce: resolveBundle, describe: 'a bundle with a refiner part, or a refiner folder (or a shipped bundle by name: emoji, fmnist)' })
      .option('n', { type: 'number', default: 1, describe: 'refinements to make (seeds seed … seed+n−1)' })
      .option('steps', { type: 'number', default: REFINE_DEFAULTS.steps, describe: 'DDIM steps' })
      .option('guidance', { type: 'number', default: REFINE_DEFAULTS.guidance, describe: 'classifier-free guidance scale (1 = none, 0 = ignore the prompt)' })
      .option('augment', { type: 'number', default: REFINE_DEFAULTS.augment, describe: 'conditioning-augmentation noise on the input (std, pixels in [-1, 1])' })
      .option('seed', { type: 'number', default: 0, describe: 'random seed' }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    if (args.prompt.trim() === '') throw new UserError('--prompt is empty');
    if (!(args.augment >= 0)) throw new UserError(`--augment must be ≥ 0, got ${args.augment}`);
    if (!Number.isInteger(args.seed)) throw new UserError(`--seed must be a whole number, got ${args.seed}`);
    const n = positiveInt(args.n, '--n');
    const steps = positiveInt(args.steps, '--steps');
    const backend = await startBackend(args);
    const refiner = await loadRefiner(args.bundle);
    try {
      const image = await readImage(args.image, { size: refiner.lowSize, channels: refiner.config.channels });
      const bar = progress('refine', steps);
      const t0 = Date.now();
      const out = await refiner.refineImages(Array(n).fill(image), Array(n).fill(args.prompt), {
        steps,
        guidance: args.guidance,
        augment: args.augment,
        seed: args.seed,
        onStep: (done) => bar.update(done),
      });
      bar.stop();
      const seconds = (Date.now() - t0) / 1000;
      const files: string[] = [];
      const base = args.out.replace(/\.png$/i, '');
      for (const [i, im] of out.entries()) {
        const file = n === 1 ? `${base}.png` : `${base}-${i}.png`;
        await writePng(file, im);
        files.push(file);
      }
      if (n > 1) await writePng(`${base}-grid.png`, makeGrid(out, n, 2));
      process.stderr.write(`maskgen: ${refiner.lowSize}px → ${refiner.config.size}px in ${seconds.toFixed(1)}s → ${files.length === 1 ? files[0] : path.dirname(files[0]!) + '/'}\n`);
      printJson(args, { files, backend, seconds, size: refiner.config.size, steps, guidance: args.guidance, seed: args.seed });
    } finally {
      refiner.dispose();
    }
  }),
};
