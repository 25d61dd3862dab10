import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelIndex, writeModelIndex } from '../src/io/bundle.js';
import { loadCheckpoint, saveCheckpoint } from '../src/io/checkpoint.js';
import { exportBundle } from '../src/io/export.js';
import { loadSafetensors } from '../src/io/safetensors.js';

let tmp: string;
const w = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 3);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-export-'));
  const run = path.join(tmp, 'run');
  await saveCheckpoint(path.join(run, 'a'), { config: { kind: 'a' }, weights: { w: tf.tensor1d(w), ids: tf.tensor1d([1, 2, 3], 'int32') } });
  await saveCheckpoint(path.join(run, 'checkpoints', 'a'), { config: {}, weights: { w: tf.tensor1d(w) }, optimizer: { m: tf.tensor1d(w) }, state: { step: 3 } });
  await mkdir(path.join(run, 'b'));
  await writeFile(path.join(run, 'b', 'tokenizer.json'), '{"x":1}');
  await writeModelIndex(run, { parts: { a: 'a', b: 'b' } });
  await saveCheckpoint(path.join(tmp, 'other', 'refiner'), { config: { kind: 'r' }, weights: { v: tf.tensor1d(w) } });
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('exportBundle', () => {
  it('copies only the parts, halves float weights with float16, keeps ints and other files, and writes credits', async () => {
    const out = path.join(tmp, 'ship');
    const r = await exportBundle({ from: path.join(tmp, 'run'), extraParts: { refiner: path.join(tmp, 'other', 'refiner') }, out, float16: true, credits: ['art: CC-BY 4.0'] });
    expect(Object.keys(r.parts).sort()).toEqual(['a', 'b', 'refiner']);
    const index = await readModelIndex(out);
    expect(index.parts).toEqual({ a: 'a', b: 'b', refiner: 'refiner' });
    expect(index.credits).toEqual(['art: CC-BY 4.0']);
    await expect(stat(path.join(out, 'checkpoints'))).rejects.toThrow();
    expect(await readFile(path.join(out, 'b', 'tokenizer.json'), 'utf8')).toBe('{"x":1}');
    const { tensors } = await loadSafetensors(path.join(out, 'a', 'model.safetensors'));
    expect(tensors.w!.dtype).toBe('F16');
    expect(tensors.ids!.dtype).toBe('I32');
    const before = (await stat(path.join(tmp, 'run', 'a', 'model.safetensors'))).size;
    const after = (await stat(path.join(out, 'a', 'model.safetensors'))).size;
    expect(after).toBeLessThan(0.55 * before);
    const ck = await loadCheckpoint(path.join(out, 'a'));
    const back = ck.weights.w!.dataSync();
    for (let i = 0; i < w.length; i += 97) expect(Math.abs(back[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) * 1e-3 + 1e-4);
    tf.dispose(Object.values(ck.weights));
    expect(r.bytes).toBeGreaterThan(after);
  });

  it('refuses to export a bundle onto itself or over a folder that is not a bundle', async () => {
    await expect(exportBundle({ from: path.join(tmp, 'run'), out: path.join(tmp, 'run') })).rejects.toThrow(/must differ/);
    await expect(exportBundle({ from: path.join(tmp, 'run'), out: path.join(tmp, 'other') })).rejects.toThrow(/not a bundle/);
  });
});
