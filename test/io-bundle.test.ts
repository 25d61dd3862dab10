import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { partDir, readModelIndex, writeModelIndex } from '../src/io/bundle.js';
import { packageVersion } from '../src/io/config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'maskgen-bundle-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function userError(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('model bundle index', () => {
  it('round-trips, filling in library and version', async () => {
    const b = path.join(dir, 'b1');
    await writeModelIndex(b, {
      parts: { vqgan: 'vqgan', 'text-encoder': 'text-encoder', transformer: 'transformer' },
      credits: ['Fashion-MNIST (MIT)'],
      trainedSteps: 1000,
    });
    expect(await readdir(b)).toEqual(['model_index.json']);
    const raw = JSON.parse(await readFile(path.join(b, 'model_index.json'), 'utf8'));
    expect(raw.library).toBe('maskgen');
    const index = await readModelIndex(b);
    expect(index).toEqual({
      library: 'maskgen',
      version: packageVersion(),
      parts: { vqgan: 'vqgan', 'text-encoder': 'text-encoder', transformer: 'transformer' },
      credits: ['Fashion-MNIST (MIT)'],
      trainedSteps: 1000,
    });
    expect(partDir(b, 'vqgan')).toBe(path.join(b, 'vqgan'));
    expect(partDir(b, 'transformer', index)).toBe(path.join(b, 'transformer'));
    expect(await userError(() => partDir(b, 'refiner', index))).toBe(`bundle ${b} has no 'refiner' part (it has vqgan, text-encoder, transformer)`);
  });

  it('keeps a given version and maps parts to their subfolders', async () => {
    const b = path.join(dir, 'b2');
    await writeModelIndex(b, { version: '9.9.9', parts: { vqgan: 'parts/tok' } });
    const index = await readModelIndex(b);
    expect(index.version).toBe('9.9.9');
    expect(partDir(b, 'vqgan', index)).toBe(path.join(b, 'parts', 'tok'));
  });

  it('a folder that is not a bundle is a UserError saying so', async () => {
    const none = path.join(dir, 'none');
    expect(await userError(() => readModelIndex(none))).toBe(`bundle ${none}: no such folder`);
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    expect(await userError(() => readModelIndex(empty))).toBe(`${empty} is not a maskgen model bundle (no model_index.json)`);
    const diffusers = path.join(dir, 'diffusers');
    await mkdir(diffusers);
    await writeFile(path.join(diffusers, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
    expect(await userError(() => readModelIndex(diffusers))).toBe(`${diffusers} is not a maskgen model bundle (model_index.json names no library)`);
    await writeFile(path.join(diffusers, 'model_index.json'), JSON.stringify({ library: 'diffusers' }));
    expect(await userError(() => readModelIndex(diffusers))).toMatch(/is not a maskgen model bundle \(model_index.json is for library "diffusers"\)$/);
    const file = path.join(dir, 'afile');
    await writeFile(file, 'x');
    expect(await userError(() => readModelIndex(file))).toMatch(/^bundle .*afile: not a folder/);
  });

  it('a broken index names the file and the field', async () => {
    const b = path.join(dir, 'broken');
    await mkdir(b);
    const f = path.join(b, 'model_index.json');
    await writeFile(f, JSON.stringify({ library: 'maskgen', version: '0.1.0', parts: { vqgan: 3 } }));
    expect(await userError(() => readModelIndex(b))).toBe(`${f}: parts.vqgan: expected string, received number`);
    await writeFile(f, JSON.stringify({ library: 'maskgen', version: '0.1.0', parts: { vqgan: '../elsewhere' } }));
    expect(await userError(() => readModelIndex(b))).toBe(`${f}: parts.vqgan: must be a subfolder inside the bundle`);
    await writeFile(f, '{"library": "maskgen",');
    expect(await userError(() => readModelIndex(b))).toMatch(/model_index\.json: invalid JSON/);
  });

  it("reads the bundle's sampling settings, a guidance schedule among them, and names a bad one", async () => {
    const b = path.join(dir, 'sampling');
    await mkdir(b);
    const f = path.join(b, 'model_index.json');
    const sampling = { guidance: 4, guidanceSchedule: 'linear', choiceTemperature: 12, maskFree: { strength: 0.1, revert: 0.15 } };
    await writeFile(f, JSON.stringify({ library: 'maskgen', version: '0.1.0', parts: { vqgan: 'vqgan' }, sampling }));
    expect((await readModelIndex(b)).sampling).toEqual(sampling);
    await writeFile(f, JSON.stringify({ library: 'maskgen', version: '0.1.0', parts: { vqgan: 'vqgan' }, sampling: { ...sampling, guidanceSchedule: 'cosine' } }));
    expect(await userError(() => readModelIndex(b))).toMatch(/sampling\.guidanceSchedule/);
  });
});
