/**
 * The refiner's denoiser (denoiser.ts) written as one ONNX graph with its current weights baked in,
 * for DDIM sampling on ONNX Runtime in one native call per step. It follows `Denoiser.predict`
 * layer for layer; a test holds the two to the same v-prediction. `denoiserForward` is that
 * composition over either kind of GraphLayers, so the training graph (onnx-train-graph.ts) is the
 * same forward with weights as inputs.
 *
 * Inputs (B rows: both guidance passes when batched together): `latents` [B, g·p, g·p, latentC],
 * `low` [B, s/f, s/f, C], the sinusoidal embeddings `time` and `augment` [B, FREQ_DIM]
 * (conditionEmbeddings), `text` [B·L, textDim] and `text_bias` [B, L]; output `v` like `latents`.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { graphText, type TextGraph } from '../text/onnx-graph.js';
import { FREQ_DIM, type Denoiser } from './denoiser.js';

/** The graph values of the denoiser's inputs. */
export interface DenoiserGraphInputs {
  latents: string;
  low: string;
  time: string;
  augment: string;
  text: string;
  textBias: string;
}

/**
 * Declares the denoiser's inputs: `text` differentiable when `textGrad` (for a trainable text
 * encoder outside the session), or, with `encoder`, `text_ids` and the encoder run in the graph
 * (text/onnx-graph.ts).
 */
export function denoiserInputs(nn: GraphLayers, model: Denoiser, batch: number, textLength: number, o: { textGrad?: boolean; encoder?: TextGraph } = {}): DenoiserGraphInputs {
  const c = model.config;
  const { t } = nn;
  const side = model.latentSide;
  const low = c.size / c.factor;
  const latents = t.input('latents', 'float32', [batch, side, side, c.autoencoder.latentChannels]);
  const lowInput = t.input('low', 'float32', [batch, low, low, c.channels]);
  const time = t.input('time', 'float32', [batch, FREQ_DIM]);
  const augment = t.input('augment', 'float32', [batch, FREQ_DIM]);
  const textBias = t.input('text_bias', 'float32', [batch, textLength]);
  const text = graphText(nn, { batch, length: textLength, dim: c.textDim, textGrad: o.textGrad, encoder: o.encoder }, textBias);
  return { latents, low: lowInput, time, augment, text, textBias };
}

/** Denoiser.predict over GraphLayers: the v-prediction [B, g·p, g·p, latentC]. */
export function denoiserForward(nn: GraphLayers, model: Denoiser, x: DenoiserGraphInputs, batch: number, textLength: number): string {
  const c = model.config;
  const { patch, width: w, heads } = c.denoiser;
  const lc = c.autoencoder.latentChannels;
  const low = c.size / c.factor;
  const n = model.tokens;
  const { t } = nn;
  const cond = nn.mlp(t.add(nn.linear(x.time, 'time_in'), nn.linear(x.augment, 'aug_in')), 'cond_mlp'); // [B, W]
  const tokens = t.concat([nn.patchify(x.latents, [batch, model.latentSide, lc], patch), nn.patchify(x.low, [batch, low, c.channels], model.lowBlock)], 1);
  const h = t.add(t.add(t.reshape(nn.linear(tokens, 'in'), [batch, n, w]), nn.weight('pos')), t.reshape(cond, [batch, 1, w]));
  let y = t.reshape(h, [batch * n, w]);
  const context = { value: x.text, length: textLength, bias: x.textBias };
  for (let i = 0; i < c.denoiser.depth; i++) y = nn.block(y, { batch, t: n, heads, context }, `blocks.${i}`);
  return nn.unpatchify(nn.linear(nn.layerNorm(y, 'norm'), 'out'), [batch, model.grid, lc], patch);
}

export function denoiserGraph(model: Denoiser, batch: number, textLength: number): GraphSpec {
  const side = model.latentSide;
  const nn = new GraphLayers(model.variables());
  const v = denoiserForward(nn, model, denoiserInputs(nn, model, batch, textLength), batch, textLength);
  nn.g.output(v, 'v', 'float32', [batch, side, side, model.config.autoencoder.latentChannels]);
  return nn.g.build();
}
