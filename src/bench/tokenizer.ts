/**
 * `maskgen bench tokenizer`: training, encoding and decoding speed of the ViT-VQGAN on this backend;
 * on onnx the compiled training step (one ONNX Runtime session) and the per-kernel one (tfjs
 * autograd) side by side, measured in the same run, one step of each in turn.
 */
import * as tf from '@tensorflow/tfjs';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import type { VqganConfig, VqganTrainConfig } from '../vqgan/config.js';
import { vqganFlops } from '../vqgan/flops.js';
import { VitVqgan } from '../vqgan/model.js';
import { TokenizerTrainer } from '../vqgan/trainer.js';
import { pairedRatio, timeInterleavedStats, timeMedian } from './timing.js';

export interface TokenizerBench {
  backend: string;
  /** Whether the training step ran as one compiled ONNX Runtime session (the onnx backend) or as tfjs kernels. */
  compiled: boolean;
  batchSize: number;
  msPerTrainStep: number;
  /** When compiled: the per-kernel (tfjs autograd) step measured in the same run, taken in turn with the compiled one, and how many times slower it is (the median of the two steps' ratio in each round). */
  msPerTrainStepPerKernel?: number;
  trainSpeedup?: number;
  trainImagesPerSec: number;
  encodeImagesPerSec: number;
  decodeImagesPerSec: number;
  /** Achieved GFLOP/s counting matMul and attention work (training = 3× forward). */
  trainGflops: number;
  encodeGflops: number;
  decodeGflops: number;
  adversarial: boolean;
}

export async function benchTokenizer(model: VqganConfig, train: VqganTrainConfig, runs = 5, o: { compiled?: boolean } = {}): Promise<TokenizerBench> {
  const compiled = o.compiled ?? compiledByDefault();
  const b = train.batchSize;
  const adversarial = train.adversarial.weight > 0;
  const vq = new VitVqgan(model, 0);
  const images = tf.randomUniform([b, model.imageSize, model.imageSize, model.channels], 0, 1, 'float32', 1) as tf.Tensor4D;
  // Start the discriminator at once so that its cost is in the figure when it is configured.
  const trainer = (stepCompiled: boolean) => new TokenizerTrainer(vq, { ...train, adversarial: { ...train.adversarial, start: 0 } }, { compiled: stepCompiled });
  // compiled and per-kernel steps taken in turn (on the same weights), so that a varying load weighs on both alike
  const trainers: Record<string, TokenizerTrainer> = { perKernel: trainer(false) };
  if (compiled) trainers.compiled = trainer(true);
  const ms = await timeInterleavedStats(Object.fromEntries(Object.entries(trainers).map(([k, t]) => [k, () => void t.trainStep(images)])), runs, 2, 1);
  for (const t of Object.values(trainers)) t.dispose();
  const trainMs = (ms.compiled ?? ms.perKernel!).median;
  const perKernelMs = compiled ? ms.perKernel!.median : undefined;
  const speedup = compiled ? pairedRatio(ms.perKernel!, ms.compiled!) : undefined;
  const tokens = vq.encode(images);
  const encodeMs = await timeMedian(() => {
    const t = vq.encode(images);
    t.dataSync();
    t.dispose();
  }, runs, 1);
  const decodeMs = await timeMedian(() => {
    const x = vq.decode(tokens);
    x.dataSync();
    x.dispose();
  }, runs, 1);
  tf.dispose([images, tokens]);
  vq.dispose();
  const f = vqganFlops(model);
  const gflops = (flops: number, ms: number) => (flops * b) / (ms * 1e6);
  return {
    backend: tf.getBackend(),
    compiled,
    batchSize: b,
    msPerTrainStep: trainMs,
    ...(perKernelMs === undefined ? {} : { msPerTrainStepPerKernel: perKernelMs, trainSpeedup: speedup }),
    trainImagesPerSec: (1000 * b) / trainMs,
    encodeImagesPerSec: (1000 * b) / encodeMs,
    decodeImagesPerSec: (1000 * b) / decodeMs,
    trainGflops: gflops(3 * (f.encode + f.decode), trainMs),
    encodeGflops: gflops(f.encode, encodeMs),
    decodeGflops: gflops(f.decode, decodeMs),
    adversarial,
  };
}
