/**
 * The refiner autoencoder's training step (trainer.ts AutoencoderTrainer) as one ONNX graph: encode,
 * decode, the L1 reconstruction loss plus the small latent L2 penalty, and the backward pass to every
 * weight. Weights are graph inputs named like the model's variables, so one compiled session serves
 * every step. The layers are nn/onnx-layers.ts's, composed as autoencoder.ts composes its own; the
 * activations are NCHW inside (ONNX's Conv layout), the images enter NHWC like the tfjs model's.
 *
 * Input: every weight, and `images` float32 [B, S, S, C] in [−1, 1]. Outputs: `loss` [],
 * `grad:<weight>` for every weight, `grad_sq` (the sum of their squares).
 * test/refiner-compiled-train.test.ts holds the loss and every gradient to tfjs autograd.
 */
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { LATENT_PENALTY, type ConvAutoencoder } from './autoencoder.js';

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
