/**
 * A tiny text-to-image pipeline trained inside the test, end to end: tokenizer, transformer with
 * its built-in text encoder, parallel decoding with guidance. On coloured squares named by their
 * colour, generated images must follow their prompts far better than chance.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/io/config.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { TextEncoderSpecSchema } from '../src/text/encoder.js';
import { COLOURS, dominantColour } from './helpers/shapes.js';
import { trainTinyPipeline } from './helpers/tiny-pipeline.js';
import { RefinerConfigSchema } from '../src/diffusion-refiner/config.js';
import { Refiner } from '../src/diffusion-refiner/refiner.js';
import { createTextEncoder } from '../src/text/encoder.js';

let tmp: string;
let pipe: MaskgenPipeline;
const losses: number[] = [];
const names = Object.keys(COLOURS);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-pipe-'));
  pipe = await trainTinyPipeline(tmp, { onStep: (_s, m) => losses.push(m.loss) });
});

afterAll(async () => {
  pipe?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

const accuracy = async (guidance: number, seed: number) => {
  const images = await pipe.generate({ prompts: names.map((c) => `a ${c} square`), n: 6, guidance, seed });
  const hits = images.filter((im) => dominantColour(im.image.data) === names.indexOf(im.prompt.split(' ')[1]!)).length;
  return hits / images.length;
};

describe('tiny pipeline on coloured squares', () => {
  it('the transformer learns: its loss falls', () => {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-20))).toBeLessThan(mean(losses.slice(0, 10)) * 0.7);
  });

  it('generated images follow their prompts far better than chance (25%)', async () => {
    const guided = await accuracy(3, 1);
    const unconditional = await accuracy(0, 1);
    expect(guided).toBeGreaterThanOrEqual(0.75);
    // with guidance 0 the prompt is ignored: back near chance
    expect(unconditional).toBeLessThan(guided - 0.3);
  });

  it('the same seed gives the same images; another seed other images', async () => {
    const a = await pipe.generate({ prompts: ['a red square'], n: 2, seed: 5 });
    const b = await pipe.generate({ prompts: ['a red square'], n: 2, seed: 5 });
    const c = await pipe.generate({ prompts: ['a red square'], n: 2, seed: 6 });
    expect(Array.from(b[0]!.tokens)).toEqual(Array.from(a[0]!.tokens));
    expect(Array.from(b[1]!.image.data)).toEqual(Array.from(a[1]!.image.data));
    expect(Array.from(c[0]!.tokens)).not.toEqual(Array.from(a[0]!.tokens));
  });

  it("uses the bundle's sampling settings where the options give none, and the options over them", async () => {
    const sampling = { steps: 4, guidance: 4, guidanceSchedule: 'linear' as const, temperature: 0.5, choiceTemperature: 1, polish: { rounds: 2, share: 0.25 } };
    const withDefaults = new MaskgenPipeline(pipe.tokenizer, pipe.text, pipe.transformer, undefined, sampling); // shares the models: not disposed
    const prompts = ['a red square', 'a blue square'];
    const fromBundle = await withDefaults.generate({ prompts, n: 2, seed: 3 });
    const explicit = await pipe.generate({ prompts, n: 2, seed: 3, ...sampling });
    expect(fromBundle.map((im) => Array.from(im.tokens))).toEqual(explicit.map((im) => Array.from(im.tokens)));
    const overridden = await withDefaults.generate({ prompts, n: 2, seed: 3, polish: { rounds: 0, share: 0.25 } });
    const unpolished = await pipe.generate({ prompts, n: 2, seed: 3, ...sampling, polish: undefined });
    expect(overridden.map((im) => Array.from(im.tokens))).toEqual(unpolished.map((im) => Array.from(im.tokens)));
    expect(overridden.map((im) => Array.from(im.tokens))).not.toEqual(fromBundle.map((im) => Array.from(im.tokens)));
    const constant = await withDefaults.generate({ prompts, n: 2, seed: 3, guidanceSchedule: 'constant' });
    expect(constant.map((im) => Array.from(im.tokens))).toEqual((await pipe.generate({ prompts, n: 2, seed: 3, ...sampling, guidanceSchedule: 'constant' })).map((im) => Array.from(im.tokens)));
    expect(constant.map((im) => Array.from(im.tokens))).not.toEqual(fromBundle.map((im) => Array.from(im.tokens)));
  });

  it('does not leak tensors across generations', async () => {
    await pipe.generate({ prompts: ['a blue square'], seed: 1 });
    const before = tf.memory().numTensors;
    await pipe.generate({ prompts: ['a blue square', 'a green square'], n: 2, seed: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('paint-with-words: regions at strength 0 change nothing, stronger ones change the images, and a word not in the prompt is refused', async () => {
    const base = { prompts: ['a red square', 'a blue square'], n: 2, seed: 7 };
    const plain = await pipe.generate(base);
    const regions = [{ word: 'square', box: { x: 0, y: 0, w: 8, h: 16 } }];
    const zero = await pipe.generate({ ...base, regions, regionStrength: 0 });
    expect(zero.map((im) => Array.from(im.tokens))).toEqual(plain.map((im) => Array.from(im.tokens)));
    const before = tf.memory().numTensors;
    const painted = await pipe.generate({ ...base, regions, regionStrength: 8 });
    expect(tf.memory().numTensors).toBe(before);
    expect(painted.map((im) => Array.from(im.tokens))).not.toEqual(plain.map((im) => Array.from(im.tokens)));
    const again = await pipe.generate({ ...base, regions, regionStrength: 8 });
    expect(again.map((im) => Array.from(im.tokens))).toEqual(painted.map((im) => Array.from(im.tokens)));
    await expect(pipe.generate({ ...base, regions: [{ word: 'circle', box: { x: 0, y: 0, w: 4, h: 4 } }] })).rejects.toThrow(/'circle' is not a word of the prompt/);
  });

  it('refuses an empty prompt', async () => {
    await expect(pipe.generate({ prompts: ['  '] })).rejects.toThrow(/empty/);
  });

  it('with a refiner, generate returns refined images twice the size and keeps the base image', async () => {
    const spec = await loadConfig(TextEncoderSpecSchema, 'tiny', 'textEncoder');
    const text = await createTextEncoder(spec, { captions: ['a red square'] });
    const config = RefinerConfigSchema.parse({
      size: 32,
      factor: 2,
      channels: 3,
      autoencoder: { channels: [4, 4, 4], latentChannels: 2 },
      denoiser: { patch: 1, width: 16, depth: 1, heads: 2, mlpRatio: 2 },
      textDim: text.dim,
    });
    const refiner = Refiner.create(config, text, 3);
    const withRefiner = new MaskgenPipeline(pipe.tokenizer, pipe.text, pipe.transformer, refiner);
    try {
      const before = tf.memory().numTensors;
      const opts = { prompts: ['a red square', 'a blue square'], n: 1, seed: 4, refine: { steps: 3, guidance: 2 } };
      const images = await withRefiner.generate(opts);
      expect(tf.memory().numTensors).toBe(before);
      expect(images.map((im) => [im.image.width, im.image.height, im.base?.width])).toEqual([[32, 32, 16], [32, 32, 16]]);
      const plain = await pipe.generate({ ...opts, refine: undefined });
      expect(Array.from(images[1]!.base!.data)).toEqual(Array.from(plain[1]!.image.data));
      const again = await withRefiner.generate(opts);
      expect(Array.from(again[0]!.image.data)).toEqual(Array.from(images[0]!.image.data));
      await expect(pipe.generate({ ...opts })).rejects.toThrow(/no refiner part/);
      await expect(MaskgenPipeline.load(path.join(tmp, 'run'), { refiner: true })).rejects.toThrow(/has no 'refiner' part/);
      await expect(withRefiner.refine([images[0]!.image], ['a red square'])).rejects.toThrow(/takes 16×16×3 images, got 32×32×3/);
    } finally {
      refiner.dispose();
    }
  });
});
