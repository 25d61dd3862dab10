/**
 * The autoregressive (Parti-style) baseline: the causal mask and shifted input pinned by numbers,
 * token-by-token decoding on a fake model, and a tiny one trained inside the test on coloured squares.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoregressiveDecode, topKRow } from '../src/decoding/index.js';
import type { MaskgenPipeline } from '../src/pipeline.js';
import { TransformerConfigSchema } from '../src/transformer/config.js';
import { logitsFunction } from '../src/transformer/inference.js';
import { shiftRight } from '../src/transformer/masking.js';
import { causalBias, MaskedTransformer } from '../src/transformer/model.js';
import { COLOURS, dominantColour } from './helpers/shapes.js';
import { trainTinyPipeline } from './helpers/tiny-pipeline.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';

describe('autoregressive rules', () => {
  it('shifts grids right with the start token and masks keys after the query', () => {
    expect(Array.from(shiftRight(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3, 9))).toEqual([9, 1, 2, 9, 4, 5]);
    expect(Array.from(causalBias(3)).map((v) => (v === 0 ? 0 : 1))).toEqual([0, 1, 1, 0, 0, 1, 0, 0, 0]);
  });

  it('top-k keeps the k largest logits of a row', () => {
    expect(Array.from(topKRow(Float32Array.from([9, 0, 3, 1, 2]), 1, 4, 2))).toEqual([-Infinity, 3, -Infinity, 2]);
    expect(Array.from(topKRow(Float32Array.from([0, 3, 1]), 0, 3, 5))).toEqual([0, 3, 1]);
  });

  it('decodes one token a step from the shifted grid, each step reading its own row', async () => {
    const N = 4;
    const K = 5;
    const seen: number[][] = [];
    // the model says: token at i = (previous token + 1) mod K, the first = 2
    const predict = (input: Int32Array, step: number) => {
      seen.push(Array.from(input));
      const logits = new Float32Array(2 * N * K);
      for (let b = 0; b < 2; b++) for (let i = 0; i < N; i++) logits[(b * N + i) * K + (i === 0 ? 2 + b : (input[b * N + i]! + 1) % K)] = 50;
      expect(step).toBe(seen.length - 1);
      return logits;
    };
    const res = await autoregressiveDecode({ batch: 2, n: N, k: K, bos: K, predict, temperature: 1, seed: 1 });
    expect(Array.from(res.tokens)).toEqual([2, 3, 4, 0, 3, 4, 0, 1]);
    expect(res.predictCalls).toBe(N);
    expect(seen[2]).toEqual([K, 2, 3, K, K, 3, 4, K]);
    await expect(autoregressiveDecode({ batch: 1, n: N, k: K, bos: K, predict, seed: 1, topK: 0 })).rejects.toThrow(/top-k/);
  });

  it("an autoregressive model's logits at position i do not depend on the input after i, compiled or not", () => {
    const config = TransformerConfigSchema.parse({ codebookSize: 8, grid: 2, width: 16, depth: 2, heads: 2, mlpRatio: 2, textDim: 4, objective: 'autoregressive' });
    const m = new MaskedTransformer(config, 1);
    scrambleWeights(m.variables(), 1);
    const text = { embeddings: tf.randomNormal([3, 4], 0, 1, 'float32', 2) as tf.Tensor2D, keyBias: tf.zeros([1, 3]) as tf.Tensor2D };
    const run = (t: number[]) => tf.tidy(() => m.logits(tf.tensor2d([t], [1, 4], 'int32'), text).arraySync());
    const a = run([8, 1, 2, 3]);
    const b = run([8, 1, 5, 6]);
    for (const i of [0, 1]) expect(b[i]).toEqual(a[i]);
    expect(b[3]).not.toEqual(a[3]);
    // the compiled graph bakes in the same causal mask
    const tokens = Int32Array.from([8, 1, 5, 6]);
    expectCloseRelative(logitsFunction(m, text, 1, { compiled: true })(tokens), logitsFunction(m, text, 1, { compiled: false })(tokens), 1e-4, 0.5);
    tf.dispose([text.embeddings, text.keyBias]);
    m.dispose();
  });
});

describe('a tiny autoregressive pipeline', () => {
  let tmp: string;
  let pipe: MaskgenPipeline;
  const losses: number[] = [];
  const names = Object.keys(COLOURS);

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-ar-'));
    pipe = await trainTinyPipeline(tmp, { transformer: { objective: 'autoregressive' }, onStep: (_s, m) => losses.push(m.loss) });
  }, 900_000);

  afterAll(async () => {
    pipe?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('its loss falls', () => {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-20))).toBeLessThan(mean(losses.slice(0, 10)) * 0.7);
  });

  it('decodes valid grids token by token with guidance, deterministically, following the prompt', async () => {
    const K = pipe.transformer.config.codebookSize;
    const steps: number[] = [];
    const opts = { prompts: names.map((c) => `a ${c} square`), n: 4, guidance: 3, seed: 2, topK: 16 };
    const before = tf.memory().numTensors;
    const images = await pipe.generate({ ...opts, onStep: (d, t) => void steps.push(t) });
    expect(tf.memory().numTensors).toBe(before);
    expect(steps[0]).toBe(16 * 16); // 16 images × 16 tokens, one a step
    for (const im of images) expect(Array.from(im.tokens).every((t) => t >= 0 && t < K)).toBe(true);
    const again = await pipe.generate(opts);
    expect(again.map((im) => Array.from(im.tokens))).toEqual(images.map((im) => Array.from(im.tokens)));
    const hits = images.filter((im) => dominantColour(im.image.data) === names.indexOf(im.prompt.split(' ')[1]!)).length;
    console.log(`autoregressive tiny pipeline: ${hits}/${images.length} images of the prompted colour`);
    expect(hits / images.length).toBeGreaterThan(0.5); // chance: 25%
    await expect(pipe.variations({ image: images[0]!.image })).rejects.toThrow(/autoregressive/);
  });
});
