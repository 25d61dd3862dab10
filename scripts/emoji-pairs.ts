/**
 * Data for paint-with-words: composites of two emoji side by side, captioned "A and B", with A on
 * the left or the right at random, so the caption does not say where each object goes (the regions
 * must). The objects are one-word emoji names from a few categories whose real images the
 * independent category classifier (that of scripts/eval-emoji.ts) recognises at the size a
 * composite draws them: 16 px in a 32 px image, cut out and enlarged to the classifier's 64 px.
 * scripts/eval-paint-with-words.ts then asks that classifier what each half of a generated image shows.
 *
 *   npx tsx scripts/emoji-pairs.ts --data data/emoji64 --classifier runs/emoji64-classifier --out data/emoji-pairs
 *
 * Writes 64 px composites and metadata.jsonl lines {file_name, text, left, right, leftCategory,
 * rightCategory}, and `objects.json` (the chosen names with their categories).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { objectSquare, sideBySide } from '../src/data/composites.js';
import { resize } from '../src/data/resample.js';
import { writePng } from '../src/data/images.js';
import { classify, fieldClasses, loadClassifier } from '../src/eval/classifier.js';
import { Rng } from '../src/random.js';

const args = await yargs(hideBin(process.argv))
  .option('data', { type: 'string', default: 'data/emoji64', describe: 'the imported emoji (64 px, with a category field)' })
  .option('classifier', { type: 'string', default: 'runs/emoji64-classifier' })
  .option('out', { type: 'string', demandOption: true })
  .option('categories', { type: 'string', default: 'Food & Drink,Animals & Nature,Travel & Places,Objects' })
  .option('per-category', { type: 'number', default: 8 })
  .option('count', { type: 'number', default: 8000, describe: 'composites to write' })
  .option('seed', { type: 'number', default: 0 })
  .option('backend', { type: 'string', default: 'auto' })
  .strict()
  .parse();

await initBackend(args.backend as BackendChoice);
const SIZE = 64; // what is written; training and the evaluation read it at 32 px
const set = await loadImageFolder(args.data, { size: SIZE, channels: 3 });
const judge = await loadClassifier(args.classifier);
const categories = fieldClasses(set, 'category'); // the classifier's numbering
const wanted = args.categories.split(',').map((s) => s.trim());
for (const c of wanted) if (!categories.includes(c)) throw new Error(`no category '${c}' in ${args.data}`);

// One-word names with an image of each vendor, in the wanted categories.
const per = SIZE * SIZE * 3;
const byName = new Map<string, number[]>();
set.captions.forEach((name, i) => {
  if (/^[a-z]+$/.test(name) && wanted.includes(String(set.extras![i]!.category))) byName.set(name, [...(byName.get(name) ?? []), i]);
});
const names = [...byName.keys()].filter((n) => byName.get(n)!.length >= 2).sort();

/** What the evaluation sees of an object: its 16 px square of the 32 px composite, enlarged to the classifier's size. */
const asJudged = (composite64: Uint8Array) => objectSquare(resize(composite64, SIZE, SIZE, 3, 32, 32), 32, 3, 'left', judge.config.size);
const blank = new Uint8Array(per).fill(255);
const image = (i: number) => set.pixels.subarray(i * per, (i + 1) * per);
const probes = names.flatMap((n) => byName.get(n)!.map((i) => asJudged(sideBySide(image(i), blank, SIZE, 3, SIZE))));
const judged = judge.config.size * judge.config.size * 3;
const flat = new Float32Array(probes.length * judged);
probes.forEach((p, k) => flat.set(p, k * judged));
const pred = classify(judge.model, flat, judge.config);
let k = 0;
const recognised = names.filter((n) => {
  const hits = byName.get(n)!.map((i) => pred[k++] === categories.indexOf(String(set.extras![i]!.category))); // every image counted, none skipped
  return hits.every(Boolean);
});

const rng = new Rng(args.seed);
const objects: { name: string; category: string; images: number[] }[] = [];
for (const c of wanted) {
  const inCat = recognised.filter((n) => String(set.extras![byName.get(n)![0]!]!.category) === c);
  if (inCat.length < args.perCategory) process.stderr.write(`only ${inCat.length} recognised one-word names in '${c}'\n`);
  for (const name of rng.shuffle([...inCat]).slice(0, args.perCategory)) objects.push({ name, category: c, images: byName.get(name)! });
}
process.stderr.write(`${recognised.length} of ${names.length} one-word names recognised at composite size; using ${objects.length}: ${objects.map((o) => o.name).join(', ')}\n`);

await mkdir(args.out, { recursive: true });
const lines: string[] = [];
for (let n = 0; n < args.count; n++) {
  const a = objects[rng.int(objects.length)]!;
  let b = objects[rng.int(objects.length)]!;
  while (b.category === a.category) b = objects[rng.int(objects.length)]!;
  const aLeft = rng.next() < 0.5;
  const [left, right] = aLeft ? [a, b] : [b, a];
  const pick = (o: typeof a) => image(o.images[rng.int(o.images.length)]!);
  const file = `pair_${String(n).padStart(5, '0')}.png`;
  await writePng(path.join(args.out, file), { data: sideBySide(pick(left), pick(right), SIZE, 3, SIZE), width: SIZE, height: SIZE, channels: 3 });
  lines.push(JSON.stringify({ file_name: file, text: `${a.name} and ${b.name}`, left: left.name, right: right.name, leftCategory: left.category, rightCategory: right.category }));
}
await writeFile(path.join(args.out, 'metadata.jsonl'), lines.join('\n') + '\n');
await writeFile(path.join(args.out, 'objects.json'), JSON.stringify({ categories, objects: objects.map(({ name, category }) => ({ name, category })) }, null, 2) + '\n');
process.stderr.write(`${args.count} composites → ${args.out}\n`);
