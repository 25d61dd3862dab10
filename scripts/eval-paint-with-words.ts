/**
 * Does paint-with-words put each object where its region says? On a model trained on composites of
 * two emoji side by side captioned "A and B" (scripts/emoji-pairs.ts; A as often on the right as on
 * the left), for seeded pairs of the composites' objects, generate "A and B" with the regions
 * A → one half, B → the other (both layouts), and without regions; then ask the independent emoji
 * category classifier (that of scripts/eval-emoji.ts) what each half shows: its object square (16 px
 * of the 32 px image) enlarged to the classifier's 64 px. An object is found in its region when the
 * classifier names its category there. The two objects of a pair are of different categories.
 * The same cut-outs of the real composites give the ceiling (what the judge finds where each object
 * truly is), and the images without regions scored against whichever layout suits them best tell how
 * many objects the model draws recognisably at all, wherever it puts them.
 *
 *   npx tsx scripts/eval-paint-with-words.ts --bundle runs/pairs --pairs data/emoji-pairs --classifier runs/emoji64-classifier
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { halfBox, objectSquare, type Side } from '../src/data/composites.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { makeGrid, toUint8, writePng, type RawImage } from '../src/data/images.js';
import { classify, loadClassifier } from '../src/eval/classifier.js';
import { MaskgenPipeline } from '../src/pipeline.js';
import { Rng } from '../src/random.js';
import { samplerFlags, samplerOptions } from './sampler-flags.js';

const args = await samplerFlags(yargs(hideBin(process.argv)))
  .option('bundle', { type: 'string', demandOption: true })
  .option('pairs', { type: 'string', default: 'data/emoji-pairs', describe: 'the composites folder (its objects.json names the objects)' })
  .option('classifier', { type: 'string', default: 'runs/emoji64-classifier' })
  .option('prompts', { type: 'number', default: 50, describe: 'pairs "A and B" drawn by seed' })
  .option('n', { type: 'number', default: 4, describe: 'images per prompt and layout' })
  .option('guidance', { type: 'number', default: 3 })
  .option('strength', { type: 'string', default: '4', describe: 'region strengths to try, comma-separated' })
  .option('seed', { type: 'number', default: 1 })
  .option('grid', { type: 'string', describe: 'write a PNG: a column for each of the first 8 prompts, rows without regions, A left | B right, A right | B left (first strength, first image)' })
  .option('backend', { type: 'string', default: 'auto' })
  .option('threads', { type: 'number' })
  .strict()
  .parse();

const backend = await initBackend(args.backend as BackendChoice, { threads: args.threads });
const { categories, objects } = JSON.parse(await readFile(path.join(args.pairs, 'objects.json'), 'utf8')) as {
  categories: string[];
  objects: { name: string; category: string }[];
};
const judge = await loadClassifier(args.classifier);
const catOf = new Map(objects.map((o) => [o.name, categories.indexOf(o.category)]));
const S = 32; // the base image size the composites train at
const J = judge.config.size;

/** The classifier's category for the object square of `side` in each S × S image (floats in [0, 1]). */
function judgeHalves(images: Float32Array[], side: Side): Int32Array {
  const per = J * J * 3;
  const flat = new Float32Array(images.length * per);
  images.forEach((im, k) => flat.set(objectSquare(toUint8(im), S, 3, side, J), k * per));
  return classify(judge.model, flat, judge.config);
}

/** The classifier's category for the object square of each half of each image. */
const judgeBoth = (images: Float32Array[]) => ({ left: judgeHalves(images, 'left'), right: judgeHalves(images, 'right') });
type Judged = ReturnType<typeof judgeBoth>;

// Ceiling: the real composites, read at the size the model makes.
const real = await loadImageFolder(args.pairs, { size: S, channels: 3, limit: 1000 });
const realImages = Array.from({ length: real.count }, (_, i) => Float32Array.from(real.pixels.subarray(i * S * S * 3, (i + 1) * S * S * 3), (v) => v / 255));
const realJudged = judgeBoth(realImages);
let realFound = 0;
real.extras!.forEach((e, i) => {
  realFound += Number(realJudged.left[i] === catOf.get(String(e.left))) + Number(realJudged.right[i] === catOf.get(String(e.right)));
});
const ceiling = realFound / (2 * real.count);
process.stderr.write(`real composites: ${(100 * ceiling).toFixed(1)}% of objects found in their half\n`);

const pipe = await MaskgenPipeline.load(args.bundle, { refiner: false });
const rng = new Rng(args.seed);
const prompts: { a: string; b: string }[] = [];
while (prompts.length < args.prompts) {
  const a = objects[rng.int(objects.length)]!;
  const b = objects[rng.int(objects.length)]!;
  if (a.category !== b.category) prompts.push({ a: a.name, b: b.name });
}

interface Tally {
  objects: number;
  found: number;
  both: number;
  images: number;
}
const tally = (): Tally => ({ objects: 0, found: 0, both: 0, images: 0 });
const other = (side: Side): Side => (side === 'left' ? 'right' : 'left');
/** Whether image k shows a at aSide and b at the other side. */
function foundAt(j: Judged, k: number, a: string, b: string, aSide: Side): [boolean, boolean] {
  return [j[aSide][k] === catOf.get(a), j[other(aSide)][k] === catOf.get(b)];
}
/** Scores the judged images of "a and b" against the layout a → aSide. */
function score(t: Tally, j: Judged, a: string, b: string, aSide: Side): void {
  for (let k = 0; k < j.left.length; k++) {
    const [fa, fb] = foundAt(j, k, a, b, aSide);
    t.objects += 2;
    t.found += Number(fa) + Number(fb);
    t.both += Number(fa && fb);
    t.images += 1;
  }
}

const sampler = samplerOptions(args);
const strengths = args.strength.split(',').map(Number);
const without = tally();
/** Images without regions scored against the better of the two layouts: objects drawn recognisably, wherever. */
const drawn = tally();
const withRegions = new Map(strengths.map((s) => [s, tally()]));
const GRID_COLUMNS = 8;
const gridRows: RawImage<Float32Array>[][] = [[], [], []];
const asImage = (data: Float32Array): RawImage<Float32Array> => ({ data, width: S, height: S, channels: 3 });
const t0 = Date.now();
for (const [i, { a, b }] of prompts.entries()) {
  const prompt = `${a} and ${b}`;
  const common = { ...sampler, prompts: [prompt], n: args.n, guidance: args.guidance, seed: args.seed + i };
  const plain = (await pipe.generate(common)).map((g) => g.image.data);
  const judged = judgeBoth(plain);
  for (const side of ['left', 'right'] as const) score(without, judged, a, b, side); // no regions: either layout is as likely
  for (let k = 0; k < plain.length; k++) {
    // how many of the two objects the judge finds in whichever layout the model chose (placement left aside)
    const found = (['left', 'right'] as const).map((side) => foundAt(judged, k, a, b, side).filter(Boolean).length);
    drawn.found += Math.max(...found);
    drawn.objects += 2;
  }
  if (i < GRID_COLUMNS) gridRows[0]!.push(asImage(plain[0]!));
  for (const s of strengths) {
    for (const aSide of ['left', 'right'] as const) {
      const regions = [
        { word: a, box: halfBox(aSide, S) },
        { word: b, box: halfBox(other(aSide), S) },
      ];
      const painted = (await pipe.generate({ ...common, regions, regionStrength: s })).map((g) => g.image.data);
      score(withRegions.get(s)!, judgeBoth(painted), a, b, aSide);
      if (i < GRID_COLUMNS && s === strengths[0]) gridRows[aSide === 'left' ? 1 : 2]!.push(asImage(painted[0]!));
    }
  }
  process.stderr.write(`\r${i + 1}/${prompts.length} prompts (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
}
process.stderr.write('\n');
if (args.grid) await writePng(args.grid, makeGrid(gridRows.flat(), gridRows[0]!.length));
process.stderr.write(`prompts of the grid's columns: ${prompts.slice(0, GRID_COLUMNS).map((p) => `${p.a} and ${p.b}`).join('; ')}\n`);
const share = (t: Tally) => ({ objectsFound: t.found / t.objects, bothFound: t.both / t.images, images: t.images });
process.stdout.write(
  JSON.stringify({
    backend,
    bundle: args.bundle,
    prompts: prompts.length,
    perPromptAndLayout: args.n,
    guidance: args.guidance,
    sampler,
    realCeiling: ceiling,
    withoutRegions: share(without),
    withoutRegionsEitherLayout: drawn.found / drawn.objects,
    withRegions: strengths.map((s) => ({ strength: s, ...share(withRegions.get(s)!) })),
  }) + '\n',
);
