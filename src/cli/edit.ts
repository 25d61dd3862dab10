/**
 * `maskgen edit`: inpainting (--mask / --box), outpainting (--extend) or mask-free editing
 * (--mask-free) of one image toward a prompt; writes the result PNG(s), a before/after PNG and a
 * JSON sidecar with every setting.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { Argv, CommandModule } from 'yargs';
import { ImageReadError, makeGrid, readImage, writePng } from '../data/images.js';
import { boxToPixelMask, DEFAULT_EDIT_GUIDANCE, DEFAULT_EDIT_ITERATIONS, DEFAULT_EDIT_STRENGTH, DEFAULT_EDIT_TEMPERATURE, DEFAULT_STEPS, parseBox, parseExtend, scaleBox, scaleMask } from '../decoding/index.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { beforeOnCanvas, type EditOptions, MaskgenPipeline } from '../pipeline.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { resolveBundle } from '../io/bundle.js';
import { progress, type Progress } from './progress.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  image: string;
  prompt: string;
  mask?: string;
  box?: string;
  extend?: string;
  maskFree?: boolean;
  strength?: number;
  iterations?: number;
  select?: 'random' | 'least-likely';
  revert?: number;
  plausibility?: number;
  paste: boolean;
  feather?: number;
  steps?: number;
  guidance?: number;
  guidanceSchedule: 'constant' | 'linear';
  negativePrompt?: string;
  temperature?: number;
  choiceTemperature: number;
  seed: number;
  n: number;
  out: string;
  bundle: string;
}

const MODES = ['--mask', '--box', '--extend', '--mask-free'] as const;

/** The width and height of an image file, or an ImageReadError naming it. */
async function imageDims(file: string): Promise<{ width: number; height: number }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ImageReadError(file, e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a folder' : e.message);
  }
  const meta = await sharp(bytes)
    .metadata()
    .catch((err: Error) => {
      throw new ImageReadError(file, (err.message ?? String(err)).split('\n')[0]!);
    });
  if (!meta.width || !meta.height) throw new ImageReadError(file, 'no size in its header');
  return { width: meta.width, height: meta.height };
}

export const editCommand: CommandModule<GlobalArgs, Args> = {
  command: 'edit',
  describe: 'edit an image toward a prompt: inpainting (--mask, --box), outpainting (--extend) or mask-free editing',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage(
        '$0 edit --image I --prompt P (--mask M.png | --box x,y,w,h | --extend l,t,r,b | --mask-free) [--strength S] [--iterations K] [--no-paste] [--steps T] [--guidance S] [--seed S] [--n N] [--out F]\n\n' +
          'The image is resized to the model\'s size; --box, --mask and --extend are in the pixels of the image as given. ' +
          'Writes F (F-0.png, F-1.png … with --n > 1), F-before-after.png and F.json (every setting).',
      )
      .option('image', { type: 'string', demandOption: true, describe: 'the image to edit (PNG, JPEG, WebP, …)' })
      .option('prompt', { type: 'string', demandOption: true, describe: 'what the edited image (or region) should show' })
      .option('mask', { type: 'string', describe: 'inpaint: a mask image the size of --image, white = regenerate' })
      .option('box', { type: 'string', describe: 'inpaint: regenerate the box x,y,w,h (pixels of --image)' })
      .option('extend', { type: 'string', describe: 'outpaint: add left,top,right,bottom pixels (of --image), rounded up to whole tokens' })
      .option('mask-free', { type: 'boolean', describe: 'mask-free editing: resample a share of the tokens (those least likely under the prompt; --select), repeatedly, toward the prompt' })
      .option('strength', { type: 'number', describe: `mask-free: fraction of the tokens resampled per iteration, in (0, 1] (default: the bundle's, else ${DEFAULT_EDIT_STRENGTH})` })
      .option('iterations', { type: 'number', describe: `mask-free: resampling iterations (default: the bundle's, else ${DEFAULT_EDIT_ITERATIONS})` })
      .option('plausibility', {
        type: 'number',
        describe: "guide only among tokens at least this share as probable as the prompt's most probable one (0 = off; default: the bundle's, else 0)",
      })
      .option('select', {
        choices: ['random', 'least-likely'] as const,
        describe: 'mask-free: which tokens each iteration resamples: the share least likely under the prompt (default: those that do not fit it yet) or a random share (Muse)',
      })
      .option('revert', {
        type: 'number',
        describe: "mask-free: afterwards give back every changed token whose original is at least this times as probable under the prompt (0 = off; default: the bundle's, else 0)",
      })
      .option('paste', { type: 'boolean', default: true, describe: 'inpaint/outpaint: paste the original back outside the edited area with a feathered edge (--no-paste: keep the decoder\'s pixels)' })
      .option('feather', { type: 'number', describe: 'inpaint/outpaint: feather width in model pixels (default half a patch; 0 = hard edge)' })
      .option('steps', { type: 'number', describe: `parallel decoding steps (default ${DEFAULT_STEPS}; with --mask-free, per iteration, default: the bundle's, else 1)` })
      .option('guidance', { type: 'number', describe: `classifier-free guidance scale (1 = none, 0 = ignore the prompt; default 3, mask-free the bundle's, else ${DEFAULT_EDIT_GUIDANCE})` })
      .option('guidance-schedule', { choices: ['constant', 'linear'] as const, default: 'constant' as const, describe: 'constant, or rising linearly from 1 to --guidance over the steps' })
      .option('negative-prompt', { type: 'string', describe: 'steer away from this prompt (it replaces the empty prompt in guidance)' })
      .option('temperature', { type: 'number', describe: `token sampling temperature (0 = most likely token; default 1, mask-free the bundle's, else ${DEFAULT_EDIT_TEMPERATURE})` })
      .option('choice-temperature', { type: 'number', default: 4.5, describe: 'randomness of which tokens are kept at each step, annealed to 0' })
      .option('seed', { type: 'number', default: 0, describe: 'random seed: the same seed and settings give the same result' })
      .option('n', { type: 'number', default: 1, describe: 'how many edits to make' })
      .option('out', { type: 'string', default: 'edit.png', describe: 'the result PNG (F-0.png, F-1.png … with --n > 1), with F-before-after.png and F.json beside it' })
      .option('bundle', { type: 'string', default: defaultBundle(), coerce: resolveBundle, describe: 'model bundle: a folder, or a shipped one by name (emoji, fmnist; default: emoji)' }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    // Everything that needs no model first, so bad input fails fast.
    if (args.prompt.trim() === '') throw new UserError('--prompt is empty');
    const given = MODES.filter((m) => (m === '--mask' ? args.mask !== undefined : m === '--box' ? args.box !== undefined : m === '--extend' ? args.extend !== undefined : args.maskFree === true));
    if (given.length === 0) throw new UserError('choose an edit: --mask M.png, --box x,y,w,h, --extend left,top,right,bottom or --mask-free');
    if (given.length > 1) throw new UserError(`choose one edit, not ${given.join(' and ')}`);
    const mode = given[0]!;
    if (mode !== '--mask-free') {
      for (const [v, flag] of [[args.strength, '--strength'], [args.iterations, '--iterations'], [args.select, '--select'], [args.revert, '--revert']] as const) {
        if (v !== undefined) throw new UserError(`${flag} is for --mask-free, not ${mode}`);
      }
    } else {
      if (!args.paste) throw new UserError('--no-paste is for --mask, --box and --extend, not --mask-free');
      if (args.feather !== undefined) throw new UserError('--feather is for --mask, --box and --extend, not --mask-free');
    }
    const n = positiveInt(args.n, '--n');
    const steps = args.steps === undefined ? undefined : positiveInt(args.steps, '--steps');
    if (args.plausibility !== undefined && !(args.plausibility >= 0 && args.plausibility <= 1)) throw new UserError(`--plausibility must be in [0, 1], got ${args.plausibility}`);
    if (args.revert !== undefined && !(args.revert >= 0)) throw new UserError(`--revert must be a number ≥ 0, got ${args.revert}`);
    const iterations = args.iterations === undefined ? undefined : positiveInt(args.iterations, '--iterations');
    if (args.strength !== undefined && !(args.strength > 0 && args.strength <= 1)) throw new UserError(`--strength must be in (0, 1], got ${args.strength}`);
    if (args.feather !== undefined && (!Number.isInteger(args.feather) || args.feather < 0)) throw new UserError(`--feather must be a whole number of pixels ≥ 0, got ${args.feather}`);
    if (!Number.isInteger(args.seed)) throw new UserError(`--seed must be a whole number, got ${args.seed}`);
    const box = args.box !== undefined ? parseBox(args.box) : undefined;
    const extend = args.extend !== undefined ? parseExtend(args.extend) : undefined;
    if (extend && Object.values(extend).every((v) => v === 0)) throw new UserError('--extend: every margin is 0, nothing to outpaint');

    const dims = await imageDims(args.image);
    if (box) boxToPixelMask(box, dims.width, dims.height); // throws unless the box is inside the image
    let maskDims: { width: number; height: number } | undefined;
    if (args.mask !== undefined) {
      maskDims = await imageDims(args.mask);
      if (maskDims.width !== dims.width || maskDims.height !== dims.height) {
        throw new UserError(`--mask ${args.mask} is ${maskDims.width}×${maskDims.height}, --image ${args.image} is ${dims.width}×${dims.height}: they must match`);
      }
    }

    const backend = await startBackend(args);
    const pipe = await MaskgenPipeline.load(args.bundle);
    try {
      const { imageSize: S, channels } = pipe.tokenizer.config;
      const resized = dims.width !== S || dims.height !== S;
      if (resized) {
        process.stderr.write(
          `maskgen: --image is ${dims.width}×${dims.height}, resized${dims.width !== dims.height ? ' (stretched)' : ''} to ${S}×${S}, the model's size` +
            `${mode === '--mask-free' ? '' : `; ${mode} is scaled with it`}\n`,
        );
      }
      const image = await readImage(args.image, { size: S, channels });

      const modeName = mode === '--mask-free' ? 'mask-free' : mode === '--extend' ? 'outpaint' : 'inpaint';
      // Only what was given: the pipeline resolves the rest (the bundle's, else the library's) and reports it.
      let bar: Progress | undefined;
      const common = {
        image,
        prompt: args.prompt,
        n,
        seed: args.seed,
        steps,
        guidance: args.guidance,
        guidanceSchedule: args.guidanceSchedule,
        negativePrompt: args.negativePrompt,
        temperature: args.temperature,
        choiceTemperature: args.choiceTemperature,
        plausibility: args.plausibility,
        onStep: (done: number, total: number) => (bar ??= progress('edit', total)).update(done),
      };
      const paste = { paste: args.paste, feather: args.feather };
      // The edit, with the geometry in model pixels; `scaled` records it for the sidecar.
      let opts: EditOptions;
      const scaled: Record<string, unknown> = {};
      if (box) {
        const b = scaleBox(box, dims.width, dims.height, S);
        scaled.boxScaled = b;
        opts = { ...common, mode: 'inpaint', box: b, ...paste };
      } else if (args.mask !== undefined) {
        const raw = await readImage(args.mask, { size: maskDims!, channels: 1, background: 'black' });
        const m = scaleMask(raw.data, raw.width, raw.height, S);
        if (!m.some((v) => v)) throw new UserError(`--mask ${args.mask} has no white pixel (white = regenerate): nothing to edit`);
        opts = { ...common, mode: 'inpaint', mask: m, ...paste };
      } else if (extend) {
        const sx = S / dims.width;
        const sy = S / dims.height;
        const e = { left: Math.ceil(extend.left * sx), top: Math.ceil(extend.top * sy), right: Math.ceil(extend.right * sx), bottom: Math.ceil(extend.bottom * sy) };
        scaled.extendScaled = e;
        opts = { ...common, mode: 'outpaint', extend: e, ...paste };
      } else {
        opts = { ...common, mode: 'mask-free', stepsPerIteration: steps, strength: args.strength, iterations, selection: args.select, revert: args.revert };
      }
      const t0 = Date.now();
      const result = await pipe.edit(opts);
      bar?.stop();
      const seconds = (Date.now() - t0) / 1000;

      const stem = args.out.replace(/\.png$/i, '');
      const files = result.images.map((im) => (n === 1 ? `${stem}.png` : `${stem}-${im.index}.png`));
      for (const [i, im] of result.images.entries()) await writePng(files[i]!, im.image);
      const before = beforeOnCanvas(image, result.layout);
      const beforeAfter = `${stem}-before-after.png`;
      await writePng(beforeAfter, makeGrid([before, ...result.images.map((im) => im.image)], 1 + n, 2));
      const sidecarFile = `${stem}.json`;
      const sidecar = {
        mode: modeName,
        image: args.image,
        imageSize: dims,
        resized,
        modelSize: S,
        prompt: args.prompt,
        ...(box ? { box } : {}),
        ...(args.mask !== undefined ? { mask: args.mask } : {}),
        ...(extend ? { extend } : {}),
        ...scaled,
        ...(result.layout ? { extendTokens: result.layout.tokens, extendPixels: result.layout.pixels } : {}),
        ...result.settings,
        seed: args.seed,
        n,
        bundle: args.bundle,
        backend,
        grid: result.grid,
        width: result.width,
        height: result.height,
        beforeAfter: path.basename(beforeAfter),
        results: result.images.map((im, i) => ({
          file: path.basename(files[i]!),
          index: im.index,
          batchSeed: im.seed,
          kept: im.kept,
          regenerated: im.regenerated,
          changed: im.changed,
        })),
        seconds,
      };
      await writeFileAtomic(sidecarFile, JSON.stringify(sidecar, null, 2) + '\n');
      const keptText = modeName === 'outpaint' ? '' : `, tokens kept ${result.images.map((im) => `${(100 * im.kept).toFixed(0)}%`).join(' ')}`;
      process.stderr.write(`maskgen: ${modeName} → ${files.join(', ')} (${result.width}×${result.height}${keptText}) in ${seconds.toFixed(1)}s; ${beforeAfter}, ${sidecarFile}\n`);
      printJson(args, {
        mode: modeName,
        files,
        beforeAfter,
        sidecar: sidecarFile,
        backend,
        grid: result.grid,
        width: result.width,
        height: result.height,
        regenerated: result.images.map((im) => im.regenerated.length),
        changed: result.images.map((im) => im.changed.length),
        kept: result.images.map((im) => im.kept),
        seconds,
      });
    } finally {
      pipe.dispose();
    }
  }),
};
