/**
 * Does mask-free editing move a Fashion-MNIST image to another class while keeping part of it?
 * For each class A (0–9) a target class B ≠ A is drawn by seed; the first `--per-pair` held-out
 * test images of class A that the independent classifier (runs/fmnist-classifier, see
 * scripts/eval-fmnist.ts) labels A are edited mask-free toward "a photo of a <B>" with
 * `MaskgenPipeline.edit`, one edit per image (seed = --seed + the image's index in the folder).
 * Reports, per setting: the share of edits the classifier labels B, the share it still labels A,
 * the mean share of tokens kept unchanged, per pair, and the time taken. As a control, the same
 * classifier on the unedited reconstructions (tokenize → decode) says how often B appears without
 * the edit.
 *
 *   npx tsx scripts/eval-edit-fmnist.ts --bundle runs/fmnist --backend onnx --threads 1
 *   npx tsx scripts/eval-edit-fmnist.ts --sweep 0.1x20@3,0.2x5@3 --per-pair 10   # strength x iterations @ guidance
 *
 * Prints one JSON object on stdout and writes it to --out.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { imagesToFloat32 } from '../src/data/batches.js';
import { FASHION_MNIST_CAPTIONS, FASHION_MNIST_CLASSES } from '../src/data/fashion-mnist.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { DEFAULT_EDIT_ITERATIONS, DEFAULT_EDIT_STRENGTH } from '../src/decoding/index.js';
import { classify, loadClassifier } from '../src/eval/classifier.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { Rng } from '../src/random.js';

const args = await yargs(hideBin(process.argv))
  .option('bundle', { type: 'string', default: 'runs/fmnist' })
  .option('test', { type: 'string', default: 'data/fmnist-test' })
  .option('classifier', { type: 'string', default: 'runs/fmnist-classifier' })
  .option('per-pair', { type: 'number', default: 30, describe: 'edits per A → B pair (10 pairs)' })
  .option('strength', { type: 'number', default: DEFAULT_EDIT_STRENGTH })
  .option('iterations', { type: 'number', default: DEFAULT_EDIT_ITERATIONS })
  .option('guidance', { type: 'number', default: 3 })
  .option('temperature', { type: 'number', default: 1 })
  .option('steps-per-iteration', { type: 'number', default: 1 })
  .option('sweep', {
    type: 'string',
    describe: 'several settings, comma-separated "strength x iterations @ guidance", optionally followed by t<temperature> and s<steps per iteration>, e.g. 0.1x20@3,0.2x5@3t0.5s2 (replaces the single-setting flags)',
  })
  .option('selection', { choices: ['random', 'least-likely'] as const, default: 'random' as const, describe: 'which tokens each iteration resamples (every setting of a sweep)' })
  .option('revert', { type: 'number', default: 0, describe: 'give back changed tokens whose original is at least this times as probable (0 = off; r in a sweep setting)' })
  .option('seed', { type: 'number', default: 1 })
  .option('backend', { type: 'string', default: 'onnx' })
  .option('threads', { type: 'number', default: 1 })
  .option('out', { type: 'string', default: 'runs/eval-edit-fmnist.json' })
  .strict()
  .parse();

interface Setting {
  strength: number;
  iterations: number;
  guidance: number;
  temperature: number;
  stepsPerIteration: number;
  selection: 'random' | 'least-likely';
  revert: number;
}
const settings: Setting[] = args.sweep
  ? args.sweep.split(',').map((s) => {
      const m = /^\s*([\d.]+)x(\d+)@([\d.]+)(?:t([\d.]+))?(?:s(\d+))?(?:r([\d.]+))?\s*$/.exec(s);
      if (!m) throw new Error(`--sweep: '${s}' is not strength x iterations @ guidance [t temperature] [s steps], e.g. 0.2x5@3 or 0.2x5@3t0.5s2`);
      return { strength: Number(m[1]), iterations: Number(m[2]), guidance: Number(m[3]), temperature: m[4] === undefined ? args.temperature : Number(m[4]), stepsPerIteration: m[5] === undefined ? args.stepsPerIteration : Number(m[5]), selection: args.selection, revert: m[6] === undefined ? args.revert : Number(m[6]) };
    })
  : [{ strength: args.strength, iterations: args.iterations, guidance: args.guidance, temperature: args.temperature, stepsPerIteration: args.stepsPerIteration, selection: args.selection, revert: args.revert }];

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const judge = await loadClassifier(args.classifier);
const size = judge.config.size;
const pipe = await MaskgenPipeline.load(args.bundle);
const { imageSize, channels } = pipe.tokenizer.config;
if (imageSize !== size || channels !== judge.config.channels) throw new Error(`the bundle makes ${imageSize}²×${channels} images, the classifier takes ${size}²×${judge.config.channels}`);
const test = await loadImageFolder(args.test, { size, channels: channels as 1 | 3 });
const per = size * size * channels;
const classes = FASHION_MNIST_CLASSES.length;

// The pairs: every class A → a B ≠ A drawn by seed.
const rng = new Rng(args.seed);
const pairs = Array.from({ length: classes }, (_, a) => ({ a, b: (a + 1 + rng.int(classes - 1)) % classes }));

// The sources: the first --per-pair test images of class A that the classifier labels A.
const all = Array.from({ length: test.count }, (_, i) => i);
const verdicts = classify(judge.model, imagesToFloat32(test, all), judge.config);
const sources = pairs.flatMap(({ a, b }) => {
  const picked = all.filter((i) => test.labels?.[i] === a && verdicts[i] === a).slice(0, args.perPair);
  if (picked.length < args.perPair) throw new Error(`only ${picked.length} test images of class ${a} are classified right, asked for ${args.perPair}`);
  return picked.map((index) => ({ index, a, b }));
});

// Control: the unedited reconstructions.
const recon = new Float32Array(sources.length * per);
sources.forEach((s, j) => {
  const image = { data: imagesToFloat32(test, [s.index]), width: size, height: size, channels };
  recon.set(pipe.decodeTokens(pipe.encodeImage(image), 1)[0]!.data, j * per);
});
const reconVerdicts = classify(judge.model, recon, judge.config);
const control = {
  reconstructionsLabelledA: reconVerdicts.filter((v, j) => v === sources[j]!.a).length / sources.length,
  reconstructionsLabelledB: reconVerdicts.filter((v, j) => v === sources[j]!.b).length / sources.length,
};
process.stderr.write(`${sources.length} edits over ${pairs.length} pairs; unedited reconstructions: ${(100 * control.reconstructionsLabelledA).toFixed(1)}% A, ${(100 * control.reconstructionsLabelledB).toFixed(1)}% B\n`);

const results = [];
for (const setting of settings) {
  const t0 = Date.now();
  const edited = new Float32Array(sources.length * per);
  const kept: number[] = [];
  for (const [j, s] of sources.entries()) {
    const image = { data: imagesToFloat32(test, [s.index]), width: size, height: size, channels };
    const res = await pipe.edit({ mode: 'mask-free', image, prompt: FASHION_MNIST_CAPTIONS[s.b]!, ...setting, seed: args.seed + s.index });
    edited.set(res.images[0]!.image.data, j * per);
    kept.push(res.images[0]!.kept);
  }
  const seconds = (Date.now() - t0) / 1000;
  const pred = classify(judge.model, edited, judge.config);
  const share = (f: (j: number) => boolean, among = sources.map((_, j) => j)) => among.filter(f).length / among.length;
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const perPair = pairs.map(({ a, b }) => {
    const among = sources.flatMap((s, j) => (s.a === a ? [j] : []));
    return { from: FASHION_MNIST_CLASSES[a], to: FASHION_MNIST_CLASSES[b], turnedToB: share((j) => pred[j] === b, among), keptTokens: mean(among.map((j) => kept[j]!)) };
  });
  const r = {
    ...setting,
    edits: sources.length,
    turnedToB: share((j) => pred[j] === sources[j]!.b),
    stillA: share((j) => pred[j] === sources[j]!.a),
    keptTokens: mean(kept),
    keptTokensMin: Math.min(...kept),
    keptTokensMax: Math.max(...kept),
    seconds,
    secondsPerEdit: seconds / sources.length,
    perPair,
  };
  results.push(r);
  process.stderr.write(
    `strength ${setting.strength} × ${setting.iterations} iterations, guidance ${setting.guidance}, temperature ${setting.temperature}, ${setting.stepsPerIteration} step(s)/iteration${setting.revert ? `, revert ${setting.revert}` : ''}: ${(100 * r.turnedToB).toFixed(1)}% labelled B, ${(100 * r.stillA).toFixed(1)}% still A, ` +
      `${(100 * r.keptTokens).toFixed(1)}% of tokens kept (${seconds.toFixed(0)}s)\n`,
  );
}
pipe.dispose();
judge.model.dispose();

const out = {
  backend,
  threads: args.threads,
  bundle: args.bundle,
  classifier: args.classifier,
  test: args.test,
  seed: args.seed,
  perPair: args.perPair,
  pairs: pairs.map(({ a, b }) => `${FASHION_MNIST_CLASSES[a]} → ${FASHION_MNIST_CLASSES[b]}`),
  control,
  results,
};
await mkdir(path.dirname(path.resolve(args.out)), { recursive: true });
await writeFile(args.out, JSON.stringify(out, null, 2) + '\n');
process.stdout.write(JSON.stringify(out) + '\n');
