import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { imagesToFloat32 } from '../src/data/batches.js';
import { boxDownsample } from '../src/data/rescale.js';
import { RefinerTrainSchema } from '../src/diffusion-refiner/config.js';
import { loadRefiner } from '../src/diffusion-refiner/io.js';
import type { Refiner } from '../src/diffusion-refiner/refiner.js';
import { runRefinerTraining, unitVarianceScale } from '../src/diffusion-refiner/run.js';
import { readModelIndex } from '../src/io/bundle.js';
import { loadConfig } from '../src/io/config.js';
import { TextEncoderSpecSchema } from '../src/text/encoder.js';
import { makeShapes } from './helpers/shapes.js';

let tmp: string;
let refiner: Refiner;
const data = makeShapes(192, 16, 5);
let lowImages: Float32Array;
const prompts = ['a red square', 'a blue square', 'a green square'];

function logLosses(text: string): number[] {
  return text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-refiner-'));
  const refinerSection = await loadConfig(z.record(z.string(), z.unknown()), 'tiny', 'refiner');
  const text = await loadConfig(TextEncoderSpecSchema, 'tiny', 'textEncoder');
  const train = await loadConfig(RefinerTrainSchema, 'tiny', 'refinerTrain');
  const result = await runRefinerTraining({ data, refiner: refinerSection, text, train, out: tmp });
  refiner = result.refiner!;
  const x = imagesToFloat32(data, [0, 1, 2]).map((v) => v * 2 - 1);
  lowImages = boxDownsample(x, 3, 16, 3, 2);
}, 300_000);

afterAll(async () => {
  refiner?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('refiner training (tiny, coloured squares)', () => {
  it('the autoencoder and the denoiser both learn: their losses fall', async () => {
    const ae = logLosses(await readFile(path.join(tmp, 'logs', 'refiner-autoencoder.jsonl'), 'utf8'));
    const dn = logLosses(await readFile(path.join(tmp, 'logs', 'refiner.jsonl'), 'utf8'));
    expect(ae.length).toBe(15);
    expect(mean(ae.slice(-3))).toBeLessThan(0.5 * mean(ae.slice(0, 2)));
    expect(dn.length).toBe(20);
    expect(mean(dn.slice(-4))).toBeLessThan(0.8 * mean(dn.slice(0, 2)));
  });

  it('writes a bundle with a refiner part and a unit-variance latent scale', async () => {
    const index = await readModelIndex(tmp);
    expect(index.parts.refiner).toBe('refiner');
    expect(refiner.config.latentScale).toBeGreaterThan(0);
    const z = tf.tidy(() => refiner.encode(tf.tensor4d(imagesToFloat32(data, [0, 1, 2, 3, 4, 5, 6, 7]).map((v) => v * 2 - 1), [8, 16, 16, 3])));
    const std = 1 / unitVarianceScale(z.dataSync() as Float32Array);
    z.dispose();
    expect(std).toBeGreaterThan(0.5);
    expect(std).toBeLessThan(2);
  });

  it('refines to twice the size, deterministically by seed, and without growing the tensor count', () => {
    const before = tf.memory().numTensors;
    const a = refiner.refine(lowImages, prompts, { steps: 5, guidance: 3, seed: 1 });
    expect(tf.memory().numTensors).toBe(before);
    expect(a.length).toBe(3 * 16 * 16 * 3);
    for (const v of a) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    const b = refiner.refine(lowImages, prompts, { steps: 5, guidance: 3, seed: 1 });
    expect(Array.from(b)).toEqual(Array.from(a));
    const c = refiner.refine(lowImages, prompts, { steps: 5, guidance: 3, seed: 2 });
    expect(Array.from(c)).not.toEqual(Array.from(a));
    // image i's result does not depend on the batch it was refined in
    const alone = refiner.refine(lowImages.subarray(0, (8 * 8 * 3)), [prompts[0]!], { steps: 5, guidance: 3, seed: 1 });
    // (equal up to float rounding: engines may order a product's sums differently for another batch size)
    const first = a.subarray(0, 16 * 16 * 3);
    expect(Math.max(...alone.map((v, i) => Math.abs(v - first[i]!)))).toBeLessThan(1e-4);
  });

  it('follows the low-resolution input: refined then box-downsampled is near the input', () => {
    const out = refiner.refine(lowImages, prompts, { steps: 10, guidance: 1, seed: 3 });
    const down = boxDownsample(out, 3, 16, 3, 2);
    let err = 0;
    let base = 0;
    const meanLow = mean(Array.from(lowImages));
    for (let i = 0; i < down.length; i++) {
      err += Math.abs(down[i]! - lowImages[i]!);
      base += Math.abs(meanLow - lowImages[i]!);
    }
    expect(err / down.length).toBeLessThan(0.5 * (base / down.length));
  });

  it('guidance changes the result; s = 0 and s = 1 are single passes', () => {
    const s0 = refiner.refine(lowImages, prompts, { steps: 4, guidance: 0, seed: 4 });
    const s1 = refiner.refine(lowImages, prompts, { steps: 4, guidance: 1, seed: 4 });
    const s3 = refiner.refine(lowImages, prompts, { steps: 4, guidance: 3, seed: 4 });
    expect(Array.from(s1)).not.toEqual(Array.from(s0));
    expect(Array.from(s3)).not.toEqual(Array.from(s1));
  });

  it('save → load gives identical output', async () => {
    const loaded = await loadRefiner(tmp);
    try {
      const a = refiner.refine(lowImages, prompts, { steps: 4, guidance: 2, seed: 7 });
      const b = loaded.refine(lowImages, prompts, { steps: 4, guidance: 2, seed: 7 });
      expect(Array.from(b)).toEqual(Array.from(a));
      expect(loaded.config).toEqual(refiner.config);
    } finally {
      loaded.dispose();
    }
  });

  it('rejects input of the wrong size and an existing run without resume', async () => {
    expect(() => refiner.refine(new Float32Array(10), ['x'])).toThrow(/low-resolution values/);
    const refinerSection = await loadConfig(z.record(z.string(), z.unknown()), 'tiny', 'refiner');
    const text = await loadConfig(TextEncoderSpecSchema, 'tiny', 'textEncoder');
    const train = await loadConfig(RefinerTrainSchema, 'tiny', 'refinerTrain');
    await expect(runRefinerTraining({ data, refiner: refinerSection, text, train, out: tmp })).rejects.toThrow(/--resume/);
    const wrong = makeShapes(32, 8, 1);
    await expect(runRefinerTraining({ data: wrong, refiner: refinerSection, text, train, out: path.join(tmp, 'x') })).rejects.toThrow(/8×8×3 but the refiner is for 16×16×3/);
  });

  it('an interrupted run resumes in either stage and finishes with the full step counts', async () => {
    const refinerSection = await loadConfig(z.record(z.string(), z.unknown()), 'tiny', 'refiner');
    const text = await loadConfig(TextEncoderSpecSchema, 'tiny', 'textEncoder');
    const train = { ...(await loadConfig(RefinerTrainSchema, 'tiny', 'refinerTrain')), autoencoderSteps: 30, steps: 30, checkpointEvery: 10 };
    const out = path.join(tmp, 'resume');
    const small = makeShapes(48, 16, 2);
    const stopAt = (stage: string, at: number) => {
      let current = { stage: '', step: 0 };
      return {
        onStep: (st: string, step: number) => (current = { stage: st, step }),
        shouldStop: () => current.stage === stage && current.step >= at,
      };
    };
    const a = stopAt('autoencoder', 12);
    const first = await runRefinerTraining({ data: small, refiner: refinerSection, text, train, out, onStep: a.onStep, shouldStop: a.shouldStop });
    expect(first.interrupted).toBe(true);
    expect(first.refiner).toBeUndefined();
    const d = stopAt('denoiser', 7);
    const second = await runRefinerTraining({ data: small, refiner: refinerSection, text, train, out, resume: true, onStep: d.onStep, shouldStop: d.shouldStop });
    expect(second.interrupted).toBe(true);
    second.refiner!.dispose();
    const steps: string[] = [];
    const third = await runRefinerTraining({ data: small, refiner: refinerSection, text, train, out, resume: true, onStep: (st, step) => steps.push(`${st}:${step}`) });
    expect(third.interrupted).toBe(false);
    expect(steps[0]).toBe('denoiser:8');
    expect(steps.at(-1)).toBe('denoiser:30');
    expect(third.latentScale).toBe(second.latentScale);
    third.refiner!.dispose();
    const aeLog = logLosses(await readFile(path.join(out, 'logs', 'refiner-autoencoder.jsonl'), 'utf8'));
    expect(aeLog.length).toBe(3); // steps 10, 20, 30 across the interruption
  }, 120_000);
});
