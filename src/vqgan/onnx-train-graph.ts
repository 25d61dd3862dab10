/**
 * The ViT-VQGAN's training step (trainer.ts TokenizerTrainer.computeGrads) as one ONNX graph: encode,
 * the factorized l2-normalized codebook's lookup (ArgMax of the cosine similarity, Gather of the
 * normalized codes, straight-through to the decoder), decode, the L2/L1 reconstruction, codebook and
 * commitment losses, and the backward pass to every weight. With the discriminator (once its warm-up
 * is over) the same graph adds the generator's hinge loss through the discriminator (its weights held
 * fixed) and the discriminator's own hinge loss on the real images and the (fixed) reconstructions,
 * with a second backward pass to the discriminator's weights — what the trainer's two tfjs autograd
 * passes compute, in one native call.
 *
 * The layers are nn/onnx-layers.ts's, composed as model.ts, quantizer.ts and discriminator.ts compose
 * their own; the discriminator's convolutions run NCHW inside. Weights are graph inputs named like the
 * model's variables (the discriminator's as `disc/<name>`), so one compiled session serves every step.
 *
 * Input: every weight, and `images` float32 [B, S, S, C] in [0, 1]. Outputs: the loss terms named as
 * trainer.ts LOSS_TERMS names them (`loss`, `l2`, `l1`, `codebook`, `commit`, and with the
 * discriminator `gAdv`, `dLoss`) as float32 [], `grad:<weight>` for every weight, `grad_sq` (the sum of the squares of the generator's, for
 * clipping by global norm), the chosen code ids `ids` int32 [B·N] and the normalized encoder outputs
 * `latents` float32 [B·N, codeDim]. test/vqgan-compiled-train.test.ts holds them to tfjs autograd.
 */
import type * as tf from '@tensorflow/tfjs';
import type { GradTape } from '../backend/onnx/autodiff.js';
import type { GraphSpec } from '../backend/onnx/graphs.js';
import { GraphLayers } from '../nn/onnx-layers.js';
import { type VqganConfig, type VqganTrainConfig, tokensPerSide } from './config.js';
import { LEAKY_SLOPE, type PatchDiscriminator } from './discriminator.js';
import type { VitVqgan } from './model.js';

/** The prefix of the discriminator's weights among the graph's inputs and gradients. */
export const DISC_PREFIX = 'disc/';

const NHWC_TO_NCHW = [0, 3, 1, 2];
const HWIO_TO_OIHW = [3, 2, 0, 1];

/** The weights of both models under their graph names: the generator's, and the discriminator's prefixed. */
export function trainGraphWeights(model: VitVqgan, disc?: PatchDiscriminator): Record<string, tf.Variable> {
  const vars = { ...model.variables() };
  if (disc) for (const [k, v] of Object.entries(disc.variables())) vars[`${DISC_PREFIX}${k}`] = v;
  return vars;
}

/** model.ts addPositions: a learned [N, D] table added to every sequence of x [B·N, D]. */
function addPositions(nn: GraphLayers, x: string, pos: string, batch: number): string {
  const { t } = nn;
  const [n, d] = nn.shape(pos) as [number, number];
  return t.reshape(t.add(t.reshape(x, [batch, n, d]), nn.weight(pos)), [batch * n, d]);
}

/** model.ts encodeLatents: images in [−1, 1] [B, S, S, C] → latents [B·N, codeDim]. */
function encode(nn: GraphLayers, x: string, c: VqganConfig, batch: number): string {
  let h = addPositions(nn, nn.linear(nn.patchify(x, [batch, c.imageSize, c.channels], c.patchSize), 'enc.patch'), 'enc.pos', batch);
  for (let i = 0; i < c.depth; i++) h = nn.block(h, { batch, t: tokensPerSide(c) ** 2, heads: c.heads }, `enc.blocks.${i}`);
  return nn.linear(nn.layerNorm(h, 'enc.norm'), 'enc.to_code');
}

/** model.ts decodeLatents: [B·N, codeDim] → images in [−1, 1] [B, S, S, C]. */
function decode(nn: GraphLayers, z: string, c: VqganConfig, batch: number): string {
  let h = addPositions(nn, nn.linear(z, 'dec.from_code'), 'dec.pos', batch);
  const depth = c.decoderDepth ?? c.depth;
  for (let i = 0; i < depth; i++) h = nn.block(h, { batch, t: tokensPerSide(c) ** 2, heads: c.heads }, `dec.blocks.${i}`);
  const patches = nn.t.tanh(nn.linear(nn.layerNorm(h, 'dec.norm'), 'dec.to_pixels'));
  return nn.unpatchify(patches, [batch, tokensPerSide(c), c.channels], c.patchSize);
}

/** quantizer.ts quantize: the normalized latents, the chosen ids (int64), the two losses and the straight-through output. */
function quantize(nn: GraphLayers, z: string) {
  const { t } = nn;
  const zn = t.l2Normalize(z);
  const codes = t.l2Normalize(nn.weight('quant.codebook'));
  const ids = t.argMax(t.matMul(zn, t.transpose(codes, [1, 0])), 1);
  const q = t.gather(codes, ids);
  return {
    zn,
    ids,
    codebookLoss: t.mean(t.square(t.sub(t.stopGradient(zn), q))),
    commitLoss: t.mean(t.square(t.sub(zn, t.stopGradient(q)))),
    zq: t.straightThrough(zn, q),
  };
}

/** discriminator.ts PatchDiscriminator's layers as [kernel OIHW, bias], held fixed (no gradient) when `frozen`. */
function discriminatorLayers(nn: GraphLayers, strides: readonly number[], frozen: boolean): { w: string; b: string; stride: number }[] {
  const { t } = nn;
  const w = (name: string) => (frozen ? t.stopGradient(nn.weight(name)) : nn.weight(name));
  return strides.map((stride, i) => ({ w: t.transpose(w(`${DISC_PREFIX}conv${i}.w`), HWIO_TO_OIHW), b: w(`${DISC_PREFIX}conv${i}.b`), stride }));
}

/** PatchDiscriminator.apply on NHWC images: patch logits (NCHW). */
function discriminate(t: GradTape, x: string, layers: readonly { w: string; b: string; stride: number }[]): string {
  let h = t.transpose(x, NHWC_TO_NCHW);
  layers.forEach((l, i) => {
    h = t.conv(h, l.w, l.b, l.stride);
    if (i < layers.length - 1) h = t.leakyRelu(h, LEAKY_SLOPE);
  });
  return h;
}

/**
 * The step's graph for a batch of `batch` images; with `disc`, the adversarial phase's (the
 * generator's hinge loss and the discriminator's gradients included).
 */
export function tokenizerTrainGraph(model: VitVqgan, train: VqganTrainConfig, batch: number, disc?: PatchDiscriminator): GraphSpec {
  const c = model.config;
  const nn = new GraphLayers(trainGraphWeights(model, disc), 'train');
  const { t, g } = nn;
  const images = t.input('images', 'float32', [batch, c.imageSize, c.imageSize, c.channels]);
  const target = t.shift(t.scale(images, 2), -1);
  const qz = quantize(nn, encode(nn, target, c, batch));
  const recon = decode(nn, qz.zq, c, batch);

  const diff = t.sub(recon, target);
  const l2 = t.mean(t.square(diff));
  const l1 = t.mean(t.abs(diff));
  let loss = t.add(t.add(t.scale(l2, train.l2), t.scale(l1, train.l1)), t.add(t.scale(qz.codebookLoss, train.codebook), t.scale(qz.commitLoss, train.beta)));
  const terms: Record<string, string> = { l2, l1, codebook: qz.codebookLoss, commit: qz.commitLoss };
  let dLoss: string | undefined;
  if (disc) {
    // the generator's side, −mean D(recon), through the discriminator held fixed
    const gAdv = t.scale(t.mean(discriminate(t, recon, discriminatorLayers(nn, disc.strides, true))), -1);
    loss = t.add(loss, t.scale(gAdv, train.adversarial.weight));
    terms.gAdv = gAdv;
    // the discriminator's: mean relu(1 − D(real)) + mean relu(1 + D(fake)), the reconstructions held fixed
    // (both halves in one batch: half the convolutions, each twice as large)
    const both = discriminate(t, t.concat([target, t.stopGradient(recon)], 0), discriminatorLayers(nn, disc.strides, false));
    const [real, fake] = t.split(both, 0, 2) as [string, string];
    dLoss = t.add(t.mean(t.relu(t.shift(t.scale(real, -1), 1))), t.mean(t.relu(t.shift(fake, 1))));
    terms.dLoss = dLoss;
  }

  const names = nn.names();
  nn.outputGradientsOf(loss, g.floats([1], []), names.filter((n) => !n.startsWith(DISC_PREFIX)), 'grad_sq');
  if (dLoss) nn.outputGradientsOf(dLoss, g.floats([1], []), names.filter((n) => n.startsWith(DISC_PREFIX)), undefined);
  g.output(loss, 'loss', 'float32', []);
  for (const [name, value] of Object.entries(terms)) g.output(value, name, 'float32', []);
  const rows = batch * tokensPerSide(c) ** 2;
  g.output(g.node('Cast', [qz.ids], { to: { i: 6 } }), 'ids', 'int32', [rows]);
  g.output(qz.zn, 'latents', 'float32', [rows, c.codeDim]);
  return g.build();
}
