/**
 * Does the emoji model draw the kind of emoji it is asked for? For a seeded sample of the emoji
 * names, generate one image each (refined to 64 px when the bundle has a refiner) at several guidance
 * scales and ask an independent classifier, trained on the real 64 px emoji (by
 * scripts/eval-refiner.ts --label category), which of the emoji categories (Smileys & Emotion,
 * Animals & Nature, Food & Drink, …) it shows. Chance is the largest category's share.
 *
 *   npx tsx scripts/eval-emoji.ts --bundle models/maskgen-emoji-small --data data/emoji64 --classifier runs/emoji64-classifier
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { classify, fieldClasses, labelsFromField, loadClassifier } from '../src/eval/classifier.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { Rng } from '../src/random.js';

const args = await yargs(hideBin(process.argv))
  .option('bundle', { type: 'string', demandOption: true })
  .option('data', { type: 'string', default: 'data/emoji64' })
  .option('classifier', { type: 'string', demandOption: true })
  .option('prompts', { type: 'number', default: 200 })
  .option('guidance', { type: 'string', default: '0,3' })
  .option('seed', { type: 'number', default: 1 })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const judge = await loadClassifier(args.classifier);
const size = judge.config.size;
const data = await loadImageFolder(args.data, { size, channels: 3 });
const categories = fieldClasses(data, 'category');
const labels = labelsFromField(data, 'category', categories);
const categoryOf = new Map(data.captions.map((c, i) => [c, labels[i]!]));
const names = [...categoryOf.keys()];
const prompts = new Rng(args.seed).permutation(names.length).slice(0, args.prompts).map((i) => names[i]!);
const counts = categories.map((_, k) => prompts.filter((p) => categoryOf.get(p) === k).length);
const chance = Math.max(...counts) / prompts.length;

const pipe = await MaskgenPipeline.load(args.bundle);
const results: Record<string, { accuracy: number; seconds: number }> = {};
for (const guidance of args.guidance.split(',').map(Number)) {
  const t0 = Date.now();
  const images = await pipe.generate({ prompts, n: 1, guidance, seed: args.seed, batchSize: 50, refine: pipe.refiner ? true : undefined });
  if (images[0]!.image.width !== size) throw new Error(`images are ${images[0]!.image.width} px, the classifier takes ${size}`);
  const pixels = new Float32Array(images.length * size * size * 3);
  images.forEach((im, i) => pixels.set(im.image.data, i * size * size * 3));
  const pred = classify(judge.model, pixels, judge.config);
  const hits = images.filter((im, i) => pred[i] === categoryOf.get(im.prompt)).length;
  results[String(guidance)] = { accuracy: hits / images.length, seconds: (Date.now() - t0) / 1000 };
  process.stderr.write(`guidance ${guidance}: ${(100 * hits / images.length).toFixed(1)}% in the prompted category\n`);
}
pipe.dispose();
process.stdout.write(JSON.stringify({ backend, bundle: args.bundle, prompts: prompts.length, categories, chance, guidance: results }) + '\n');
