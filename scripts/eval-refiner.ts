/**
 * Is the refiner better than bicubic upsampling? On held-out real images: box-downsample by the
 * refiner's factor, upsample back with bicubic and with the refiner (at several guidance scales),
 * and compare with the originals by PSNR and by the Fréchet distance between the features of an
 * independent classifier trained on real images (trained here if `--classifier` holds none). Also
 * reports the autoencoder's own reconstructions (the refiner's ceiling) and, as the noise floor,
 * the distance between real training images and the held-out ones.
 *
 *   npx tsx scripts/eval-refiner.ts --refiner runs/fmnist-refiner --data data/fmnist-test \
 *     --train-data data/fmnist-train --classifier runs/fmnist28-classifier --label label
 *   npx tsx scripts/eval-refiner.ts --refiner runs/emoji-refiner --data data/emoji64 \
 *     --holdout runs/emoji-refiner/holdout.json --classifier runs/emoji64-classifier --label category
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { imagesToFloat32 } from '../src/data/batches.js';
import { loadImageFolder, selectImages, type ImageSet } from '../src/data/imagefolder.js';
import { makeGrid, writePng, type RawImage } from '../src/data/images.js';
import { bicubicUpsample, boxDownsample } from '../src/data/rescale.js';
import { loadRefiner } from '../src/diffusion-refiner/io.js';
import { classifierFeatureStats, fieldClasses, labelsFromField, loadClassifier, saveClassifier, trainClassifier } from '../src/eval/classifier.js';
import { frechetDistance } from '../src/eval/frechet.js';
import { hasCheckpoint } from '../src/io/checkpoint.js';
import { Rng } from '../src/random.js';
import { psnr } from '../src/vqgan/metrics.js';

const args = await yargs(hideBin(process.argv))
  .option('refiner', { type: 'string', demandOption: true, describe: 'bundle or refiner folder' })
  .option('data', { type: 'string', demandOption: true, describe: 'folder of real high-resolution images' })
  .option('holdout', { type: 'string', describe: 'holdout.json from train-refiner: evaluate on these files of --data only' })
  .option('train-data', { type: 'string', describe: 'images to train the classifier on (default: --data minus the held-out files)' })
  .option('classifier', { type: 'string', demandOption: true, describe: 'classifier folder (trained and saved here when empty)' })
  .option('label', { type: 'string', default: 'label', describe: 'metadata field with the class: "label" (an integer) or e.g. "category" (strings)' })
  .option('epochs', { type: 'number', default: 3 })
  .option('limit', { type: 'number', default: 500, describe: 'held-out images to evaluate (a seeded sample)' })
  .option('guidance', { type: 'string', default: '0,1,3' })
  .option('steps', { type: 'number', default: 20 })
  .option('batch', { type: 'number', default: 50 })
  .option('seed', { type: 'number', default: 1 })
  .option('figure', { type: 'string', describe: 'write a side-by-side PNG: low (nearest), bicubic, refined at each guidance, original' })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const refiner = await loadRefiner(args.refiner);
const { size, factor, channels } = refiner.config;
const low = refiner.lowSize;
const t00 = Date.now();

/** Integer labels from the metadata field `--label` (strings are numbered in sorted order). */
function withLabels(set: ImageSet, classes: string[]): ImageSet {
  if (args.label === 'label') return set;
  return { ...set, labels: labelsFromField(set, args.label, classes) };
}

const all = await loadImageFolder(args.data, { size, channels });
const classNames = args.label === 'label' ? [] : fieldClasses(all, args.label);
let evalSet = all;
let trainSet: ImageSet | undefined;
if (args.holdout) {
  const held = new Set((JSON.parse(await readFile(args.holdout, 'utf8')) as { files: string[] }).files);
  const heldIdx = all.files.flatMap((f, i) => (held.has(f) ? [i] : []));
  evalSet = selectImages(all, heldIdx);
  trainSet = selectImages(all, all.files.flatMap((f, i) => (held.has(f) ? [] : [i])));
}
if (args.trainData) trainSet = await loadImageFolder(args.trainData, { size, channels });
trainSet ??= all;
const pick = new Rng(args.seed).permutation(evalSet.count).slice(0, Math.min(args.limit, evalSet.count)).sort((a, b) => a - b);
evalSet = selectImages(evalSet, pick);
const n = evalSet.count;
const classes = args.label === 'label' ? 10 : classNames.length;

let judge;
if (await hasCheckpoint(args.classifier)) judge = await loadClassifier(args.classifier);
else {
  const t0 = Date.now();
  const model = trainClassifier(withLabels(trainSet, classNames), { classes, epochs: args.epochs, batchSize: 64, seed: 0, onBatch: (d, t) => d % 200 === 0 && process.stderr.write(`classifier ${d}/${t}\n`) });
  process.stderr.write(`classifier trained in ${((Date.now() - t0) / 1000).toFixed(0)}s\n`);
  await saveClassifier(args.classifier, model, { size, channels, classes });
  judge = { model, config: { size, channels, classes } };
}

const stats = (images01: Float32Array) => classifierFeatureStats(judge.model, images01, judge.config);
const meanPsnr = (a: Float32Array, b: Float32Array) => {
  const per = size * size * channels;
  let s = 0;
  for (let i = 0; i < n; i++) s += psnr(a.subarray(i * per, (i + 1) * per), b.subarray(i * per, (i + 1) * per));
  return s / n;
};
const to01 = (x: Float32Array) => x.map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));

const real01 = imagesToFloat32(evalSet, Array.from({ length: n }, (_, i) => i));
const realSigned = real01.map((v) => v * 2 - 1);
const lowSigned = boxDownsample(realSigned, n, size, channels, factor);
const realStats = stats(real01);
const trainPick = new Rng(args.seed + 1).permutation(trainSet.count).slice(0, n);
const floor = frechetDistance(stats(imagesToFloat32(trainSet, trainPick)), realStats);

const bicubic01 = to01(bicubicUpsample(lowSigned, n, low, channels, factor));
const per = size * size * channels;
const recon = new Float32Array(n * per);
for (let s = 0; s < n; s += args.batch) {
  const m = Math.min(args.batch, n - s);
  const r = tf.tidy(() => refiner.decode(refiner.encode(tf.tensor4d(realSigned.subarray(s * per, (s + m) * per), [m, size, size, channels]))));
  recon.set(r.dataSync() as Float32Array, s * per);
  r.dispose();
}
const recon01 = to01(recon);
const result: Record<string, unknown> = {
  backend,
  refiner: args.refiner,
  images: n,
  size,
  factor,
  steps: args.steps,
  frechetFloorTrainVsHeldOut: floor,
  bicubic: { psnr: meanPsnr(bicubic01, real01), frechet: frechetDistance(stats(bicubic01), realStats) },
  autoencoder: { psnr: meanPsnr(recon01, real01), frechet: frechetDistance(stats(recon01), realStats) },
};
process.stderr.write(`${JSON.stringify(result)}\n`);

const captions = evalSet.captions;
await refiner.text.prepare?.([...new Set(captions), '']);
const refined: Record<string, Float32Array> = {};
const guidanceResults: Record<string, unknown> = {};
for (const g of args.guidance.split(',').map(Number)) {
  const t0 = Date.now();
  const out = new Float32Array(n * per);
  const lowPer = low * low * channels;
  for (let s = 0; s < n; s += args.batch) {
    const m = Math.min(args.batch, n - s);
    out.set(refiner.refine(lowSigned.subarray(s * lowPer, (s + m) * lowPer), captions.slice(s, s + m), { steps: args.steps, guidance: g, seed: args.seed + s }), s * per);
  }
  const o01 = to01(out);
  refined[String(g)] = o01;
  guidanceResults[String(g)] = { psnr: meanPsnr(o01, real01), frechet: frechetDistance(stats(o01), realStats), seconds: (Date.now() - t0) / 1000 };
  process.stderr.write(`guidance ${g}: ${JSON.stringify(guidanceResults[String(g)])}\n`);
}
result.refined = guidanceResults;
result.seconds = (Date.now() - t00) / 1000;

if (args.figure) {
  const show = Math.min(8, n);
  const scale = Math.max(1, Math.round(96 / size));
  const img = (data: Float32Array, i: number, side: number, up: number): RawImage<Float32Array> => {
    const src = data.subarray(i * side * side * channels, (i + 1) * side * side * channels);
    const S = side * up;
    const out = new Float32Array(S * S * channels);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < channels; c++) out[(y * S + x) * channels + c] = src[(Math.floor(y / up) * side + Math.floor(x / up)) * channels + c]!;
    return { data: out, width: S, height: S, channels };
  };
  const low01 = to01(lowSigned);
  const rows: RawImage<Float32Array>[] = [];
  // evenly spaced over the evaluated images (file order groups similar images together)
  for (const i of Array.from({ length: show }, (_, k) => Math.floor((k * n) / show))) {
    rows.push(img(low01, i, low, scale * factor), img(bicubic01, i, size, scale));
    for (const g of Object.keys(refined)) rows.push(img(refined[g]!, i, size, scale));
    rows.push(img(real01, i, size, scale));
  }
  await writePng(path.resolve(args.figure), makeGrid(rows, 3 + Object.keys(refined).length, 2));
  result.figure = args.figure;
  result.figureColumns = ['low (nearest)', 'bicubic', ...Object.keys(refined).map((g) => `refined s=${g}`), 'original'];
}
refiner.dispose();
judge.model.dispose();
process.stdout.write(JSON.stringify(result) + '\n');
