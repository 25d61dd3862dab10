import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { valueAndGrads } from '../src/nn/params.js';
import { compiledGrads } from '../src/transformer/compiled-training.js';
import { BuiltinTextEncoder } from '../src/text/builtin.js';
import type { TextEncoder } from '../src/text/encoder.js';
import { TransformerConfigSchema, TransformerTrainSchema } from '../src/transformer/config.js';
import { TransformerTrainer } from '../src/transformer/trainer.js';
import { maskedCrossEntropy } from '../src/transformer/masking.js';
import { MaskedTransformer } from '../src/transformer/model.js';
import { transformerTrainGraph } from '../src/transformer/onnx-train-graph.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';

/** A training step's forward and backward compiled to one ONNX Runtime session, against tfjs autograd. */
describe.each(['masked', 'autoregressive'] as const)('compiled transformer training step (one ONNX Runtime session), %s', (objective) => {
  const config = TransformerConfigSchema.parse({ codebookSize: 24, grid: 4, width: 32, depth: 2, heads: 4, mlpRatio: 2, textDim: 12, objective });
  const batch = 3;
  const length = 5;
  const n = 16;
  const smoothing = 0.1;

  function setup(seed: number) {
    const model = new MaskedTransformer(config, seed);
    scrambleWeights(model.variables(), seed, 0.2);
    const targets = Int32Array.from({ length: batch * n }, (_, i) => (i * 7 + seed) % config.codebookSize);
    const weights = Float32Array.from({ length: batch * n }, (_, i) => (i % 3 === 0 || i % 5 === 1 ? 1 : 0));
    const input = Int32Array.from(targets, (t, i) => (weights[i] ? model.maskId : t));
    // the last prompt is padded after two tokens
    const bias = Array.from({ length: batch * length }, (_, i) => (i >= (batch - 1) * length + 2 ? -1e9 : 0));
    const text = { embeddings: tf.randomNormal([batch * length, config.textDim], 0, 1, 'float32', seed) as tf.Tensor2D, keyBias: tf.tensor2d(bias, [batch, length]) };
    return { model, input, targets, weights, text };
  }

  /** tfjs autograd's loss, hits and gradients (weights and text embeddings) for the same batch. */
  function reference(s: ReturnType<typeof setup>) {
    const textVar = tf.variable(s.text.embeddings, true);
    const vars = { ...s.model.variables(), '@text': textVar };
    let hits = 0;
    const { value, grads } = valueAndGrads(() => {
      const logits = s.model.logits(tf.tensor2d(s.input, [batch, n], 'int32'), { embeddings: textVar as unknown as tf.Tensor2D, keyBias: s.text.keyBias });
      hits = tf.tidy(() => tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(s.targets, 'int32')), 'float32'), tf.tensor1d(s.weights))).dataSync()[0]!);
      return maskedCrossEntropy(logits, tf.tensor1d(s.targets, 'int32'), tf.tensor1d(s.weights), smoothing);
    }, vars);
    const loss = value.dataSync()[0]!;
    const out = { loss, hits, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array])) };
    tf.dispose([value, textVar, ...Object.values(grads)]);
    return out;
  }

  it('gives tfjs autograd’s loss, hits and every gradient, the text embeddings’ included', () => {
    const s = setup(1);
    const ref = reference(s);
    const got = compiledGrads(s.model, s, smoothing, true);
    expect(got.loss).toBeCloseTo(ref.loss, 4);
    expect(got.correct).toBe(ref.hits);
    const names = Object.keys(s.model.variables());
    expect(Object.keys(got.grads).sort()).toEqual([...names].sort());
    for (const name of names) {
      const g = got.grads[name]!.dataSync() as Float32Array;
      try {
        expectCloseRelative(g, ref.grads[name]!, 2e-4, 1e-6);
      } catch (err) {
        throw new Error(`gradient of ${name}: ${(err as Error).message}`);
      }
    }
    expectCloseRelative(got.textGrad!.dataSync() as Float32Array, ref.grads['@text']!, 2e-4, 1e-6);
    // the sum of squares that clipping uses covers the weights' gradients, not the text's
    let squares = 0;
    for (const name of names) for (const v of ref.grads[name]!) squares += v * v;
    expect(Math.abs(got.sumSquares - squares) / squares).toBeLessThan(1e-4);
    // padded text keys get no gradient
    const dText = got.textGrad!.arraySync();
    for (let t = 2; t < length; t++) for (const v of dText[(batch - 1) * length + t]!) expect(Math.abs(v)).toBeLessThan(1e-9);
    tf.dispose([...Object.values(got.grads), got.textGrad!, s.text.embeddings, s.text.keyBias]);
    s.model.dispose();
  });

  it('lowers the loss when its gradients are applied, and leaks no tensors', () => {
    const s = setup(2);
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const got = compiledGrads(s.model, s, smoothing, false);
      losses.push(got.loss);
      expect(got.textGrad).toBeUndefined();
      for (const [name, v] of Object.entries(s.model.variables())) {
        const next = tf.tidy(() => tf.sub(v, tf.mul(got.grads[name]!, 0.5)));
        v.assign(next);
        next.dispose();
      }
      tf.dispose(Object.values(got.grads));
    }
    expect(losses[11]!).toBeLessThan(losses[0]! * 0.8);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([s.text.embeddings, s.text.keyBias]);
    s.model.dispose();
  });

  it('outputs a gradient for every weight, named after it, and refuses a wrong token count', () => {
    const s = setup(3);
    const spec = transformerTrainGraph(s.model, { batch, textLength: length, labelSmoothing: smoothing, textGrad: false });
    const outputs = spec.outputs.map((o) => o.name);
    for (const name of Object.keys(s.model.variables())) expect(outputs).toContain(`grad:${name}`);
    expect(outputs).not.toContain('grad:text');
    expect(() => compiledGrads(s.model, { ...s, input: s.input.subarray(1) }, smoothing, false)).toThrow(/47 tokens for 3 prompts/);
    tf.dispose([s.text.embeddings, s.text.keyBias]);
    s.model.dispose();
  });

  // the builtin encoder runs inside the session; any other trainable encoder (here the same one
  // behind a wrapper) takes its gradient through the session's gradient of its embeddings
  it.each(['builtin, inside the session', 'another kind, through the embeddings’ gradient'])('trains through the trainer like autograd does, a trainable text encoder of %s', (kind) => {
    const inside = kind.startsWith('builtin');
    const captions = ['a red circle', 'a blue circle', 'a green square'];
    const builtin = BuiltinTextEncoder.fromCaptions(captions, { dim: config.textDim, depth: 1, heads: 2, maxLength: 4, mlpRatio: 2 }, { seed: 4 });
    const text: TextEncoder = inside
      ? builtin
      : { kind: 'builtin', dim: builtin.dim, maxLength: builtin.maxLength, trainable: true, encode: (p) => builtin.encode(p), variables: () => builtin.variables(), save: async () => {}, dispose: () => builtin.dispose() };
    const model = new MaskedTransformer(config, 4);
    scrambleWeights(model.variables(), 4, 0.2);
    const train = TransformerTrainSchema.parse({ batchSize: 3, steps: 10, warmup: 1, condDropout: 0.3 });
    const tokens = Int32Array.from({ length: 3 * n }, (_, i) => (i * 5) % config.codebookSize);
    const viaAutograd = new TransformerTrainer(model, text, train, { compiled: false }).computeGrads(tokens, captions);
    const compiled = new TransformerTrainer(model, text, train, { compiled: true });
    const before = tf.memory().numTensors;
    const viaSession = compiled.computeGrads(tokens, captions);
    // nothing but the returned gradients is left behind
    expect(tf.memory().numTensors - before).toBe(Object.keys(viaSession.grads).length);
    expect(viaSession.loss).toBeCloseTo(viaAutograd.loss, 4);
    expect(viaSession.accuracy).toBeCloseTo(viaAutograd.accuracy, 6);
    expect(Object.keys(viaSession.grads).sort()).toEqual(Object.keys(viaAutograd.grads).sort());
    expect(Object.keys(viaSession.grads).some((k) => k.startsWith('text/'))).toBe(true);
    // the squares clipping uses, from the session: the encoder's too when it runs inside
    const summed = Object.keys(viaAutograd.grads).filter((k) => inside || k.startsWith('transformer/'));
    let squares = 0;
    for (const k of summed) for (const v of viaAutograd.grads[k]!.dataSync()) squares += v * v;
    expect([...viaSession.squares!.names].sort()).toEqual(summed.sort());
    expect(Math.abs(viaSession.squares!.sum - squares) / squares).toBeLessThan(1e-4);
    for (const [name, g] of Object.entries(viaAutograd.grads)) {
      try {
        expectCloseRelative(viaSession.grads[name]!.dataSync() as Float32Array, g.dataSync() as Float32Array, 2e-4, 1e-6);
      } catch (err) {
        throw new Error(`gradient of ${name}: ${(err as Error).message}`);
      }
    }
    tf.dispose([...Object.values(viaAutograd.grads), ...Object.values(viaSession.grads)]);
    model.dispose();
    text.dispose();
  });
});
