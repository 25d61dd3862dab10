/**
 * Runs one job on a loaded pipeline, the same way in the embedded server and in a BullMQ worker:
 * reports every decoding step with previews of the partly decoded images, then the refiner's steps,
 * and returns PNGs with their settings. Between steps it lets the event loop turn (so a server keeps
 * answering and a worker keeps its lock) and checks the job's deadline.
 */
import os from 'node:os';
import { encodePng, readImage, type RawImage } from '../data/images.js';
import { scaleBox, scaleMask } from '../decoding/index.js';
import { REFINE_DEFAULTS } from '../diffusion-refiner/config.js';
import { UserError } from '../errors.js';
import { beforeOnCanvas, type EditOptions, type MaskgenPipeline, type StepPreview } from '../pipeline.js';
import { JobTimeoutError, type EditJob, type GenerateJob, type JobProgress, type JobResult, type JobSpec } from './jobs.js';
import { nextTurn } from '../event-loop.js';

export interface RunContext {
  /** Called at every step; a returned promise is awaited. */
  onProgress?: (p: JobProgress) => void | Promise<void>;
  /** The job fails with JobTimeoutError once this much time has passed (ms; default none). */
  timeoutMs?: number;
}

/** Runs jobs on one pipeline; one at a time (the backend is not re-entrant), callers queue. */
export interface JobRunner {
  run(spec: JobSpec, ctx?: RunContext): Promise<JobResult>;
  /** Who runs the jobs: host:pid. */
  readonly worker: string;
}

export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}

const base64 = async (im: RawImage<Uint8Array | Float32Array>) => (await encodePng(im)).toString('base64');

export function createRunner(pipe: MaskgenPipeline, info: { bundle: string; backend: string }): JobRunner {
  const worker = workerName();
  let busy = false;

  /** The onStep of a pipeline call: checks the deadline, reports (with previews), yields. */
  const stepper = (ctx: RunContext, deadline: number) => async (done: number, total: number, preview?: StepPreview) => {
    if (Date.now() > deadline) throw new JobTimeoutError(Math.round((ctx.timeoutMs ?? 0) / 1000));
    const previews = preview ? await Promise.all(preview.images.map(base64)) : undefined;
    await ctx.onProgress?.({ phase: 'decode', step: done, total, worker, ...(previews ? { previews, first: preview!.first } : {}) });
    await nextTurn();
  };

  const generate = async (spec: GenerateJob, ctx: RunContext, deadline: number, t0: number): Promise<JobResult> => {
    const refine = spec.refine && pipe.refiner !== undefined;
    const refineSteps = spec.refineSteps ?? REFINE_DEFAULTS.steps;
    const settings = { steps: spec.steps, guidance: spec.guidance, negativePrompt: spec.negativePrompt };
    const images = await pipe.generate({
      prompts: spec.prompts,
      n: spec.n,
      ...settings,
      seed: spec.seed,
      preview: spec.preview !== false,
      onStep: stepper(ctx, deadline),
      refine: refine
        ? {
            steps: refineSteps,
            guidance: REFINE_DEFAULTS.guidance,
            onStep: (done, total) => {
              if (Date.now() > deadline) throw new JobTimeoutError(Math.round((ctx.timeoutMs ?? 0) / 1000));
              // The refiner does not wait for its onStep: a failed report must not become an unhandled rejection.
              Promise.resolve(ctx.onProgress?.({ phase: 'refine', step: done, total, worker })).catch(() => {});
            },
          }
        : false,
    });
    const refineSettings = refine ? { steps: refineSteps, guidance: REFINE_DEFAULTS.guidance } : false;
    return {
      kind: 'generate',
      images: await Promise.all(
        images.map(async (im) => ({
          png: await base64(im.image),
          ...(im.base ? { base: await base64(im.base) } : {}),
          settings: { prompt: im.prompt, index: im.index, seed: spec.seed, batchSeed: im.seed, bundle: info.bundle, backend: info.backend, ...settings, refine: refineSettings },
        })),
      ),
      seconds: (Date.now() - t0) / 1000,
      worker,
      backend: info.backend,
    };
  };

  const edit = async (spec: EditJob, ctx: RunContext, deadline: number, t0: number): Promise<JobResult> => {
    const { imageSize: S, channels, patchSize } = pipe.tokenizer.config;
    const { width: W, height: H } = spec.imageSize;
    const image = await readImage(Buffer.from(spec.image, 'base64'), { size: S, channels });
    // Only what was asked: the pipeline resolves the rest (the bundle's, else the library's) and reports it.
    const settings = { steps: spec.steps, guidance: spec.guidance, negativePrompt: spec.negativePrompt };
    const common = { image, prompt: spec.prompt, n: spec.n, seed: spec.seed, ...settings, preview: spec.preview !== false, onStep: stepper(ctx, deadline) };
    let opts: EditOptions;
    const geometry: Record<string, unknown> = {};
    if (spec.mode === 'inpaint') {
      if (spec.box) {
        opts = { ...common, mode: 'inpaint', box: (geometry.boxScaled = scaleBox(spec.box, W, H, S)) };
      } else {
        const raw = await readImage(Buffer.from(spec.mask!, 'base64'), { size: { width: W, height: H }, channels: 1, background: 'black' });
        const mask = scaleMask(raw.data, W, H, S);
        if (!mask.some((v) => v)) throw new UserError('mask: no white pixel (white = regenerate), nothing to edit');
        opts = { ...common, mode: 'inpaint', mask };
      }
    } else if (spec.mode === 'outpaint') {
      const e = spec.extend!;
      const extend = { left: Math.ceil((e.left * S) / W), top: Math.ceil((e.top * S) / H), right: Math.ceil((e.right * S) / W), bottom: Math.ceil((e.bottom * S) / H) };
      opts = { ...common, mode: 'outpaint', extend: (geometry.extendScaled = extend) };
    } else {
      opts = { ...common, mode: 'mask-free', stepsPerIteration: spec.steps, strength: spec.strength, iterations: spec.iterations };
    }
    const result = await pipe.edit(opts);
    const { image: _image, mask: _mask, kind: _kind, preview: _preview, ...request } = spec;
    return {
      kind: 'edit',
      images: await Promise.all(
        result.images.map(async (im) => ({
          png: await base64(im.image),
          settings: {
            ...request,
            ...geometry,
            ...result.settings,
            modelSize: S,
            patchSize,
            width: result.width,
            height: result.height,
            index: im.index,
            batchSeed: im.seed,
            kept: im.kept,
            regenerated: im.regenerated,
            changed: im.changed,
            bundle: info.bundle,
            backend: info.backend,
          },
        })),
      ),
      before: await base64(beforeOnCanvas(image, result.layout)),
      seconds: (Date.now() - t0) / 1000,
      worker,
      backend: info.backend,
    };
  };

  return {
    worker,
    async run(spec, ctx = {}) {
      if (busy) throw new Error('the runner is busy: the backend runs one job at a time');
      busy = true;
      const t0 = Date.now();
      const deadline = ctx.timeoutMs ? t0 + ctx.timeoutMs : Infinity;
      try {
        return spec.kind === 'generate' ? await generate(spec, ctx, deadline, t0) : await edit(spec, ctx, deadline, t0);
      } finally {
        busy = false;
      }
    },
  };
}
