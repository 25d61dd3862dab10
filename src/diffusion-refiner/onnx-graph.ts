/**
 * The refiner's denoiser (denoiser.ts) written as one ONNX graph with its current weights baked in,
 * for DDIM sampling on ONNX Runtime in one native call per step. It follows `Denoiser.predict`
 * layer for layer; a test holds the two to the same v-prediction.
 *
 * Inputs (B rows: both guidance passes when batched together): `latents` [B, g·p, g·p, latentC],
 * `low` [B, s/f, s/f, C], the sinusoidal embeddings `time` and `augment` [B, FREQ_DIM]
 * (conditionEmbeddings), `text` [B·L, textDim] and `text_bias` [B, L]; output `v` like `latents`.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { FREQ_DIM, type Denoiser } from './denoiser.js';

export function denoiserGraph(model: Denoiser, batch: number, textLength: number): GraphSpec {
  const c = model.config;
  const { patch, width: w, heads } = c.denoiser;
  const lc = c.autoencoder.latentChannels;
  const side = model.latentSide;
  const low = c.size / c.factor;
  const n = model.tokens;
  const nn = new GraphLayers(model.variables());
  const { g } = nn;

  const latents = g.input('latents', 'float32', [batch, side, side, lc]);
  const lowImages = g.input('low', 'float32', [batch, low, low, c.channels]);
  const time = g.input('time', 'float32', [batch, FREQ_DIM]);
  const augment = g.input('augment', 'float32', [batch, FREQ_DIM]);
  const text = g.input('text', 'float32', [batch * textLength, c.textDim]);
  const textBias = g.input('text_bias', 'float32', [batch, textLength]);

  const cond = nn.mlp(g.add(nn.linear(time, 'time_in'), nn.linear(augment, 'aug_in')), 'cond_mlp'); // [B, W]
  const tokens = g.node('Concat', [nn.patchify(latents, [batch, side, lc], patch), nn.patchify(lowImages, [batch, low, c.channels], model.lowBlock)], { axis: { i: 1 } });
  const h = g.add(g.add(g.reshape(nn.linear(tokens, 'in'), [batch, n, w]), nn.weight('pos')), g.reshape(cond, [batch, 1, w]));
  let x = g.reshape(h, [batch * n, w]);
  const context = { value: text, length: textLength, bias: textBias };
  for (let i = 0; i < c.denoiser.depth; i++) x = nn.block(x, { batch, t: n, heads, context }, `blocks.${i}`);
  const v = nn.unpatchify(nn.linear(nn.layerNorm(x, 'norm'), 'out'), [batch, model.grid, lc], patch);
  g.output(v, 'v', 'float32', [batch, side, side, lc]);
  return g.build();
}
