/**
 * The refiner's two training steps (trainer.ts) as ONNX graphs. The autoencoder's (trainer.ts AutoencoderTrainer) as one ONNX graph: encode,
 * decode, the L1 reconstruction loss plus the small latent L2 penalty, and the backward pass to every
 * weight. Weights are graph inputs named like the model's variables, so one compiled session serves
 * every step. The layers are nn/onnx-layers.ts's, composed as autoencoder.ts composes its own; the
 * activations are NCHW inside (ONNX's Conv layout), the images enter NHWC like the tfjs model's.
 *
 * Input: every weight, and `images` float32 [B, S, S, C] in [−1, 1]. Outputs: `loss` [],
 * `grad:<weight>` for every weight, `grad_sq` (the sum of their squares).
 *
 * The denoiser's (DenoiserTrainer): the forward of onnx-graph.ts `denoiserForward` with weights as
 * inputs, the v-prediction MSE, and the backward pass to every weight and, when asked, to the text
 * embeddings (so that a trainable text encoder takes its gradient from there, as the transformer's
 * does). What is cheap and not differentiated — the noising, the target v, the sinusoidal timestep
 * and augmentation features — is computed outside, as the tfjs path computes it. Inputs: every
 * denoiser weight, the denoiser graph's inputs (`latents` = the noisy x_t) and `target` (v) like
 * `latents`. Outputs: `loss`, `grad:<weight>`, `grad_sq`, and `grad:text` when `textGrad`. With
 * `textEncoder` (the builtin encoder being trained) the encoder runs in the graph from `text_ids`,
 * its weights inputs under `text:` whose gradients count in `grad_sq`.
 *
 * test/refiner-compiled-train.test.ts holds the losses and every gradient to tfjs autograd.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { LATENT_PENALTY, type ConvAutoencoder } from './autoencoder.js';
import type { Denoiser } from './denoiser.js';
import { denoiserForward, denoiserInputs } from './onnx-graph.js';
import { textGraphWeights, type TextGraph } from '../text/onnx-graph.js';

/** autoencoder.ts ResBlock: h + conv(gelu(conv(gelu(h)))). */
function resBlock(nn: GraphLayers, h: string, scope: string): string {
  return nn.t.add(h, nn.conv2d(nn.gelu(nn.conv2d(nn.gelu(h), `${scope}.c1`)), `${scope}.c2`));
}

/** autoencoder.ts encode, NCHW: images → latents [B, latentChannels, S/4, S/4]. */
export function encodeGraph(nn: GraphLayers, x: string): string {
  let h = nn.gelu(nn.conv2d(x, 'enc.in'));
  h = resBlock(nn, nn.conv2d(h, 'enc.down1', 2), 'enc.mid1');
  h = resBlock(nn, nn.conv2d(nn.gelu(h), 'enc.down2', 2), 'enc.mid2');
  return nn.conv2d(nn.gelu(h), 'enc.out');
}

/** autoencoder.ts decode, NCHW: latents → images. */
export function decodeGraph(nn: GraphLayers, z: string): string {
  const { t } = nn;
  let h = resBlock(nn, nn.conv2d(z, 'dec.in'), 'dec.mid2');
  h = resBlock(nn, nn.conv2d(t.upsample2x(nn.gelu(h)), 'dec.up2'), 'dec.mid1');
  h = nn.gelu(nn.conv2d(t.upsample2x(nn.gelu(h)), 'dec.up1'));
  return nn.conv2d(h, 'dec.out');
}

export function autoencoderTrainGraph(model: ConvAutoencoder, batch: number, size: number): GraphSpec {
  const nn = new GraphLayers(model.variables(), 'train');
  const { t, g } = nn;
  const images = t.input('images', 'float32', [batch, size, size, model.imageChannels]);
  const x = t.transpose(images, [0, 3, 1, 2]);
  const z = encodeGraph(nn, x);
  const recon = decodeGraph(nn, z);
  // mean |recon − x| + λ · mean(z²), as AutoencoderTrainer.computeGrads
  const loss = t.add(t.mean(t.abs(t.sub(recon, x))), t.scale(t.mean(t.square(z)), LATENT_PENALTY));
  nn.outputGradients(loss, g.floats([1], []));
  g.output(loss, 'loss', 'float32', []);
  return g.build();
}

export function denoiserTrainGraph(model: Denoiser, o: { batch: number; textLength: number; textGrad: boolean; textEncoder?: TextGraph }): GraphSpec {
  const c = model.config;
  const side = model.latentSide;
  const lc = c.autoencoder.latentChannels;
  const nn = new GraphLayers({ ...model.variables(), ...textGraphWeights(o.textEncoder) }, 'train');
  const { t, g } = nn;
  const inputs = denoiserInputs(nn, model, o.batch, o.textLength, { textGrad: o.textGrad, encoder: o.textEncoder });
  const target = t.input('target', 'float32', [o.batch, side, side, lc]);
  const v = denoiserForward(nn, model, inputs, o.batch, o.textLength);
  // mean (v − target)², as DenoiserTrainer.computeGrads
  const loss = t.mean(t.square(t.sub(v, target)));
  const grads = nn.outputGradients(loss, g.floats([1], []), o.textGrad ? [inputs.text] : []);
  g.output(loss, 'loss', 'float32', []);
  if (o.textGrad) g.output(grads[inputs.text]!, 'grad:text', 'float32', [o.batch * o.textLength, c.textDim]);
  return g.build();
}
