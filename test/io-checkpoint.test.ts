import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/io/checkpoint.js';
import { loadSafetensors } from '../src/io/safetensors.js';
import { arraysToTensors, assignWeights, tensorsToArrays } from '../src/io/tensors.js';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(path.join(tmpdir(), 'maskgen-ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = { vqgan: { dim: 64, heads: [2, 4], kind: 'vit' }, seed: 1 };

function makeWeights(): Record<string, tf.Tensor> {
  return {
    'enc.proj.w': tf.randomNormal([8, 16], 0, 1, 'float32', 1),
    'enc.proj.b': tf.tensor1d([0.5, -1.25, 3, 1e-3]),
    'codebook.usage': tf.tensor1d([1, 2, 3], 'int32'),
  };
}

const dispose = (ts: Record<string, tf.Tensor> | undefined) => Object.values(ts ?? {}).forEach((t) => t.dispose());

async function userError(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('tensors <-> arrays', () => {
  it('round-trips float32 exactly, float16 closely, int32 exactly', async () => {
    const w = makeWeights();
    const f32 = await tensorsToArrays(w);
    expect(f32['enc.proj.w']!.dtype).toBe('F32');
    expect(f32['codebook.usage']!.dtype).toBe('I32');
    const f16 = await tensorsToArrays(w, { float16: true });
    expect(f16['enc.proj.w']!.dtype).toBe('F16');
    expect(f16['codebook.usage']!.dtype).toBe('I32');
    const back32 = arraysToTensors(f32);
    const back16 = arraysToTensors(f16);
    for (const name of Object.keys(w)) {
      expect(back32[name]!.shape).toEqual(w[name]!.shape);
      expect(back32[name]!.dtype).toBe(w[name]!.dtype);
      expect(back16[name]!.dtype).toBe(w[name]!.dtype);
      expect(Array.from(back32[name]!.dataSync())).toEqual(Array.from(w[name]!.dataSync()));
      const a = w[name]!.dataSync();
      const b = back16[name]!.dataSync();
      for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]! - a[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * 2 ** -11 + 2 ** -25);
    }
    [w, back32, back16].forEach(dispose);
  });
});

describe('checkpoints', () => {
  it('save → load gives identical tensors, optimizer state and step', async () => {
    const ck = path.join(dir, 'run1', 'vqgan');
    const weights = makeWeights();
    const optimizer = { 'enc.proj.w/m': tf.ones([8, 16]), 'enc.proj.w/v': tf.fill([8, 16], 0.25), iterations: tf.scalar(7, 'int32') };
    await saveCheckpoint(ck, { config, weights, optimizer, state: { step: 1200, epoch: 3 } });
    expect((await readdir(ck)).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
    expect(JSON.parse(await readFile(path.join(ck, 'config.json'), 'utf8'))).toEqual(config);
    expect(await hasCheckpoint(ck)).toBe(true);

    const before = tf.memory().numTensors;
    const loaded = await loadCheckpoint(ck, { expectConfig: config });
    expect(loaded.config).toEqual(config);
    expect(loaded.state).toEqual({ step: 1200, epoch: 3 });
    for (const [name, t] of Object.entries(weights)) {
      expect(loaded.weights[name]!.dtype).toBe(t.dtype);
      expect(loaded.weights[name]!.shape).toEqual(t.shape);
      expect(Array.from(loaded.weights[name]!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    for (const [name, t] of Object.entries(optimizer)) {
      expect(loaded.optimizer![name]!.shape).toEqual(t.shape);
      expect(Array.from(loaded.optimizer![name]!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    dispose(loaded.weights);
    dispose(loaded.optimizer);
    expect(tf.memory().numTensors).toBe(before);
    dispose(weights);
    dispose(optimizer);
  });

  it('float16 weights load within tolerance; optimizer state stays float32', async () => {
    const ck = path.join(dir, 'half');
    const weights = makeWeights();
    const optimizer = { m: tf.tensor1d([1 / 3, 1e-6]) };
    await saveCheckpoint(ck, { config, weights, optimizer }, { float16: true });
    const raw = await loadSafetensors(path.join(ck, 'model.safetensors'));
    expect(raw.tensors['enc.proj.w']!.dtype).toBe('F16');
    expect((await loadSafetensors(path.join(ck, 'optimizer.safetensors'))).tensors.m!.dtype).toBe('F32');
    const loaded = await loadCheckpoint(ck);
    expect(loaded.state).toBeUndefined();
    const a = weights['enc.proj.w']!.dataSync();
    const b = loaded.weights['enc.proj.w']!.dataSync();
    expect(loaded.weights['enc.proj.w']!.dtype).toBe('float32');
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i]!, 2);
    expect(Array.from(loaded.optimizer!.m!.dataSync())).toEqual(Array.from(optimizer.m.dataSync()));
    [weights, optimizer, loaded.weights, loaded.optimizer].forEach(dispose);
  });

  it('saving without optimizer/state removes stale ones', async () => {
    const ck = path.join(dir, 'stale');
    const weights = makeWeights();
    const optimizer = { m: tf.zeros([2]) };
    await saveCheckpoint(ck, { config, weights, optimizer, state: { step: 1 } });
    await saveCheckpoint(ck, { config, weights });
    expect((await readdir(ck)).sort()).toEqual(['config.json', 'model.safetensors']);
    const loaded = await loadCheckpoint(ck);
    expect(loaded.optimizer).toBeUndefined();
    [weights, optimizer, loaded.weights].forEach(dispose);
  });

  it('refuses a checkpoint made with a different config, naming the field', async () => {
    const ck = path.join(dir, 'run1', 'vqgan');
    const other = { seed: 1, vqgan: { kind: 'vit', heads: [2, 4], dim: 128 } };
    const before = tf.memory().numTensors;
    expect(await userError(() => loadCheckpoint(ck, { expectConfig: other }))).toBe(
      `checkpoint ${ck} was made with a different config: vqgan.dim: 64 vs 128 (checkpoint vs expected)`,
    );
    expect(await userError(() => loadCheckpoint(ck, { expectConfig: { ...config, extra: true }, what: 'tokenizer checkpoint' }))).toMatch(
      /^tokenizer checkpoint .* was made with a different config: extra: \(missing\) vs true/,
    );
    expect(tf.memory().numTensors).toBe(before);
    // key order and undefined fields do not count as differences
    const same = await loadCheckpoint(ck, { expectConfig: { seed: 1, vqgan: { kind: 'vit', dim: 64, heads: [2, 4] }, note: undefined } });
    dispose(same.weights);
    dispose(same.optimizer);
  });

  it('a missing folder or file is a UserError', async () => {
    const none = path.join(dir, 'nope');
    expect(await userError(() => loadCheckpoint(none))).toBe(`checkpoint ${none}: no such folder`);
    expect(await hasCheckpoint(none)).toBe(false);
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    expect(await userError(() => loadCheckpoint(empty))).toBe(`checkpoint ${empty}: not a checkpoint (no config.json)`);
    await writeFile(path.join(empty, 'config.json'), '{}');
    expect(await userError(() => loadCheckpoint(empty))).toBe(`checkpoint ${empty}: not a checkpoint (no model.safetensors)`);
    expect(await hasCheckpoint(empty)).toBe(false);
    await writeFile(path.join(empty, 'model.safetensors'), new Uint8Array([1, 2, 3]));
    expect(await userError(() => loadCheckpoint(empty))).toMatch(/model\.safetensors: not a valid safetensors file \(truncated/);
  });
});

describe('assignWeights', () => {
  const vars = () => ({
    'enc.blocks.0.attn.wq': tf.variable(tf.zeros([128, 128]), true, 'enc.blocks.0.attn.wq'),
    'enc.blocks.0.attn.wk': tf.variable(tf.zeros([128, 128]), true, 'enc.blocks.0.attn.wk'),
    'dec.out': tf.variable(tf.zeros([4]), true, 'dec.out'),
  });
  const where = 'checkpoint runs/x/vqgan';

  it('assigns values and disposes the loaded tensors', () => {
    const v = vars();
    const loaded = {
      'enc.blocks.0.attn.wq': tf.ones([128, 128]),
      'enc.blocks.0.attn.wk': tf.fill([128, 128], 2),
      'dec.out': tf.tensor1d([1, 2, 3, 4]),
    };
    const before = tf.memory().numTensors;
    assignWeights(v, loaded, where);
    expect(tf.memory().numTensors).toBe(before - 3);
    expect(Object.values(loaded).every((t) => t.isDisposed)).toBe(true);
    expect(Array.from(v['dec.out'].dataSync())).toEqual([1, 2, 3, 4]);
    expect(v['enc.blocks.0.attn.wk'].dataSync()[5]).toBe(2);
    dispose(v);
  });

  it('names a wrong shape', async () => {
    const v = vars();
    const loaded = {
      'enc.blocks.0.attn.wq': tf.zeros([64, 64]),
      'enc.blocks.0.attn.wk': tf.zeros([128, 128]),
      'dec.out': tf.zeros([4]),
    };
    expect(await userError(() => assignWeights(v, loaded, where))).toBe(
      "checkpoint runs/x/vqgan: weight 'enc.blocks.0.attn.wq' has shape [64,64], the model expects [128,128]",
    );
    expect(Object.values(loaded).every((t) => t.isDisposed)).toBe(true);
    expect(v['dec.out'].isDisposed).toBe(false);
    dispose(v);
  });

  it('names a missing weight, an extra one, and counts the rest', async () => {
    const v = vars();
    expect(await userError(() => assignWeights(v, { 'dec.out': tf.zeros([4]), 'enc.blocks.0.attn.wq': tf.zeros([128, 128]) }, where))).toBe(
      "checkpoint runs/x/vqgan: weight 'enc.blocks.0.attn.wk' [128,128] is missing",
    );
    expect(
      await userError(() =>
        assignWeights(
          v,
          { 'enc.blocks.0.attn.wq': tf.zeros([128, 128]), 'enc.blocks.0.attn.wk': tf.zeros([128, 128]), 'dec.out': tf.zeros([4]), 'dec.extra': tf.zeros([2, 3]) },
          where,
        ),
      ),
    ).toBe("checkpoint runs/x/vqgan: unexpected weight 'dec.extra' [2,3], which the model does not have");
    expect(await userError(() => assignWeights(v, { 'dec.out': tf.zeros([5]), other: tf.zeros([1]) }, where))).toBe(
      "checkpoint runs/x/vqgan: weight 'enc.blocks.0.attn.wq' [128,128] is missing (and 3 more problems)",
    );
    expect(Array.from(v['dec.out'].dataSync())).toEqual([0, 0, 0, 0]); // nothing assigned on error
    dispose(v);
  });
});
