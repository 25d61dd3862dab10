/**
 * One training step of the masked transformer (model.ts) as one ONNX graph (an autoregressive one
 * with the causal self-attention mask baked in, as its inference graph has it): the forward pass, the
 * masked label-smoothed cross-entropy of masking.ts, and the backward pass to every weight (and,
 * when asked, to the text embeddings, so that a trainable text encoder can take its gradient from
 * there). Weights are graph inputs, not baked in, so one compiled session serves every step.
 *
 * Inputs: every weight under its model name; `tokens` int32 [B·N] (maskId where masked),
 * `targets` int32 [B·N], `weights` float32 [B·N] (1 where masked), `text` float32 [B·L, textDim],
 * `text_bias` float32 [B, L]. Outputs: `loss` and `correct` (masked tokens whose argmax is right,
 * summed) as float32 [], `grad:<weight>` for every weight, `grad_sq` (the sum of the squares of
 * every weight gradient, for clipping by global norm) and `grad:text` when `textGrad`.
 *
 * With `textEncoder` (a builtin encoder being trained), the encoder runs in the graph too: the input
 * `text_ids` int32 [B·L] replaces `text`, and its weights are inputs (and get gradients, counted in
 * `grad_sq`) under `text:` + their names relative to the encoder.
 *
 * The layers are nn/onnx-layers.ts's (the ones the inference graph bakes), with weights as inputs;
 * test/transformer-compiled-train.test.ts holds the loss and every gradient to tfjs autograd on the
 * same model.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { graphText, textGraphWeights, type TextGraph } from '../text/onnx-graph.js';
import { causalBiasBatch, type MaskedTransformer } from './model.js';

export interface TrainGraphOptions {
  batch: number;
  textLength: number;
  labelSmoothing: number;
  /** Also output the gradient of the text embeddings (`grad:text`). */
  textGrad: boolean;
  /** A builtin text encoder to run (and train) inside the graph. */
  textEncoder?: TextGraph;
}

export function transformerTrainGraph(model: MaskedTransformer, o: TrainGraphOptions): GraphSpec {
  const c = model.config;
  const n = model.tokens;
  const b = o.batch;
  const k = c.codebookSize;
  const nn = new GraphLayers({ ...model.variables(), ...textGraphWeights(o.textEncoder) }, 'train');
  const { t: tape, g } = nn;
  const tokens = tape.input('tokens', 'int32', [b * n]);
  const targets = tape.input('targets', 'int32', [b * n]);
  const weights = tape.input('weights', 'float32', [b * n]);
  const textBias = tape.input('text_bias', 'float32', [b, o.textLength]);
  const text = graphText(nn, { batch: b, length: o.textLength, dim: c.textDim, textGrad: o.textGrad, encoder: o.textEncoder }, textBias);

  // forward: embeddings + (row + column) positions, blocks, final LayerNorm, head
  const pos = tape.reshape(tape.add(nn.weight('pos.row'), nn.weight('pos.col')), [n, c.width]);
  let x = tape.reshape(tape.add(tape.reshape(tape.gather(nn.weight('embed'), tokens), [b, n, c.width]), pos), [b * n, c.width]);
  // autoregressive models: the causal mask on every block's self-attention (as the inference graph's)
  let selfBias: string | undefined;
  if (c.objective === 'autoregressive') selfBias = tape.constant('causal', causalBiasBatch(n, b), [b, n, n]);
  const block = { batch: b, t: n, heads: c.heads, context: { value: text, length: o.textLength, bias: textBias }, selfBias };
  for (let i = 0; i < c.depth; i++) x = nn.block(x, block, `blocks.${i}`);
  const logits = nn.linear(nn.layerNorm(x, 'norm'), 'head'); // [B·N, K]

  // masked, label-smoothed cross-entropy (masking.ts) and its gradient, written directly:
  // loss = Σ_r w_r · −Σ_k t_rk · log p_rk / max(Σ w, 1), t = (1 − ε)·onehot + ε/K;  dlogits = (p − t) · w / max(Σ w, 1)
  const eps = o.labelSmoothing;
  const target = g.node('Add', [g.node('Mul', [tape.oneHot(targets, k), g.floats([1 - eps], [])]), g.floats([eps / k], [])]);
  const logp = g.node('LogSoftmax', [logits], { axis: { i: -1 } });
  const perToken = g.node('Neg', [g.node('ReduceSum', [g.node('Mul', [target, logp]), g.int64s([1])], { keepdims: { i: 0 } })]);
  const denom = g.node('Max', [g.node('ReduceSum', [weights, g.int64s([0])], { keepdims: { i: 0 } }), g.floats([1], [])]);
  const loss = g.node('Div', [g.node('ReduceSum', [g.node('Mul', [perToken, weights]), g.int64s([0])], { keepdims: { i: 0 } }), denom]);
  const rowScale = g.reshape(g.node('Div', [weights, denom]), [b * n, 1]);
  const dLogits = g.node('Mul', [g.node('Sub', [g.node('Exp', [logp]), target]), rowScale]);
  const hit = g.node('Cast', [g.node('Equal', [g.node('ArgMax', [logits], { axis: { i: 1 }, keepdims: { i: 0 } }), g.node('Cast', [targets], { to: { i: 7 } })])], { to: { i: 1 } });
  const correct = g.node('ReduceSum', [g.node('Mul', [hit, weights]), g.int64s([0])], { keepdims: { i: 0 } });

  const grads = nn.outputGradients(logits, dLogits, o.textGrad ? [text] : []);
  g.output(loss, 'loss', 'float32', []);
  g.output(correct, 'correct', 'float32', []);
  if (o.textGrad) g.output(grads[text]!, 'grad:text', 'float32', [b * o.textLength, c.textDim]);
  return g.build();
}
