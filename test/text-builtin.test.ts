/** The built-in (trainable) text encoder: shapes, padding mask, save/load, gradients, errors. */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { ParamStore } from '../src/nn/params.js';
import { BuiltinTextEncoder } from '../src/text/builtin.js';
import { createTextEncoder, loadTextEncoder } from '../src/text/encoder.js';

const CAPTIONS = ['a red circle', 'a blue circle', 'a green square', 'a red triangle', 'a blue square'];
const OPTS = { dim: 16, depth: 2, heads: 2, maxLength: 5, mlpRatio: 2 };
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-text-builtin-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function rowsOf(prompts: string[], enc: BuiltinTextEncoder): Promise<{ rows: number[][]; bias: number[][] }> {
  const out = enc.encode(prompts);
  const rows = (await out.embeddings.array()) as number[][];
  const bias = (await out.keyBias.array()) as number[][];
  tf.dispose([out.embeddings, out.keyBias]);
  return { rows, bias };
}

describe('builtin text encoder', () => {
  it('encodes prompts to [B·L, dim] with a key bias that marks padding; the empty prompt too', async () => {
    const enc = BuiltinTextEncoder.fromCaptions(CAPTIONS, OPTS, { seed: 1 });
    try {
      expect(enc.kind).toBe('builtin');
      expect(enc.trainable).toBe(true);
      expect(enc.dim).toBe(16);
      expect(enc.maxLength).toBe(5);
      expect(enc.config).toEqual({ kind: 'builtin', dim: 16, depth: 2, heads: 2, maxLength: 5, vocabSize: enc.tokenizer.vocabSize, mlpRatio: 2 });

      const before = tf.memory().numTensors;
      const out = enc.encode(['a red circle', '', 'a purple circle with six long sides']);
      expect(tf.memory().numTensors).toBe(before + 2); // only the two results survive
      expect(out).toMatchObject({ batch: 3, length: 5 });
      expect(out.embeddings.shape).toEqual([15, 16]);
      expect(out.keyBias.shape).toEqual([3, 5]);
      const N = -1e9;
      expect(await out.keyBias.array()).toEqual([
        [0, 0, 0, 0, N], // [BOS] a red circle
        [0, N, N, N, N], // [BOS]: the null condition has one real token
        [0, 0, 0, 0, 0], // cut to maxLength
      ]);
      const e = await out.embeddings.data();
      expect(e.every(Number.isFinite)).toBe(true);
      tf.dispose([out.embeddings, out.keyBias]);

      // The padding is masked: a prompt's embeddings do not depend on the prompts batched with it.
      const alone = await rowsOf(['a red circle'], enc);
      const together = await rowsOf(['a blue square', 'a red circle'], enc);
      const a = alone.rows.slice(0, 4).flat();
      const b = together.rows.slice(5, 9).flat();
      a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 5));
    } finally {
      enc.dispose();
    }
  });

  it('saves config.json, model.safetensors and tokenizer.json, and loads identical embeddings', async () => {
    const enc = BuiltinTextEncoder.fromCaptions(CAPTIONS, OPTS, { seed: 2 });
    const dir = path.join(tmp, 'text-encoder');
    try {
      await enc.save(dir);
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
      const loaded = await loadTextEncoder(dir);
      try {
        expect(loaded).toBeInstanceOf(BuiltinTextEncoder);
        const l = loaded as BuiltinTextEncoder;
        expect(l.config).toEqual(enc.config);
        expect(l.tokenizer.vocab).toEqual(enc.tokenizer.vocab);
        const prompts = ['a red circle', '', 'a blue square'];
        expect(await rowsOf(prompts, l)).toEqual(await rowsOf(prompts, enc));
      } finally {
        loaded.dispose();
      }
    } finally {
      enc.dispose();
    }
  });

  it('lives in a shared ParamStore scope and gets gradients for every variable', async () => {
    const root = new ParamStore(3);
    const enc = BuiltinTextEncoder.fromCaptions(CAPTIONS, OPTS, { store: root.scope('text') });
    try {
      const names = Object.keys(enc.variables());
      expect(names.length).toBeGreaterThan(10);
      expect(names.every((n) => n.startsWith('text.'))).toBe(true);
      expect(Object.keys(enc.localVariables())).toContain('tok_emb');
      const target = tf.randomNormal([2 * OPTS.maxLength, OPTS.dim], 0, 1, 'float32', 7);
      const { value, grads } = root.valueAndGrads(() => tf.sum(tf.mul(enc.encode(['a red circle', '']).embeddings, target)) as tf.Scalar);
      expect(Object.keys(grads).sort()).toEqual(names.sort());
      for (const [name, g] of Object.entries(grads)) {
        const norm = (await tf.norm(g).data())[0]!;
        expect(Number.isFinite(norm), name).toBe(true);
        expect(norm, name).toBeGreaterThan(0);
      }
      tf.dispose([value, target, ...Object.values(grads)]);

      // save names weights relative to the encoder; a load can put them in another store's scope
      const dir = path.join(tmp, 'scoped');
      await enc.save(dir);
      const other = new ParamStore(9);
      const loaded = await BuiltinTextEncoder.load(dir, { store: other.scope('enc') });
      expect(Object.keys(loaded.variables()).every((n) => n.startsWith('enc.'))).toBe(true);
      expect(await rowsOf(['a green square'], loaded)).toEqual(await rowsOf(['a green square'], enc));
      loaded.dispose();
      expect(Object.keys(other.variables())).toEqual([]);
    } finally {
      enc.dispose();
    }
    expect(Object.keys(root.variables())).toEqual([]);
  });

  it('is made from a preset spec by createTextEncoder', async () => {
    const enc = await createTextEncoder({ kind: 'builtin', dim: 8, depth: 1, heads: 2, maxLength: 4, minCount: 2 }, { captions: CAPTIONS, seed: 5 });
    try {
      expect(enc).toBeInstanceOf(BuiltinTextEncoder);
      expect((enc as BuiltinTextEncoder).tokenizer.vocab).toEqual(['[PAD]', '[UNK]', '[BOS]', 'a', 'blue', 'circle', 'red', 'square']);
      expect((enc as BuiltinTextEncoder).config).toMatchObject({ dim: 8, depth: 1, heads: 2, maxLength: 4, vocabSize: 8, mlpRatio: 4 });
      await enc.prepare?.(['a red circle']); // nothing to do, but callable the same way as for pretrained
      const out = enc.encode(['a red circle']);
      expect(out.embeddings.shape).toEqual([4, 8]);
      tf.dispose([out.embeddings, out.keyBias]);
    } finally {
      enc.dispose();
    }
    const bad = await createTextEncoder({ kind: 'builtin', dim: 8, depth: 1, heads: 2, maxLength: 0 }, { captions: CAPTIONS }, 'config tiny.json: transformer.textEncoder').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UserError);
    expect((bad as Error).message).toMatch(/^config tiny\.json: transformer\.textEncoder: maxLength/);
  });

  it('reports a bad config.json or tokenizer.json as a UserError naming the file', async () => {
    const enc = BuiltinTextEncoder.fromCaptions(CAPTIONS, OPTS);
    const dir = path.join(tmp, 'broken');
    await enc.save(dir);
    enc.dispose();
    const configFile = path.join(dir, 'config.json');
    const tokFile = path.join(dir, 'tokenizer.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    const tokenizer = await readFile(tokFile, 'utf8');

    const expectUserError = async (file: string, why: RegExp) => {
      const err = await loadTextEncoder(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(why);
    };

    await writeFile(configFile, JSON.stringify({ ...config, heads: 'two' }));
    await expectUserError(configFile, /heads/);
    await writeFile(configFile, JSON.stringify({ ...config, kind: 'magic' }));
    await expectUserError(configFile, /kind/);
    await writeFile(configFile, JSON.stringify({ ...config, depht: 3 }));
    await expectUserError(configFile, /depht/);
    await writeFile(configFile, JSON.stringify({ ...config, vocabSize: config.vocabSize + 1 }));
    await expectUserError(tokFile, /vocabSize/);
    await writeFile(configFile, JSON.stringify(config));
    await writeFile(tokFile, '{"type": "maskgen-word"');
    await expectUserError(tokFile, /invalid JSON/);
    await writeFile(tokFile, tokenizer);
    const ok = await loadTextEncoder(dir);
    ok.dispose();
    expect(() => new BuiltinTextEncoder({ ...config, heads: 3 }, (ok as BuiltinTextEncoder).tokenizer)).toThrow(/divisible/);
  });
});
