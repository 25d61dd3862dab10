/**
 * The refiner's commands as a user runs them: train-refiner (with a held-out split) → refine → a
 * PNG twice the size; generate --refine without a refiner names the problem; bench refine prints JSON.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePng } from '../src/data/images.js';
import { lastJson, runMaskgen } from './helpers/cli.js';
import { makeShapes } from './helpers/shapes.js';

let tmp: string;

const maskgen = (...args: string[]) => runMaskgen(tmp, ['--backend', 'wasm', ...args]);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-cli-refiner-'));
  const set = makeShapes(80, 16, 9);
  const dir = path.join(tmp, 'data');
  await mkdir(dir);
  const per = 16 * 16 * 3;
  const lines: string[] = [];
  for (let i = 0; i < set.count; i++) {
    await writePng(path.join(dir, set.files[i]!), { data: set.pixels.subarray(i * per, (i + 1) * per), width: 16, height: 16, channels: 3 });
    lines.push(JSON.stringify({ file_name: set.files[i], text: set.captions[i] }));
  }
  await writeFile(path.join(dir, 'metadata.jsonl'), lines.join('\n') + '\n');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('maskgen train-refiner / refine', () => {
  it('trains, holds out a seeded share, and refines a PNG to twice its size', async () => {
    const train = await maskgen('train-refiner', '--config', 'tiny', '--data', 'data', '--out', 'run', '--hold-out', '0.25', '--autoencoder-steps', '20', '--steps', '20', '--json');
    expect(train.code, train.stderr).toBe(0);
    const result = lastJson(train.stdout);
    expect(result.interrupted).toBe(false);
    expect(result.latentScale).toBeGreaterThan(0);
    const held = JSON.parse(await readFile(path.join(tmp, 'run', 'holdout.json'), 'utf8')) as { files: string[] };
    expect(held.files.length).toBe(20);
    expect(train.stderr).toContain('60 training images (20 held out');

    await writePng(path.join(tmp, 'low.png'), { data: new Uint8Array(8 * 8 * 3).fill(200), width: 8, height: 8, channels: 3 });
    const refined = await maskgen('refine', '--image', 'low.png', '--prompt', 'a red square', '--bundle', 'run', '--out', 'big.png', '--steps', '3', '--json');
    expect(refined.code, refined.stderr).toBe(0);
    const meta = await sharp(path.join(tmp, 'big.png')).metadata();
    expect([meta.width, meta.height]).toEqual([16, 16]);
    expect(lastJson(refined.stdout).size).toBe(16);

    const again = await maskgen('train-refiner', '--config', 'tiny', '--data', 'data', '--out', 'run');
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n').at(-1)).toMatch(/^maskgen: error: .*--resume/);
  });

  it('refuses a bundle without a refiner and a bad --hold-out, each with one line', async () => {
    await mkdir(path.join(tmp, 'empty-bundle'), { recursive: true });
    await writeFile(path.join(tmp, 'empty-bundle', 'model_index.json'), JSON.stringify({ library: 'maskgen', version: '0.1.0', parts: {} }));
    const r = await maskgen('refine', '--image', 'low.png', '--prompt', 'x', '--bundle', 'empty-bundle');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^maskgen: error: bundle empty-bundle has no 'refiner' part/);
    const h = await maskgen('train-refiner', '--config', 'tiny', '--data', 'data', '--out', 'x', '--hold-out', '1.5');
    expect(h.code).toBe(1);
    expect(h.stderr.trim().split('\n').at(-1)).toMatch(/--hold-out must be a fraction/);
  });

  it('bench refine prints one JSON object with sampling and training speeds', async () => {
    const b = await maskgen('bench', 'refine', '--config', 'tiny', '--runs', '1', '--steps', '2', '--json');
    expect(b.code, b.stderr).toBe(0);
    const j = lastJson(b.stdout);
    expect(j.bench).toBe('refine');
    for (const k of ['msPerImage', 'imagesPerSec', 'msPerSamplerStep', 'msPerAutoencoderStep', 'msPerDenoiserStep']) expect(j[k]).toBeGreaterThan(0);
    // compiled (the onnx backend): each training step's per-kernel time beside it
    for (const k of ['msPerAutoencoderStepPerKernel', 'autoencoderSpeedup', 'msPerDenoiserStepPerKernel', 'denoiserSpeedup']) {
      if (j.compiled) expect(j[k]).toBeGreaterThan(0);
      else expect(j[k]).toBeUndefined();
    }
  });

  it('generate with the shipped bundle refines by default; --no-refine gives the base images', async () => {
    const g = await maskgen('generate', '--prompt', 'green heart', '--n', '1', '--steps', '4', '--refine-steps', '2', '--out', 'gen', '--json');
    expect(g.code, g.stderr).toBe(0);
    expect((await sharp(path.join(tmp, 'gen', 'green-heart-0.png')).metadata()).width).toBe(64);
    expect((await sharp(path.join(tmp, 'gen', 'green-heart-0-base.png')).metadata()).width).toBe(32);
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'gen', 'green-heart-0.json'), 'utf8')) as { refine: unknown };
    expect(sidecar.refine).toEqual({ steps: 2, guidance: 1 });
    const plain = await maskgen('generate', '--prompt', 'green heart', '--n', '1', '--steps', '4', '--no-refine', '--out', 'plain');
    expect(plain.code, plain.stderr).toBe(0);
    expect((await sharp(path.join(tmp, 'plain', 'green-heart-0.png')).metadata()).width).toBe(32);
  });
});
