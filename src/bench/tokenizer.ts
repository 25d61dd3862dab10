/** `maskgen bench tokenizer`: training, encoding and decoding speed of the ViT-VQGAN on this backend. */
import * as tf from '@tensorflow/tfjs';
import type { VqganConfig, VqganTrainConfig } from '../vqgan/config.js';
import { vqganFlops } from '../vqgan/flops.js';
import { VitVqgan } from '../vqgan/model.js';
import { TokenizerTrainer } from '../vqgan/trainer.js';
import { timeMedian } from './timing.js';

export interface TokenizerBench {
  backend: string;
  batchSize: number;
  msPerTrainStep: number;
  trainImagesPerSec: number;
  encodeImagesPerSec: number;
  decodeImagesPerSec: number;
  /** Achieved GFLOP/s counting matMul and attention work (training = 3× forward). */
  trainGflops: number;
  encodeGflops: number;
  decodeGflops: number;
  adversarial: boolean;
}

export async function benchTokenizer(model: VqganConfig, train: VqganTrainConfig, runs = 5): Promise<TokenizerBench> {
  const b = train.batchSize;
  const adversarial = train.adversarial.weight > 0;
  // Start the discriminator at once so that its cost is in the figure when it is configured.
  const vq = new VitVqgan(model, 0);
  const trainer = new TokenizerTrainer(vq, { ...train, adversarial: { ...train.adversarial, start: 0 } });
  const images = tf.randomUniform([b, model.imageSize, model.imageSize, model.channels], 0, 1, 'float32', 1) as tf.Tensor4D;
  const trainMs = await timeMedian(() => void trainer.trainStep(images), runs, 2);
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
  trainer.dispose();
  vq.dispose();
  const f = vqganFlops(model);
  const gflops = (flops: number, ms: number) => (flops * b) / (ms * 1e6);
  return {
    backend: tf.getBackend(),
    batchSize: b,
    msPerTrainStep: trainMs,
    trainImagesPerSec: (1000 * b) / trainMs,
    encodeImagesPerSec: (1000 * b) / encodeMs,
    decodeImagesPerSec: (1000 * b) / decodeMs,
    trainGflops: gflops(3 * (f.encode + f.decode), trainMs),
    encodeGflops: gflops(f.encode, encodeMs),
    decodeGflops: gflops(f.decode, decodeMs),
    adversarial,
  };
}
