/**
 * Does a Fashion-MNIST bundle draw the class it is asked for? Trains (or reuses) an independent
 * CNN classifier on the real training images, checks it on the real test images, then generates
 * `--per-class` images for each of the 10 prompts at several guidance scales and reports how often
 * the classifier names the prompted class, and how far the generated images are from real ones (the
 * Fréchet distance in the classifier's features, beside that between two real sets of the same size).
 *
 *   npx tsx scripts/eval-fmnist.ts --bundle runs/fmnist --train data/fmnist-train --test data/fmnist-test
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { makeGrid, writePng } from '../src/data/images.js';
import { FASHION_MNIST_CAPTIONS } from '../src/data/fashion-mnist.js';
import { imagesToFloat32 } from '../src/data/batches.js';
import { accuracyOn, classifierFeatureStats, classify, loadClassifier, saveClassifier, trainClassifier } from '../src/eval/classifier.js';
import { frechetDistance } from '../src/eval/frechet.js';
import { Rng } from '../src/random.js';
import { hasCheckpoint } from '../src/io/checkpoint.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { tensorValues } from '../src/nn/values.js';
import { samplerFlags, samplerOptions } from './sampler-flags.js';

const args = await samplerFlags(yargs(hideBin(process.argv)))
  .option('bundle', { type: 'string', demandOption: true })
  .option('train', { type: 'string', default: 'data/fmnist-train' })
  .option('test', { type: 'string', default: 'data/fmnist-test' })
  .option('classifier', { type: 'string', default: 'runs/fmnist-classifier' })
  .option('per-class', { type: 'number', default: 50 })
  .option('guidance', { type: 'string', default: '0,1,3,5' })
  .option('seed', { type: 'number', default: 1 })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .option('grid', { type: 'string', describe: 'write a grid PNG of the first 8 images per class at the largest guidance here' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const size = 32;
let judge;
if (await hasCheckpoint(args.classifier)) {
  judge = await loadClassifier(args.classifier);
} else {
  const train = await loadImageFolder(args.train, { size, channels: 1 });
  const t0 = Date.now();
  const model = trainClassifier(train, { classes: 10, epochs: 2, batchSize: 64, seed: 0, onBatch: (d, t) => d % 200 === 0 && process.stderr.write(`classifier ${d}/${t}\n`) });
  process.stderr.write(`classifier trained in ${((Date.now() - t0) / 1000).toFixed(0)}s\n`);
  await saveClassifier(args.classifier, model, { size, channels: 1, classes: 10 });
  judge = { model, config: { size, channels: 1, classes: 10 } };
}
const test = await loadImageFolder(args.test, { size, channels: 1 });
const realAccuracy = accuracyOn(judge.model, test);
process.stderr.write(`classifier accuracy on the real test split: ${(100 * realAccuracy).toFixed(1)}%\n`);

// Diversity: the Fréchet distance (in the classifier's features) of all generated images to as many
// real test images, beside the distance between two disjoint real sets of that size.
const stats = (images01: Float32Array) => classifierFeatureStats(judge.model, images01, judge.config);
const count = 10 * args.perClass;
const order = new Rng(args.seed).permutation(test.count);
const realA = stats(imagesToFloat32(test, order.slice(0, count)));
const realB = stats(imagesToFloat32(test, order.slice(count, 2 * count)));
const realVsReal = frechetDistance(realA, realB);
process.stderr.write(`Fréchet distance between two real sets of ${count}: ${realVsReal.toFixed(2)}\n`);

const pipe = await MaskgenPipeline.load(args.bundle);
// The floor the tokenizer sets: the second real set through encode → decode, against the first.
const reconstructed = tensorValues(() => {
  const images = imagesToFloat32(test, order.slice(count, 2 * count));
  return pipe.tokenizer.reconstruct(tf.tensor4d(images, [count, size, size, 1])); // [0, 1] in and out
}) as Float32Array;
const reconstructedVsReal = frechetDistance(stats(reconstructed), realA);
process.stderr.write(`Fréchet distance of the tokenizer's reconstructions of real images to real: ${reconstructedVsReal.toFixed(2)}\n`);
const sampler = samplerOptions(args);
const scales = args.guidance.split(',').map(Number);
const results: Record<string, { accuracy: number; frechet: number; perClass: number[]; seconds: number }> = {};
for (const guidance of scales) {
  const t0 = Date.now();
  const images = await pipe.generate({ prompts: [...FASHION_MNIST_CAPTIONS], n: args.perClass, guidance, seed: args.seed, batchSize: 50, ...sampler });
  const pixels = new Float32Array(images.length * size * size);
  images.forEach((im, i) => pixels.set(im.image.data, i * size * size));
  const pred = classify(judge.model, pixels, judge.config);
  const perClass = FASHION_MNIST_CAPTIONS.map((_, c) => {
    let hits = 0;
    images.forEach((im, i) => {
      if (im.prompt === FASHION_MNIST_CAPTIONS[c] && pred[i] === c) hits++;
    });
    return hits / args.perClass;
  });
  const accuracy = perClass.reduce((a, b) => a + b, 0) / perClass.length;
  const frechet = frechetDistance(stats(pixels), realA);
  results[String(guidance)] = { accuracy, frechet, perClass, seconds: (Date.now() - t0) / 1000 };
  process.stderr.write(`guidance ${guidance}: ${(100 * accuracy).toFixed(1)}% recognized as the prompted class, Fréchet distance to real ${frechet.toFixed(2)}\n`);
  if (args.grid && guidance === Math.max(...scales)) {
    const rows = FASHION_MNIST_CAPTIONS.flatMap((p) => images.filter((im) => im.prompt === p).slice(0, 8).map((im) => im.image));
    await writePng(path.resolve(args.grid), makeGrid(rows, 8, 1, 128));
  }
}
pipe.dispose();
judge.model.dispose();
process.stdout.write(JSON.stringify({ backend, bundle: args.bundle, perClassImages: args.perClass, classifierTestAccuracy: realAccuracy, realVsReal, reconstructedVsReal, sampler, guidance: results }) + '\n');
