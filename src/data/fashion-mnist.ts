/**
 * Fashion-MNIST from Debian's `dataset-fashion-mnist` package (idx files, gzipped, under
 * /usr/share/datasets/fashion-mnist): parsing idx, class names and captions, and an importer that
 * writes a data folder of 28×28 grayscale PNGs with metadata.jsonl.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.js';
import { fsError, writeFileAtomic } from '../io/atomic.js';
import { encodePng } from './images.js';
import { METADATA_FILE } from './imagefolder.js';
import { pool } from './pool.js';

/** Where Debian's dataset-fashion-mnist installs the idx files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The ten class names, by label 0–9, as the data set spells them. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** The noun used in captions for each label. */
export const FASHION_MNIST_NOUNS = [
  't-shirt',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle boot',
] as const;

/** "a" or "an" before a noun phrase, by its first letter (enough for our class names). */
export function withArticle(noun: string): string {
  return `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;
}

/** The caption of a label: "a photo of a t-shirt", …, "a photo of an ankle boot". */
export function fashionMnistCaption(label: number): string {
  const noun = FASHION_MNIST_NOUNS[label];
  if (noun === undefined) throw new Error(`Fashion-MNIST label must be 0–9, got ${label}`);
  return `a photo of ${withArticle(noun)}`;
}

/** All ten captions, by label. */
export const FASHION_MNIST_CAPTIONS: readonly string[] = FASHION_MNIST_NOUNS.map((_, i) => fashionMnistCaption(i));

/** A parsed idx array of unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parses idx bytes (big-endian: two zero bytes, a type byte, the number of dimensions, then one
 * uint32 per dimension and the data). Only unsigned-byte data (type 0x08) is supported. `name`
 * names the file in errors; `expectDims` checks the number of dimensions.
 */
export function parseIdx(bytes: Uint8Array, name: string, expectDims?: number): IdxArray {
  const bad = (why: string) => new UserError(`${name} is not a valid idx file: ${why}`);
  if (bytes.length < 4) throw bad(`only ${bytes.length} bytes`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw bad(`bad magic number 0x${Buffer.from(bytes.subarray(0, 4)).toString('hex')}`);
  }
  if (bytes[2] !== 0x08) throw bad(`data type 0x${bytes[2]!.toString(16).padStart(2, '0')} is not unsigned byte (0x08)`);
  const ndims = bytes[3]!;
  if (expectDims !== undefined && ndims !== expectDims) throw bad(`has ${ndims} dimensions, expected ${expectDims}`);
  const header = 4 + 4 * ndims;
  if (bytes.length < header) throw bad('truncated header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + size) {
    throw bad(`dimensions ${dims.join('×')} need ${header + size} bytes, the file has ${bytes.length}`);
  }
  return { dims, data: bytes.subarray(header) };
}

/** Reads an idx file, gunzipping it when it is gzipped (by its magic bytes, not its name). */
export async function readIdx(file: string, expectDims?: number): Promise<IdxArray> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let bytes: Uint8Array = raw;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw);
    } catch (err) {
      throw new UserError(`${file} is a corrupt gzip file: ${(err as Error).message}`);
    }
  }
  return parseIdx(bytes, file, expectDims);
}

export type FashionMnistSplit = 'train' | 'test';

async function findIdx(dir: string, base: string): Promise<string> {
  for (const name of [`${base}.gz`, base]) {
    const path = join(dir, name);
    try {
      await access(path);
      return path;
    } catch {
      // try the next name
    }
  }
  throw new UserError(
    `Fashion-MNIST file ${base}[.gz] not found in ${dir}: install Debian's package (apt-get install dataset-fashion-mnist) or point --source at the idx files`,
  );
}

export interface FashionMnist {
  count: number;
  height: number;
  width: number;
  /** count*height*width bytes, image after image. */
  images: Uint8Array;
  labels: Uint8Array;
  imagesFile: string;
  labelsFile: string;
}

/** Reads and cross-checks the images and labels of one split. */
export async function readFashionMnist(split: FashionMnistSplit, sourceDir = FASHION_MNIST_DIR): Promise<FashionMnist> {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = await findIdx(sourceDir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = await findIdx(sourceDir, `${prefix}-labels-idx1-ubyte`);
  const images = await readIdx(imagesFile, 3);
  const labels = await readIdx(labelsFile, 1);
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new UserError(`${labelsFile} has ${labels.dims[0]} labels but ${imagesFile} has ${count} images`);
  }
  const badLabel = labels.data.findIndex((l) => l > 9);
  if (badLabel >= 0) throw new UserError(`${labelsFile}: label ${labels.data[badLabel]} at index ${badLabel} is not 0–9`);
  return { count, height, width, images: images.data, labels: labels.data, imagesFile, labelsFile };
}

export interface ImportFashionMnistOptions {
  out: string;
  split?: FashionMnistSplit;
  /** Import only the first N images. */
  limit?: number;
  /** Folder with the idx files. Default: Debian's /usr/share/datasets/fashion-mnist. */
  sourceDir?: string;
  /** How many PNGs to encode at once. Default 16. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ImportFashionMnistResult {
  out: string;
  split: FashionMnistSplit;
  count: number;
  /** Images per class, by label. */
  perClass: number[];
  source: string;
}

/**
 * Writes `out/<index>.png` (28×28 grayscale; the index zero-padded to the width of the count) and
 * `out/metadata.jsonl` with `file_name`, `text` ("a photo of a …"), `label` (0–9) and `class`.
 * metadata.jsonl is written last, atomically, so a partial import is never mistaken for a data set.
 */
export async function importFashionMnist(opts: ImportFashionMnistOptions): Promise<ImportFashionMnistResult> {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new UserError(`split must be train or test, got ${split}`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) {
    throw new UserError(`limit must be a positive integer, got ${opts.limit}`);
  }
  const sourceDir = opts.sourceDir ?? FASHION_MNIST_DIR;
  const data = await readFashionMnist(split, sourceDir);
  const count = Math.min(data.count, opts.limit ?? Infinity);
  try {
    await mkdir(opts.out, { recursive: true });
  } catch (err) {
    throw fsError(err, 'create', opts.out);
  }
  const digits = String(Math.max(0, count - 1)).length;
  const names = Array.from({ length: count }, (_, i) => `${String(i).padStart(digits, '0')}.png`);
  const pixels = data.height * data.width;
  let done = 0;
  await pool(count, opts.concurrency ?? 16, async (i) => {
    const image = data.images.subarray(i * pixels, (i + 1) * pixels);
    const png = await encodePng({ data: image, width: data.width, height: data.height, channels: 1 });
    const file = join(opts.out, names[i]!);
    await writeFile(file, png).catch((err) => {
      throw fsError(err, 'write', file);
    });
    done++;
    opts.onProgress?.(done, count);
  });
  const perClass = new Array<number>(10).fill(0);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const label = data.labels[i]!;
    perClass[label]!++;
    lines.push(
      JSON.stringify({ file_name: names[i], text: fashionMnistCaption(label), label, class: FASHION_MNIST_CLASSES[label] }),
    );
  }
  await writeFileAtomic(join(opts.out, METADATA_FILE), lines.join('\n') + '\n');
  return { out: opts.out, split, count, perClass, source: sourceDir };
}
