/**
 * The autoregressive (Parti-style) baseline: the causal mask and shifted input pinned by numbers,
 * token-by-token decoding on a fake model, the key/value-cached step graph held to the tfjs model's
 * full-sequence logits (and guided decoding with and without it to the same tokens), and a tiny
 * model trained inside the test on coloured squares.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoregressiveDecode, guidedPredict, topKRow } from '../src/decoding/index.js';
import type { MaskgenPipeline } from '../src/pipeline.js';
import { TransformerConfigSchema } from '../src/transformer/config.js';
import { logitsFunction, nextTokenFunction } from '../src/transformer/inference.js';
import { shiftRight } from '../src/transformer/masking.js';
import { causalBias, MaskedTransformer, type TextContext } from '../src/transformer/model.js';
import { stepSelfBias } from '../src/transformer/onnx-step-graph.js';
import { errorLine, lastJson, runMaskgen } from './helpers/cli.js';
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

  it('decodes one token a step, feeding each step the tokens drawn at the step before', async () => {
    const N = 4;
    const K = 5;
    const seen: number[][] = [];
    // the model says: token at i = (previous token + 1) mod K, the first = 2 (+ b)
    const predict = (input: Int32Array, step: number) => {
      seen.push(Array.from(input));
      const logits = new Float32Array(2 * K);
      for (let b = 0; b < 2; b++) logits[b * K + (step === 0 ? 2 + b : (input[b]! + 1) % K)] = 50;
      expect(step).toBe(seen.length - 1);
      return logits;
    };
    const res = await autoregressiveDecode({ batch: 2, n: N, k: K, bos: K, predict, temperature: 1, seed: 1 });
    expect(Array.from(res.tokens)).toEqual([2, 3, 4, 0, 3, 4, 0, 1]);
    expect(res.predictCalls).toBe(N);
    expect(seen).toEqual([[K, K], [2, 3], [3, 4], [4, 0]]);
    await expect(autoregressiveDecode({ batch: 1, n: N, k: K, bos: K, predict, seed: 1, topK: 0 })).rejects.toThrow(/top-k/);
  });

  it('the step graph hides the cache slots not yet written', () => {
    const bias = stepSelfBias(2, 3, 1);
    expect(Array.from(bias).map((v) => (v === 0 ? 0 : 1))).toEqual([0, 1, 1, 0, 0, 1, 1, 0]);
    expect(Array.from(stepSelfBias(1, 3, 0)).map((v) => (v === 0 ? 0 : 1))).toEqual([1, 1, 1, 0]);
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

describe('the key/value cache on the compiled graph', () => {
  const config = TransformerConfigSchema.parse({ codebookSize: 8, grid: 3, width: 16, depth: 2, heads: 2, mlpRatio: 2, textDim: 4, objective: 'autoregressive' });
  const B = 2;
  const N = 9;
  const K = 8;
  let m: MaskedTransformer;
  // B conditional prompts of 3 text tokens (the second's last one padding), then B unconditional ones
  let text: TextContext;
  let cond: TextContext;

  beforeAll(() => {
    m = new MaskedTransformer(config, 1);
    scrambleWeights(m.variables(), 3);
    const embeddings = tf.randomNormal([2 * B * 3, 4], 0, 1, 'float32', 5) as tf.Tensor2D;
    const keyBias = tf.tensor2d([[0, 0, 0], [0, 0, -1e9], [0, -1e9, -1e9], [0, -1e9, -1e9]]);
    text = { embeddings, keyBias };
    cond = { embeddings: embeddings.slice([0, 0], [B * 3, 4]), keyBias: keyBias.slice([0, 0], [B, 3]) };
  });

  afterAll(() => {
    tf.dispose([text.embeddings, text.keyBias, cond.embeddings, cond.keyBias]);
    m.dispose();
  });

  it("gives the tfjs model's full-sequence logits at every position, and starts afresh at position 0", () => {
    const grids = [Int32Array.from([8, 3, 1, 7, 0, 0, 5, 2, 6, 8, 1, 1, 4, 6, 2, 0, 3, 7]), Int32Array.from([8, 5, 5, 2, 7, 1, 0, 3, 4, 8, 0, 6, 6, 1, 2, 7, 5, 3])];
    const cached = nextTokenFunction(m, cond, B, { compiled: true });
    for (const grid of grids) {
      const full = logitsFunction(m, cond, B, { compiled: false })(grid);
      for (let t = 0; t < N; t++) {
        const step = cached(Int32Array.from([grid[t]!, grid[N + t]!]), t);
        const want = new Float32Array(B * K);
        for (let b = 0; b < B; b++) want.set(full.subarray((b * N + t) * K, (b * N + t + 1) * K), b * K);
        expectCloseRelative(step, want, 1e-4, 0.5);
      }
    }
    expect(() => cached(Int32Array.from([8, 8]), 3)).toThrow(/position 3 after 8/);
  });

  it('decodes the same tokens as the full-sequence tfjs model, with classifier-free guidance on cond + uncond batched', async () => {
    const decode = async (compiled: boolean) => {
      const next = nextTokenFunction(m, text, 2 * B, { compiled });
      const twice = new Int32Array(2 * B);
      const predict = guidedPredict({
        steps: N,
        scale: 3,
        predictBoth: (tokens, step) => {
          twice.set(tokens);
          twice.set(tokens, B);
          const logits = next(twice, step);
          return { cond: logits.subarray(0, B * K), uncond: logits.subarray(B * K) };
        },
      });
      return (await autoregressiveDecode({ batch: B, n: N, k: K, bos: m.maskId, predict, temperature: 1, topK: 6, seed: 4 })).tokens;
    };
    const reference = await decode(false);
    expect(Array.from(await decode(true))).toEqual(Array.from(reference));
    expect(new Set(reference).size).toBeGreaterThan(2); // a real sample, not one token throughout
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

  it('bench generate takes the bundle: N token-by-token steps, compiled with the key/value cache on onnx, the same fields as a masked bundle', async () => {
    const bundle = path.join(tmp, 'run');
    const r = await runMaskgen(tmp, ['--backend', 'onnx', 'bench', 'generate', '--bundle', bundle, '--images', '2', '--runs', '1', '--prompt', 'a red square']);
    expect(r.code).toBe(0);
    const j = lastJson(r.stdout);
    expect([j.bench, j.decoding, j.compiled, j.steps, j.images, j.guidance]).toEqual(['generate', 'autoregressive', true, 16, 2, 3]);
    for (const field of ['msPerImage', 'msPerStep', 'imagesPerSec', 'gflops']) expect(j[field]).toBeGreaterThan(0);
    const bad = await runMaskgen(tmp, ['bench', 'generate', '--bundle', bundle, '--no-compiled']);
    expect([bad.code, errorLine(bad.stderr)]).toEqual([1, expect.stringMatching(/^maskgen: error: --no-compiled times the random model only/)]);
  });
});
