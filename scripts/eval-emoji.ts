/**
 * Does the emoji model draw the kind of emoji it is asked for? For a seeded sample of the emoji
 * names, generate one image each (refined to 64 px when the bundle has a refiner) at several guidance
 * scales and ask an independent classifier, trained on the real 64 px emoji, which of the emoji
 * categories (Smileys & Emotion, Animals & Nature, Food & Drink, …) it shows. Chance is the largest
 * category's share. Also the Fréchet distance of the generated images to all the real ones in the
 * classifier's features (lower is closer; stray specks and broken shapes raise it). The classifier is trained here when `--classifier` holds none: on `--train`
 * (default: the training side of `maskgen data split`), scored on `--held` (the held-out side).
 *
 *   npx tsx scripts/eval-emoji.ts --bundle models/maskgen-emoji-small --classifier runs/emoji64-classifier
 *   npx tsx scripts/eval-emoji.ts ... --temperature 0.8 --choice-temperature 2 --steps 16   # a sampler setting
 *   npx tsx scripts/eval-emoji.ts ... --prompts 2000 --ceiling   # also what this tokenizer and refiner allow at best
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { loadImageFolder, type ImageSet } from '../src/data/imagefolder.js';
import { imagesToFloat32 } from '../src/data/batches.js';
import { accuracyOn, classifierFeatureStats, classify, fieldClasses, labelsFromField, loadClassifier, saveClassifier, trainClassifier } from '../src/eval/classifier.js';
import { frechetDistance } from '../src/eval/frechet.js';
import { bicubicUpsample } from '../src/data/rescale.js';
import { hasCheckpoint } from '../src/io/checkpoint.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { speckShare } from '../src/eval/specks.js';
import { wilsonInterval } from '../src/eval/proportion.js';
import { samplerFlags, samplerOptions } from './sampler-flags.js';
import { Rng } from '../src/random.js';
import type { RawImage } from '../src/data/images.js';

const args = await samplerFlags(yargs(hideBin(process.argv)))
  .option('bundle', { type: 'string', demandOption: true })
  .option('data', { type: 'string', default: 'data/emoji64', describe: 'all emoji: the prompts are drawn from their names' })
  .option('train', { type: 'string', default: 'data/emoji64-train', describe: 'real images the classifier trains on (when it is trained here)' })
  .option('held', { type: 'string', default: 'data/emoji64-held', describe: 'real images the classifier is scored on' })
  .option('refiner', { type: 'string', describe: "refine with this bundle's or run's refiner (default: the bundle's own)" })
  .option('classifier', { type: 'string', demandOption: true })
  .option('epochs', { type: 'number', default: 5 })
  .option('prompts', { type: 'number', default: 200 })
  .option('guidance', { type: 'string', default: '0,3', describe: "guidance scales to generate at, comma-separated ('' for none, e.g. with --ceiling)" })
  .option('refine', { type: 'boolean', default: true })
  .option('upsample', { choices: ['refiner', 'bicubic'] as const, default: 'refiner' as const, describe: 'how the generated base images reach the classifier size: the refiner, or bicubic upsampling' })
  .option('seed', { type: 'number', default: 1 })
  .option('ceiling', {
    type: 'boolean',
    default: false,
    describe: 'also judge the real images of the prompted names brought to the base size and refined, and through the tokenizer and refined: what a perfect transformer would score with this tokenizer and refiner',
  })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const size = 64;
const data = await loadImageFolder(args.data, { size, channels: 3 });
const categories = fieldClasses(data, 'category');
const withLabels = (set: ImageSet): ImageSet => ({ ...set, labels: labelsFromField(set, 'category', categories) });

let judge;
if (await hasCheckpoint(args.classifier)) {
  judge = await loadClassifier(args.classifier);
} else {
  const train = withLabels(await loadImageFolder(args.train, { size, channels: 3 }));
  const t0 = Date.now();
  const model = trainClassifier(train, { classes: categories.length, epochs: args.epochs, batchSize: 64, seed: 0, onBatch: (d, t) => d % 100 === 0 && process.stderr.write(`classifier ${d}/${t}\n`) });
  process.stderr.write(`classifier trained in ${((Date.now() - t0) / 1000).toFixed(0)}s\n`);
  await saveClassifier(args.classifier, model, { size, channels: 3, classes: categories.length });
  judge = { model, config: { size, channels: 3, classes: categories.length } };
}
const realAccuracy = accuracyOn(judge.model, withLabels(await loadImageFolder(args.held, { size, channels: 3 })));
process.stderr.write(`classifier on the real held-out emoji: ${(100 * realAccuracy).toFixed(1)}%\n`);

const stats = (images01: Float32Array) => classifierFeatureStats(judge.model, images01, judge.config);
const allReal = imagesToFloat32(data, Array.from({ length: data.count }, (_, i) => i));
const realStats = stats(allReal);
const labels = labelsFromField(data, 'category', categories);
const categoryOf = new Map(data.captions.map((c, i) => [c, labels[i]!]));
const names = [...categoryOf.keys()];
const prompts = new Rng(args.seed).permutation(names.length).slice(0, args.prompts).map((i) => names[i]!);
const counts = categories.map((_, k) => prompts.filter((p) => categoryOf.get(p) === k).length);
const chance = Math.max(...counts) / prompts.length;

// The same judge on the real images of the prompted names (both vendors; most of them in its own
// training side): what an image indistinguishable from the real ones would score.
const promptSet = new Set(prompts);
const realOfPrompts = Array.from({ length: data.count }, (_, i) => i).filter((i) => promptSet.has(data.captions[i]!));
const realPred = classify(judge.model, allReal, judge.config);
const realOfPromptsAccuracy = realOfPrompts.filter((i) => realPred[i] === labels[i]).length / realOfPrompts.length;
process.stderr.write(`classifier on the ${realOfPrompts.length} real images of the prompted names: ${(100 * realOfPromptsAccuracy).toFixed(1)}%\n`);

const pipe = await MaskgenPipeline.load(args.bundle, { refiner: args.refine || args.ceiling ? args.refiner : false });
// Specks (src/eval/specks.ts) in the transformer's base images, beside the same count in the real
// emoji at the base size, token-sized patches.
const { imageSize: baseSize, patchSize } = pipe.tokenizer.config;
const meanSpecks = (ims: Float32Array[]) => ims.reduce((s, im) => s + speckShare(im, baseSize, 3, patchSize), 0) / ims.length;
const realBase = await loadImageFolder(args.data, { size: baseSize, channels: 3 });
const realSpecks = meanSpecks(Array.from({ length: realBase.count }, (_, i) => imagesToFloat32(realBase, [i])));
process.stderr.write(`specks in real emoji at ${baseSize} px: ${(100 * realSpecks).toFixed(2)}% of patches\n`);
// The ceilings of this pipeline: the real images of the prompted names at the base size, refined
// (what the refiner keeps), and also through the tokenizer first (what a transformer that drew every
// name's real token grid would score).
let ceilings: Record<string, number> | undefined;
if (args.ceiling) {
  if (!pipe.refiner) throw new Error('--ceiling needs a refiner to bring the base images to the classifier size');
  const lows: RawImage<Float32Array>[] = realOfPrompts.map((i) => ({ data: imagesToFloat32(realBase, [i]), width: baseSize, height: baseSize, channels: 3 }));
  const captions = realOfPrompts.map((i) => data.captions[i]!);
  const judgeRefined = async (images: typeof lows): Promise<number> => {
    const pixels = new Float32Array(images.length * size * size * 3);
    for (let start = 0; start < images.length; start += 50) {
      const refined = await pipe.refine(images.slice(start, start + 50), captions.slice(start, start + 50), { seed: args.seed + start });
      refined.forEach((im, j) => pixels.set(im.data, (start + j) * size * size * 3));
    }
    const pred = classify(judge.model, pixels, judge.config);
    return realOfPrompts.filter((i, j) => pred[j] === labels[i]).length / realOfPrompts.length;
  };
  // the same base images upsampled by bicubic instead of the refiner
  const bicubic = bicubicUpsample(imagesToFloat32(realBase, realOfPrompts), realOfPrompts.length, baseSize, 3, size / baseSize);
  const bicubicPred = classify(judge.model, bicubic, judge.config);
  const realBicubic = realOfPrompts.filter((i, j) => bicubicPred[j] === labels[i]).length / realOfPrompts.length;
  const refined = await judgeRefined(lows);
  const tokenized = await judgeRefined(lows.map((im) => pipe.decodeTokens(pipe.encodeImage(im), 1)[0]!));
  ceilings = { realBicubic, realRefined: refined, realTokenizedRefined: tokenized };
  process.stderr.write(`ceilings: the real images at ${baseSize} px upsampled by bicubic ${(100 * realBicubic).toFixed(1)}%, refined ${(100 * refined).toFixed(1)}%, through the tokenizer and refined ${(100 * tokenized).toFixed(1)}%\n`);
}
const refine = args.refine && args.upsample === 'refiner' && pipe.refiner ? true : false;
const sampler = samplerOptions(args);
const results: Record<string, { accuracy: number; accuracy95: [number, number]; frechet: number; specks: number; seconds: number }> = {};
for (const guidance of args.guidance.split(',').filter((g) => g.trim() !== '').map(Number)) {
  const t0 = Date.now();
  const images = await pipe.generate({ prompts, n: 1, guidance, seed: args.seed, batchSize: 50, refine, ...sampler });
  let pixels: Float32Array = new Float32Array(images.length * size * size * 3);
  if (args.upsample === 'bicubic') {
    const base = new Float32Array(images.length * baseSize * baseSize * 3);
    images.forEach((im, i) => base.set(im.image.data, i * baseSize * baseSize * 3));
    pixels = bicubicUpsample(base, images.length, baseSize, 3, size / baseSize);
  } else {
    images.forEach((im, i) => {
      if (im.image.width !== size) throw new Error(`images are ${im.image.width} px, the classifier takes ${size} (run with a refiner to 64 px, or --upsample bicubic)`);
      pixels.set(im.image.data, i * size * size * 3);
    });
  }
  const pred = classify(judge.model, pixels, judge.config);
  const hits = images.filter((im, i) => pred[i] === categoryOf.get(im.prompt)).length;
  const frechet = frechetDistance(stats(pixels), realStats);
  const specks = meanSpecks(images.map((im) => (im.base ?? im.image).data));
  const ci = wilsonInterval(hits, images.length);
  results[String(guidance)] = { accuracy: hits / images.length, accuracy95: [ci.low, ci.high], frechet, specks, seconds: (Date.now() - t0) / 1000 };
  process.stderr.write(`guidance ${guidance}: ${(100 * hits / images.length).toFixed(1)}% in the prompted category (95 % interval ${(100 * ci.low).toFixed(1)}–${(100 * ci.high).toFixed(1)}), Fréchet distance to all real emoji ${frechet.toFixed(2)}, specks ${(100 * specks).toFixed(2)}% of patches\n`);
}
pipe.dispose();
process.stdout.write(JSON.stringify({ backend, bundle: args.bundle, prompts: prompts.length, categories, chance, classifierOnRealHeldOut: realAccuracy, classifierOnRealOfPrompts: realOfPromptsAccuracy, ...(ceilings ? { ceilings } : {}), realSpecks, upsample: args.upsample, sampler, guidance: results }) + '\n');
