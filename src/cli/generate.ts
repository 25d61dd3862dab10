/** `maskgen generate`: prompts → PNGs, a grid, and a JSON sidecar per image. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { makeGrid, writePng } from '../data/images.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { REFINE_DEFAULTS } from '../diffusion-refiner/config.js';
import { DEFAULT_CHOICE_TEMPERATURE, DEFAULT_GUIDANCE, DEFAULT_REGION_STRENGTH, DEFAULT_STEPS, DEFAULT_VARIATION_STRENGTH, parseRegion } from '../decoding/index.js';
import { MaskgenPipeline } from '../pipeline.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { resolveBundle } from '../io/bundle.js';
import { progress, type Progress } from './progress.js';
import { writeVariations } from './variations.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  prompt?: string[];
  prompts?: string;
  n: number;
  steps?: number;
  guidance?: number;
  guidanceSchedule?: 'constant' | 'linear';
  negativePrompt?: string;
  temperature?: number;
  choiceTemperature?: number;
  plausibility?: number;
  polish?: number;
  polishShare: number;
  seed: number;
  out: string;
  bundle: string;
  batchSize: number;
  refine?: boolean;
  refiner?: string;
  refineSteps: number;
  refineGuidance: number;
  topK?: number;
  region?: string[];
  regionStrength?: number;
  image?: string;
  variations?: boolean;
  strength?: number;
}

export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 48) || 'image';
}

export const generateCommand: CommandModule<GlobalArgs, Args> = {
  command: 'generate',
  describe: 'generate images from text prompts with parallel decoding and classifier-free guidance, or variations of an image (--image I --variations)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage(
        '$0 generate --prompt P [--prompt P2 …] [--n N] [--steps T] [--guidance S] [--negative-prompt P] [--seed S] [--out DIR]\n' +
          '$0 generate --prompt P --region "word:x,y,w,h" [--region …] [--region-strength W] …\n' +
          '$0 generate --image I --variations [--strength S] [--prompt P] [--n N] [--seed S] [--out DIR]\n\n' +
          'Variations: the image (resized to the model\'s size) is tokenized; each of the --n variations re-masks its own random ' +
          '--strength share of the tokens and decodes them again toward --prompt, or else the image\'s caption in its folder\'s ' +
          'metadata.jsonl, or else no prompt. They take the steps a --steps generation has left where that share is masked ' +
          '(strength 0.5 of 12 steps: 4). Writes variation-<i>.png, grid.png (the source first) and variations.json.\n\n' +
          'Paint-with-words: --region "word:x,y,w,h" (repeatable) adds --region-strength to the cross-attention logits between the ' +
          'image tokens in the box and the text tokens of that word of the prompt, falling with the mask ratio over the steps (eDiff-I). ' +
          'Needs the built-in text encoder.\n\n' +
          'An autoregressive bundle (train-transformer --objective autoregressive) decodes token by token in raster order ' +
          '(one model call a token, with guidance; on the onnx backend each call is one position with a key/value cache): ' +
          '--steps and --choice-temperature are unused, --top-k is used; no --region, editing or variations.',
      )
      .option('prompt', { type: 'string', array: true, describe: 'a prompt (repeat for several)' })
      .option('prompts', { type: 'string', describe: 'a text file with one prompt per line' })
      .option('n', { type: 'number', default: 4, describe: 'images per prompt' })
      .option('steps', { type: 'number', describe: "parallel decoding steps (default: the bundle's, else 12)" })
      .option('guidance', { type: 'number', describe: "classifier-free guidance scale (1 = none, 0 = ignore the prompt; default: the bundle's, else 3)" })
      .option('guidance-schedule', { choices: ['constant', 'linear'] as const, describe: "constant, or rising linearly from 1 to --guidance over the steps (default: the bundle's, else constant)" })
      .option('negative-prompt', { type: 'string', describe: 'steer away from this prompt (it replaces the empty prompt in guidance)' })
      .option('temperature', { type: 'number', describe: "token sampling temperature (0 = most likely token; default: the bundle's, else 1)" })
      .option('choice-temperature', { type: 'number', describe: "randomness of which tokens are kept at each step, annealed to 0 (default: the bundle's, else 4.5)" })
      .option('plausibility', {
        type: 'number',
        describe: "guide only among tokens at least this share as probable as the prompt's most probable one (0 = off; removes guidance's stray specks; default: the bundle's, else 0)",
      })
      .option('polish', { type: 'number', describe: "after decoding, this many rounds of re-masking the least probable tokens and sampling them again with the whole grid known (0 = off; default: the bundle's, else 0)" })
      .option('polish-share', { type: 'number', default: 0.15, describe: 'share of the generated tokens each --polish round re-masks' })
      .option('seed', { type: 'number', default: 0, describe: 'random seed: the same seed and settings give the same images' })
      .option('out', { type: 'string', default: 'out', describe: 'folder for the PNGs, grid.png and the JSON sidecars' })
      .option('bundle', { type: 'string', default: defaultBundle(), coerce: resolveBundle, describe: 'model bundle: a folder, or a shipped one by name (emoji, fmnist; default: emoji)' })
      .option('batch-size', { type: 'number', default: 16, describe: 'images decoded together' })
      .option('refine', { type: 'boolean', describe: 'upsample with the latent-diffusion refiner (default: on when the bundle has one; --no-refine for the base images)' })
      .option('refiner', { type: 'string', describe: 'take the refiner from this bundle or refiner folder instead' })
      .option('refine-steps', { type: 'number', default: REFINE_DEFAULTS.steps, describe: "refiner's DDIM steps" })
      .option('top-k', { type: 'number', describe: 'autoregressive bundles: sample among the k most likely tokens only (default: all)' })
      .option('region', {
        type: 'string',
        array: true,
        describe: 'paint-with-words: "word:x,y,w,h" puts a word of the prompt in that box (pixels of the base image); repeat for several words',
      })
      .option('region-strength', { type: 'number', describe: `paint-with-words: weight added to the attention between a box's tokens and its word at the first step, falling over the steps (default ${DEFAULT_REGION_STRENGTH})` })
      .option('image', { type: 'string', describe: 'with --variations: the source image (PNG, JPEG, WebP, …)' })
      .option('variations', { type: 'boolean', describe: 'make variations of --image instead of images from prompts alone' })
      .option('strength', { type: 'number', describe: `with --variations: share of the tokens each variation re-masks, in (0, 1] (default ${DEFAULT_VARIATION_STRENGTH})` })
      .option('refine-guidance', { type: 'number', default: REFINE_DEFAULTS.guidance, describe: "refiner's classifier-free guidance scale" }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const prompts = [...(args.prompt ?? [])];
    if (args.prompts) {
      const text = await readFile(args.prompts, 'utf8').catch(() => {
        throw new UserError(`cannot read --prompts file ${args.prompts}`);
      });
      prompts.push(...text.split('\n').map((l) => l.trim()).filter((l) => l !== ''));
    }
    const regions = (args.region ?? []).map(parseRegion);
    if (args.regionStrength !== undefined && !(Number.isFinite(args.regionStrength) && args.regionStrength >= 0)) throw new UserError(`--region-strength must be a number ≥ 0, got ${args.regionStrength}`);
    if (args.variations && args.image === undefined) throw new UserError('--variations needs --image (the image to make variations of)');
    if (args.image !== undefined && !args.variations) throw new UserError('--image is for --variations (to edit an image toward a prompt, use maskgen edit)');
    if (args.strength !== undefined && !args.variations) throw new UserError('--strength is for --variations');
    if (args.strength !== undefined && !(args.strength > 0 && args.strength <= 1)) throw new UserError(`--strength must be in (0, 1], got ${args.strength}`);
    if (args.variations && prompts.length > 1) throw new UserError('--variations takes at most one --prompt');
    if (prompts.length === 0 && !args.variations) throw new UserError('give a prompt with --prompt "..." (or --prompts FILE)');
    if (prompts.some((p) => p.trim() === '')) throw new UserError('a --prompt is empty');
    const n = positiveInt(args.n, '--n');
    if (args.steps !== undefined) positiveInt(args.steps, '--steps');
    if (args.plausibility !== undefined && !(args.plausibility >= 0 && args.plausibility <= 1)) throw new UserError(`--plausibility must be in [0, 1], got ${args.plausibility}`);
    if (args.polish !== undefined && !(Number.isInteger(args.polish) && args.polish >= 0)) throw new UserError(`--polish must be a whole number ≥ 0, got ${args.polish}`);
    if (!(args.polishShare > 0 && args.polishShare <= 1)) throw new UserError(`--polish-share must be in (0, 1], got ${args.polishShare}`);
    if (!Number.isInteger(args.seed)) throw new UserError(`--seed must be a whole number, got ${args.seed}`);
    const backend = await startBackend(args);
    const pipe = await MaskgenPipeline.load(args.bundle, { refiner: args.refine === false || args.variations ? false : (args.refiner ?? args.refine) });
    const refineSteps = positiveInt(args.refineSteps, '--refine-steps');
    const batchSize = positiveInt(args.batchSize, '--batch-size');
    // One bar for all refiner steps: each batch of images is refined in `refineSteps` DDIM steps.
    let refineBar: Progress | undefined;
    let refined = 0;
    const refineTotal = Math.ceil((prompts.length * n) / batchSize) * refineSteps;
    const refine =
      pipe.refiner !== undefined
        ? { steps: refineSteps, guidance: args.refineGuidance, onStep: () => (refineBar ??= progress('refine', refineTotal)).update(++refined) }
        : undefined;
    // What was given, then the bundle's settings, then the library's defaults: the sidecars record all.
    const given = pipe.samplingOf({
      steps: args.steps,
      guidance: args.guidance,
      guidanceSchedule: args.guidanceSchedule,
      negativePrompt: args.negativePrompt,
      temperature: args.temperature,
      choiceTemperature: args.choiceTemperature,
      plausibility: args.plausibility,
      polish: args.polish === undefined ? undefined : { rounds: args.polish, share: args.polishShare },
      ...(args.topK !== undefined ? { topK: positiveInt(args.topK, '--top-k') } : {}),
      ...(regions.length > 0 ? { regions, regionStrength: args.regionStrength ?? DEFAULT_REGION_STRENGTH } : {}),
    });
    const settings = {
      ...given,
      steps: given.steps ?? DEFAULT_STEPS,
      guidance: given.guidance ?? DEFAULT_GUIDANCE,
      guidanceSchedule: given.guidanceSchedule ?? 'constant',
      temperature: given.temperature ?? 1,
      choiceTemperature: given.choiceTemperature ?? DEFAULT_CHOICE_TEMPERATURE,
      plausibility: given.plausibility ?? 0,
      polish: given.polish ?? { rounds: 0, share: args.polishShare },
    };
    if (args.variations) {
      const result = await writeVariations(pipe, { image: args.image!, prompt: prompts[0], strength: args.strength ?? DEFAULT_VARIATION_STRENGTH, n, seed: args.seed, batchSize, out: args.out, settings });
      pipe.dispose();
      printJson(args, { ...result, backend });
      return;
    }
    const bar = progress('generate', prompts.length * n * settings.steps);
    const t0 = Date.now();
    const images = await pipe.generate({
      prompts,
      n,
      ...settings,
      seed: args.seed,
      batchSize,
      onStep: (done) => bar.update(done),
      refine,
    });
    bar.stop();
    refineBar?.stop();
    const seconds = (Date.now() - t0) / 1000;
    const files: string[] = [];
    for (const im of images) {
      const name = `${slug(im.prompt)}-${im.index}`;
      const file = path.join(args.out, `${name}.png`);
      await writePng(file, im.image);
      const sidecar = { prompt: im.prompt, index: im.index, seed: args.seed, batchSeed: im.seed, bundle: args.bundle, backend, ...settings, refine: refine ? { steps: refine.steps, guidance: refine.guidance } : false };
      if (im.base) await writePng(path.join(args.out, `${name}-base.png`), im.base);
      await writeFileAtomic(path.join(args.out, `${name}.json`), JSON.stringify(sidecar, null, 2) + '\n');
      files.push(file);
    }
    await writePng(path.join(args.out, 'grid.png'), makeGrid(images.map((im) => im.image), n, 2));
    pipe.dispose();
    process.stderr.write(`maskgen: ${images.length} ${refine ? 'refined ' : ''}images in ${seconds.toFixed(1)}s → ${args.out}/ (grid.png: one row per prompt)\n`);
    printJson(args, { out: args.out, backend, images: files.length, seconds, files });
  }),
};
