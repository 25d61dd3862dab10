/**
 * The masked transformer's forward pass (model.ts) written as one ONNX graph with its current
 * weights baked in, for decoding on ONNX Runtime in one native call per step. It follows
 * `MaskedTransformer.logits` layer for layer — embedding + 2-D positions, pre-LN blocks of
 * self-attention, cross-attention to the text and MLP, final LayerNorm and head — and a test holds
 * the two to the same logits.
 *
 * Inputs: `tokens` int32 [B, N] (maskId where masked), `text` float32 [B·L, textDim] and
 * `text_bias` float32 [B, L]; with `crossBias`, also `cross_bias` float32 [B, N, L] added to the
 * cross-attention logits (paint-with-words); output `logits` float32 [B·N, K]. An autoregressive
 * model's graph bakes in the causal self-attention mask.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { causalBiasBatch, type MaskedTransformer } from './model.js';

export function transformerGraph(model: MaskedTransformer, batch: number, textLength: number, o: { crossBias?: boolean } = {}): GraphSpec {
  const c = model.config;
  const n = model.tokens;
  const nn = new GraphLayers(model.variables());
  const { g } = nn;

  const tokens = g.input('tokens', 'int32', [batch, n]);
  const text = g.input('text', 'float32', [batch * textLength, c.textDim]);
  const textBias = g.input('text_bias', 'float32', [batch, textLength]);

  // token embeddings + (row + column) positions
  const pos = model.positionValues();
  let x = g.reshape(g.add(g.node('Gather', [nn.weight('embed'), tokens]), g.weight('pos', pos, [n, c.width])), [batch * n, c.width]);
  const crossBias = o.crossBias ? g.input('cross_bias', 'float32', [batch, n, textLength]) : undefined;
  const bias = crossBias ? g.add(crossBias, g.reshape(textBias, [batch, 1, textLength])) : textBias;
  const context = { value: text, length: textLength, bias, perQueryBias: crossBias !== undefined };
  // autoregressive models: the causal mask on every block's self-attention, one copy per batch item
  let selfBias: string | undefined;
  if (c.objective === 'autoregressive') selfBias = g.weight('causal', causalBiasBatch(n, batch), [batch, n, n]);
  for (let i = 0; i < c.depth; i++) x = nn.block(x, { batch, t: n, heads: c.heads, context, selfBias }, `blocks.${i}`);
  g.output(nn.linear(nn.layerNorm(x, 'norm'), 'head'), 'logits', 'float32', [batch * n, c.codebookSize]);
  return g.build();
}
