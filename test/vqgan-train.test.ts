/**
 * The tokenizer end to end on real images: Twemoji PNGs from the emoji-datasource-twitter package,
 * imported with the real importer, trained with the `tiny` preset, evaluated, saved, loaded, resumed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagesToTensor } from '../src/data/batches.js';
import { importEmoji } from '../src/data/emoji.js';
import { loadImageFolder, type ImageSet } from '../src/data/imagefolder.js';
import { UserError } from '../src/errors.js';
import { loadConfig } from '../src/io/config.js';
import { VqganConfigSchema, VqganTrainSchema, type VqganConfig, type VqganTrainConfig } from '../src/vqgan/config.js';
import { evaluateReconstruction } from '../src/vqgan/evaluate.js';
import { loadTokenizer } from '../src/vqgan/io.js';
import type { VitVqgan } from '../src/vqgan/model.js';
import { runTokenizerTraining } from '../src/vqgan/run.js';

let tmp: string;
let data: ImageSet;
let model: VqganConfig;
let train: VqganTrainConfig;
let trained: VitVqgan;
const losses: number[] = [];
const tensorCounts: number[] = [];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-vqgan-'));
  model = await loadConfig(VqganConfigSchema, 'tiny', 'vqgan');
  train = await loadConfig(VqganTrainSchema, 'tiny', 'vqganTrain');
  await importEmoji({ vendors: ['twitter'], out: path.join(tmp, 'emoji'), size: 64, limit: 256, onWarning: () => {} });
  data = await loadImageFolder(path.join(tmp, 'emoji'), { size: model.imageSize, channels: model.channels });
  const result = await runTokenizerTraining({
    data,
    model,
    train,
    out: path.join(tmp, 'run'),
    onStep: (step, m) => {
      losses.push(m.l2);
      if (step > 5) tensorCounts.push(tf.memory().numTensors);
    },
  });
  trained = result.model;
});

afterAll(async () => {
  trained?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('tiny tokenizer on real emoji', () => {
  it('imports real images', () => {
    expect(data.count).toBeGreaterThanOrEqual(200);
    expect(data.width).toBe(model.imageSize);
  });

  it('learns: the pixel loss falls', () => {
    expect(losses).toHaveLength(train.steps);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(losses.slice(0, 10));
    const last = mean(losses.slice(-20));
    expect(last).toBeLessThan(first * 0.4);
  });

  it('does not leak tensors across training steps', () => {
    // the discriminator switches on mid-run and adds its variables once; after that the count is flat
    const afterDisc = tensorCounts.slice(train.adversarial.start + 5);
    expect(Math.max(...afterDisc)).toBe(Math.min(...afterDisc));
    const beforeDisc = tensorCounts.slice(0, train.adversarial.start - 10);
    expect(Math.max(...beforeDisc)).toBe(Math.min(...beforeDisc));
  });

  it('reconstructs the images above a fixed PSNR bar and uses much of its codebook', async () => {
    const report = await evaluateReconstruction(trained, data.count, (s, n) => imagesToTensor(data, range(n).map((i) => s + i)));
    expect(report.n).toBe(data.count);
    expect(report.psnr).toBeGreaterThan(16.5);
    expect(report.ssim).toBeGreaterThan(0.45);
    expect(report.codebookUsage).toBeGreaterThan(0.5);
  });

  it('save → load gives identical tokens and images', async () => {
    const loaded = await loadTokenizer(path.join(tmp, 'run'));
    const x = imagesToTensor(data, range(8));
    const [t1, t2] = [trained.encode(x), loaded.encode(x)];
    expect(Array.from(t2.dataSync())).toEqual(Array.from(t1.dataSync()));
    const [y1, y2] = [trained.decode(t1), loaded.decode(t1)];
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y1.dataSync()));
    tf.dispose([x, t1, t2, y1, y2]);
    loaded.dispose();
  });

  it('resumes from its checkpoint at the saved step', async () => {
    const more = { ...train, steps: train.steps + 3 };
    const steps: number[] = [];
    const r = await runTokenizerTraining({ data, model, train: more, out: path.join(tmp, 'run'), resume: true, onStep: (s) => steps.push(s) });
    expect(steps).toEqual([train.steps + 1, train.steps + 2, train.steps + 3]);
    r.model.dispose();
  });

  it('refuses to overwrite a run without --resume, and to resume with another model config', async () => {
    await expect(runTokenizerTraining({ data, model, train, out: path.join(tmp, 'run') })).rejects.toThrow(/--resume/);
    const other = { ...model, codeDim: model.codeDim * 2 };
    const err = await runTokenizerTraining({ data, model: other, train, out: path.join(tmp, 'run'), resume: true }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(String(err.message)).toMatch(/different config: model\.codeDim/);
  });
});
