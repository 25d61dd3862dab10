/**
 * Do variations of a Fashion-MNIST image stay the same kind of garment? For `--per-class` real test
 * images of each class, `--n` variations each (with the image's caption) at several strengths; the
 * independent classifier trained by scripts/eval-fmnist.ts judges them. Prints JSON: per strength,
 * the share of variations the classifier puts in the source's class (of sources it classifies
 * correctly), the share of tokens changed, the decoding steps taken, and the time.
 *
 *   npx tsx scripts/eval-variations-fmnist.ts --bundle runs/fmnist --test data/fmnist-test --classifier runs/fmnist-classifier
 */
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { loadImageFolder, selectImages } from '../src/data/imagefolder.js';
import { makeGrid, writePng, type RawImage } from '../src/data/images.js';
import { FASHION_MNIST_CAPTIONS } from '../src/data/fashion-mnist.js';
import { classify, loadClassifier } from '../src/eval/classifier.js';
import { hasCheckpoint } from '../src/io/checkpoint.js';
import { MaskgenPipeline } from '../src/pipeline.js';

const args = await yargs(hideBin(process.argv))
  .option('bundle', { type: 'string', demandOption: true })
  .option('test', { type: 'string', default: 'data/fmnist-test' })
  .option('classifier', { type: 'string', default: 'runs/fmnist-classifier', describe: 'made by scripts/eval-fmnist.ts' })
  .option('per-class', { type: 'number', default: 10, describe: 'source images per class' })
  .option('n', { type: 'number', default: 4, describe: 'variations per source' })
  .option('strength', { type: 'string', default: '0.25,0.5,0.75,1' })
  .option('guidance', { type: 'number', default: 3 })
  .option('seed', { type: 'number', default: 1 })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .option('grid', { type: 'string', describe: 'write a PNG: one row per strength for a few sources (source, then variations)' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
if (!(await hasCheckpoint(args.classifier))) throw new Error(`no classifier at ${args.classifier}: train it with scripts/eval-fmnist.ts first`);
const judge = await loadClassifier(args.classifier);
const size = judge.config.size;
const pipe = await MaskgenPipeline.load(args.bundle);
if (pipe.tokenizer.config.imageSize !== size) throw new Error(`the bundle makes ${pipe.tokenizer.config.imageSize} px images, the classifier takes ${size}`);
const test = await loadImageFolder(args.test, { size, channels: 1 });
const per = size * size;
const labels = test.labels!;
const picks = FASHION_MNIST_CAPTIONS.flatMap((_, c) => labels.flatMap((l, i) => (l === c ? [i] : [])).slice(0, args.perClass));
const sources = selectImages(test, picks);
const sourceImage = (j: number): RawImage => ({ data: sources.pixels.slice(j * per, (j + 1) * per), width: size, height: size, channels: 1 });
const sourcePred = classify(judge.model, Float32Array.from(sources.pixels, (v) => v / 255), judge.config);
const sourceLabels = picks.map((i) => labels[i]!);
const correct = sourceLabels.map((l, j) => sourcePred[j] === l);
process.stderr.write(`${picks.length} sources, the classifier names ${correct.filter(Boolean).length} of them right\n`);

const results: Record<string, unknown>[] = [];
const gridRows: RawImage<Float32Array | Uint8Array>[] = [];
for (const strength of args.strength.split(',').map(Number)) {
  const t0 = Date.now();
  let kept = 0;
  let judged = 0;
  let keptAll = 0;
  let changed = 0;
  let total = 0;
  let steps = 0;
  for (let j = 0; j < picks.length; j++) {
    const label = sourceLabels[j]!;
    const res = await pipe.variations({ image: sourceImage(j), prompt: FASHION_MNIST_CAPTIONS[label]!, n: args.n, strength, guidance: args.guidance, seed: args.seed + j });
    steps = res.steps;
    const pixels = new Float32Array(res.images.length * per);
    res.images.forEach((v, i) => pixels.set(v.image.data, i * per));
    const pred = classify(judge.model, pixels, judge.config);
    for (const [i, v] of res.images.entries()) {
      changed += v.changed.length / res.sourceTokens.length;
      total++;
      if (pred[i] === label) keptAll++;
      if (correct[j]) {
        judged++;
        if (pred[i] === label) kept++;
      }
    }
    if (args.grid && j % args.perClass === 0 && j / args.perClass < 5) gridRows.push(sourceImage(j), ...res.images.map((v) => v.image));
  }
  const row = { strength, steps, keptClass: kept / judged, keptClassAllSources: keptAll / total, tokensChanged: changed / total, variations: total, seconds: (Date.now() - t0) / 1000 };
  results.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}
if (args.grid) await writePng(path.resolve(args.grid), makeGrid(gridRows, (1 + args.n) * 5, 1, 128));
pipe.dispose();
judge.model.dispose();
process.stdout.write(
  JSON.stringify({ backend, bundle: args.bundle, sources: picks.length, sourcesClassifiedRight: correct.filter(Boolean).length, perSource: args.n, guidance: args.guidance, strengths: results }) + '\n',
);
