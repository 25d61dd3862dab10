/**
 * The model shipped in models/maskgen-emoji-small, as the README's first command uses it: it loads
 * with every part (refiner included), stays within its size budget, credits the artwork, and draws
 * what colour prompts ask for (green vs blue vs yellow hearts, by their mean non-white colour).
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelIndex } from '../src/io/bundle.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { bytesUnder } from './helpers/files.js';
import { COLOURS, dominantColour } from './helpers/shapes.js';

const bundle = path.resolve(import.meta.dirname, '..', 'models', 'maskgen-emoji-small');
let pipe: MaskgenPipeline;

beforeAll(async () => {
  pipe = await MaskgenPipeline.load(bundle);
});

afterAll(() => pipe?.dispose());

describe('the shipped model', () => {
  it('has every part, float16 weights, credits, and fits in 20 MB', async () => {
    const index = await readModelIndex(bundle);
    expect(Object.keys(index.parts).sort()).toEqual(['refiner', 'text-encoder', 'transformer', 'vqgan']);
    expect(index.dtype).toBe('float16');
    expect(index.credits?.join(' ')).toMatch(/Twemoji.*CC-BY 4\.0/);
    expect(index.credits?.join(' ')).toMatch(/Noto.*Apache/);
    expect(await bytesUnder(bundle)).toBeLessThan(20e6);
    expect(pipe.refiner).toBeDefined();
  });

  it('generates 32 px base images refined to 64 px whose colour follows the prompt', async () => {
    const names = ['green', 'blue', 'yellow'];
    const images = await pipe.generate({ prompts: names.map((c) => `${c} heart`), n: 3, seed: 1, refine: { steps: 8 } });
    expect(images.map((im) => [im.image.width, im.base?.width])).toEqual(Array(9).fill([64, 32]));
    const colourIndex = (c: string) => Object.keys(COLOURS).indexOf(c);
    const hits = images.filter((im) => dominantColour(im.image.data) === colourIndex(im.prompt.split(' ')[0]!)).length;
    expect(hits).toBeGreaterThanOrEqual(7);
  });

  it('does not leak tensors', async () => {
    const before = tf.memory().numTensors;
    await pipe.generate({ prompts: ['fire'], n: 1, seed: 2, refine: { steps: 2 } });
    expect(tf.memory().numTensors).toBe(before);
  });
});
