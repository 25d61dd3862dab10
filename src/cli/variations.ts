/**
 * `maskgen generate --image I --variations`: new images like a given one (src/pipelines/variations.ts).
 * Called by generate.ts once the bundle is loaded and the sampling settings are known.
 */
import path from 'node:path';
import { captionFor } from '../data/imagefolder.js';
import { makeGrid, readImage, writePng } from '../data/images.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { GenerateOptions, MaskgenPipeline } from '../pipeline.js';
import { progress, type Progress } from './progress.js';

export interface VariationsCliOptions {
  image: string;
  /** The --prompt given, if any (else the image's caption from its folder's metadata.jsonl, else none). */
  prompt?: string;
  strength: number;
  n: number;
  seed: number;
  batchSize: number;
  out: string;
  settings: Omit<GenerateOptions, 'prompts'>;
}

/** Writes variation-<i>.png, grid.png (source first), variations.json; returns what `--json` prints. */
export async function writeVariations(pipe: MaskgenPipeline, o: VariationsCliOptions): Promise<Record<string, unknown>> {
  const { imageSize: S, channels } = pipe.tokenizer.config;
  const image = await readImage(o.image, { size: S, channels });
  const caption = o.prompt === undefined ? await captionFor(o.image) : undefined;
  const prompt = o.prompt ?? caption ?? '';
  process.stderr.write(
    `maskgen: variations of ${o.image} (resized to ${S}×${S}) ${prompt === '' ? 'without a prompt (no --prompt, no caption in its folder)' : `toward "${prompt}"${caption !== undefined ? ' (its caption)' : ''}`}\n`,
  );
  let bar: Progress | undefined;
  const t0 = Date.now();
  const res = await pipe.variations({
    ...o.settings,
    image,
    prompt,
    strength: o.strength,
    n: o.n,
    seed: o.seed,
    batchSize: o.batchSize,
    onStep: (done, total) => (bar ??= progress('variations', total)).update(done),
  });
  bar?.stop();
  const seconds = (Date.now() - t0) / 1000;
  const files: string[] = [];
  for (const v of res.images) {
    const file = path.join(o.out, `variation-${v.index}.png`);
    await writePng(file, v.image);
    files.push(file);
  }
  const source = { ...image, data: Float32Array.from(image.data, (x) => x / 255) };
  await writePng(path.join(o.out, 'grid.png'), makeGrid([source, ...res.images.map((v) => v.image)], 1 + res.images.length, 2));
  const N = res.sourceTokens.length;
  const changedShare = res.images.reduce((a, v) => a + v.changed.length, 0) / (N * res.images.length);
  const summary = {
    image: o.image,
    prompt,
    promptFrom: o.prompt !== undefined ? 'prompt' : caption !== undefined ? 'caption' : 'none',
    strength: res.strength,
    steps: res.steps,
    seed: o.seed,
    ...o.settings,
    changedShare,
    variations: res.images.map((v) => ({ index: v.index, file: files[v.index], batchSeed: v.seed, changed: v.changed.length, remasked: v.remasked.length })),
  };
  await writeFileAtomic(path.join(o.out, 'variations.json'), JSON.stringify(summary, null, 2) + '\n');
  process.stderr.write(
    `maskgen: ${files.length} variations in ${seconds.toFixed(1)}s, ${res.steps} decoding steps each, ${(100 * changedShare).toFixed(1)}% of the tokens changed → ${o.out}/ (grid.png: the source, then the variations)\n`,
  );
  return { out: o.out, images: files.length, seconds, files, prompt, strength: res.strength, steps: res.steps, changedShare };
}
