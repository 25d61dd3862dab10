import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { TransformerConfigSchema } from '../src/transformer/config.js';
import { compiledSession, logitsFunction } from '../src/transformer/inference.js';
import { MaskedTransformer, type TextContext } from '../src/transformer/model.js';
import { transformerGraph } from '../src/transformer/onnx-graph.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';
import { AdamW } from '../src/nn/optim.js';
import { registerOnnxBackend } from '../src/backend/onnx/index.js';
import { wroteInPlace } from '../src/backend/onnx/backend.js';

/** The transformer's forward pass compiled to one ONNX Runtime session, against the tfjs model. */
describe('compiled transformer (one ONNX Runtime session)', () => {
  const config = TransformerConfigSchema.parse({ codebookSize: 24, grid: 4, width: 32, depth: 2, heads: 4, mlpRatio: 2, textDim: 12 });
  const batch = 3;
  const length = 5;

  /** A model whose weights are far from their tiny initial values, so attention is not uniform. */
  function model(seed: number): MaskedTransformer {
    const m = new MaskedTransformer(config, seed);
    scrambleWeights(m.variables(), seed);
    return m;
  }

  function text(): TextContext {
    // the last prompt is padded after two tokens: its padded keys carry the large negative bias
    const bias = Array.from({ length: batch * length }, (_, i) => (i >= (batch - 1) * length + 2 ? -1e9 : 0));
    return { embeddings: tf.randomNormal([batch * length, config.textDim], 0, 1, 'float32', 3) as tf.Tensor2D, keyBias: tf.tensor2d(bias, [batch, length]) };
  }

  const tokens = Int32Array.from({ length: batch * 16 }, (_, i) => (i % 3 === 0 ? config.codebookSize : (i * 7) % config.codebookSize));

  const expectClose = (actual: Float32Array, expected: Float32Array) => expectCloseRelative(actual, expected, 1e-4, 1);

  it('gives the tfjs model’s logits, padded text keys included', () => {
    const m = model(1);
    const ctx = text();
    const reference = logitsFunction(m, ctx, batch, { compiled: false })(tokens);
    const compiled = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    expect(compiled.length).toBe(batch * 16 * config.codebookSize);
    expectClose(compiled, reference);
    // and the padded keys matter to neither: changing them changes no logit of that prompt
    const other = ctx.embeddings.arraySync();
    for (let t = 2; t < length; t++) other[(batch - 1) * length + t] = other[(batch - 1) * length + t]!.map((v) => v + 5);
    const changed = logitsFunction(m, { embeddings: tf.tensor2d(other), keyBias: ctx.keyBias }, batch, { compiled: true })(tokens);
    expectClose(changed, compiled);
    m.dispose();
  });

  it('takes a cross-attention bias (paint-with-words) as the tfjs model does, and the bias matters', () => {
    const m = model(4);
    const ctx = text();
    const bias = Float32Array.from({ length: batch * 16 * length }, (_, i) => ((i * 37) % 11 === 0 ? 3 : (i % 7) * 0.2));
    const reference = logitsFunction(m, ctx, batch, { compiled: false })(tokens, bias);
    const compiled = logitsFunction(m, ctx, batch, { compiled: true })(tokens, bias);
    expectClose(compiled, reference);
    const plain = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    let moved = 0;
    for (let i = 0; i < plain.length; i++) moved = Math.max(moved, Math.abs(plain[i]! - compiled[i]!));
    expect(moved).toBeGreaterThan(0.05);
    // a zero bias is no bias; the bias has its own session, the plain one is kept
    expectClose(logitsFunction(m, ctx, batch, { compiled: true })(tokens, new Float32Array(bias.length)), plain);
    expect(compiledSession(m, batch, length, true)).not.toBe(compiledSession(m, batch, length));
    expect(() => logitsFunction(m, ctx, batch, { compiled: true })(tokens, bias.subarray(1))).toThrow(/cross-attention bias of 240 values/);
    m.dispose();
  });

  it('compiles again when the weights change, and keeps its session while they do not', () => {
    const m = model(2);
    const ctx = text();
    const first = compiledSession(m, batch, length);
    expect(compiledSession(m, batch, length)).toBe(first);
    const before = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    const head = m.variables()['head.b']!;
    head.assign(tf.add(head, 1));
    expect(compiledSession(m, batch, length)).not.toBe(first);
    const after = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    for (let i = 0; i < 10; i++) expect(after[i]! - before[i]!).toBeCloseTo(1, 4);
    expectClose(after, logitsFunction(m, ctx, batch, { compiled: false })(tokens));
    m.dispose();
  });

  it('compiles again when an optimizer writes the weights where they lie (AdamW in place on onnx)', async () => {
    const previous = tf.getBackend();
    await registerOnnxBackend();
    await tf.setBackend('onnx');
    const m = model(5);
    const ctx = text();
    const vars = m.variables();
    const opt = new AdamW(vars);
    const step = () => {
      const grads = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tf.onesLike(v)]));
      opt.apply(grads, 0.05);
      tf.dispose(Object.values(grads));
    };
    step(); // assigns new tensors: the weights' buffers are the backend's own from here on
    const first = compiledSession(m, batch, length);
    const before = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    // baking read the weights out, so this step gives them new buffers (and new data ids) …
    step();
    expect(compiledSession(m, batch, length)).not.toBe(first);
    const after = logitsFunction(m, ctx, batch, { compiled: true })(tokens);
    expect(Math.max(...after.map((v, i) => Math.abs(v - before[i]!)))).toBeGreaterThan(1e-3);
    expectClose(after, logitsFunction(m, ctx, batch, { compiled: false })(tokens));
    // … and a write in place, under the same data id, invalidates the session as well
    const second = compiledSession(m, batch, length);
    wroteInPlace(vars['head.b']!.dataId);
    expect(compiledSession(m, batch, length)).not.toBe(second);
    opt.dispose();
    m.dispose();
    await tf.setBackend(previous);
  });

  it('names every weight it bakes in and refuses a wrong token count or text batch', () => {
    const m = model(3);
    const spec = transformerGraph(m, batch, length);
    const baked = new Set((spec.initializers ?? []).map((t) => t.name));
    for (const name of ['embed', 'head.w', 'norm.g', 'blocks.1.mlp.fc.w', 'blocks.0.cross.k.w', 'blocks.0.attn.v.b']) expect(baked).toContain(name);
    const ctx = text();
    expect(() => logitsFunction(m, ctx, batch, { compiled: true })(tokens.subarray(1))).toThrow(/expected 48 tokens/);
    expect(() => logitsFunction(m, ctx, batch + 1, { compiled: true })).toThrow(/text context for 3 prompts/);
    m.dispose();
  });
});
