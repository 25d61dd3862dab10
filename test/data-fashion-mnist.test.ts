/**
 * The idx parser and the Fashion-MNIST importer: on small idx files written here (gzipped and
 * plain, good and bad), and on Debian's real files when dataset-fashion-mnist is installed.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  FASHION_MNIST_CAPTIONS,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  fashionMnistCaption,
  importFashionMnist,
  parseIdx,
  readIdx,
} from '../src/data/fashion-mnist.js';
import { loadImageFolder } from '../src/data/imagefolder.js';

let tmp: string;

/** idx bytes of unsigned-byte data with the given dimensions. */
function idx(dims: number[], data: Uint8Array, magic = [0, 0, 8, dims.length]): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header.set(magic);
  const view = new DataView(header.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** A fake split of n 28×28 images: image i is filled with 10*i, labels cycle 9, 0, 1, …. */
async function writeSplit(dir: string, prefix: string, n: number, gzip: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  const images = new Uint8Array(n * 28 * 28);
  for (let i = 0; i < n; i++) images.fill(10 * i, i * 784, (i + 1) * 784);
  const labels = Uint8Array.from({ length: n }, (_, i) => (i + 9) % 10);
  const write = (name: string, bytes: Uint8Array) =>
    writeFile(path.join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  await write(`${prefix}-images-idx3-ubyte`, idx([n, 28, 28], images));
  await write(`${prefix}-labels-idx1-ubyte`, idx([n], labels));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-fmnist-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('captions', () => {
  it('uses the class nouns with the right article', () => {
    expect(FASHION_MNIST_CLASSES).toHaveLength(10);
    expect(FASHION_MNIST_CAPTIONS).toEqual([
      'a photo of a t-shirt',
      'a photo of a trouser',
      'a photo of a pullover',
      'a photo of a dress',
      'a photo of a coat',
      'a photo of a sandal',
      'a photo of a shirt',
      'a photo of a sneaker',
      'a photo of a bag',
      'a photo of an ankle boot',
    ]);
    expect(() => fashionMnistCaption(10)).toThrow();
  });
});

describe('parseIdx', () => {
  it('reads dimensions and data', () => {
    const a = parseIdx(idx([2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)), 'x');
    expect(a.dims).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects a bad magic number, a wrong type or rank, and a wrong size, naming the file', () => {
    const data = Uint8Array.of(1, 2, 3, 4, 5, 6);
    expect(() => parseIdx(idx([2, 3], data, [0x1f, 0x8b, 8, 2]), 'f.idx')).toThrow(/f\.idx is not a valid idx file: bad magic number 0x1f8b0802/);
    expect(() => parseIdx(idx([2, 3], data, [0, 0, 0x0d, 2]), 'f.idx')).toThrow(/data type 0x0d/);
    expect(() => parseIdx(idx([2, 3], data), 'f.idx', 3)).toThrow(/2 dimensions, expected 3/);
    expect(() => parseIdx(idx([2, 4], data), 'f.idx')).toThrow(/dimensions 2×4 need 20 bytes, the file has 18/);
    expect(() => parseIdx(Uint8Array.of(0, 0), 'f.idx')).toThrow(UserError);
  });

  it('reads gzipped and plain files alike', async () => {
    const bytes = idx([3], Uint8Array.of(7, 8, 9));
    await writeFile(path.join(tmp, 'plain.idx'), bytes);
    await writeFile(path.join(tmp, 'packed.idx.gz'), gzipSync(bytes));
    expect(await readIdx(path.join(tmp, 'plain.idx'))).toEqual(await readIdx(path.join(tmp, 'packed.idx.gz')));
    await writeFile(path.join(tmp, 'broken.gz'), gzipSync(bytes).subarray(0, 12));
    await expect(readIdx(path.join(tmp, 'broken.gz'))).rejects.toThrow(/broken\.gz is a corrupt gzip file/);
  });
});

describe('importFashionMnist on small files', () => {
  for (const gzip of [true, false]) {
    it(`writes PNGs and metadata.jsonl (${gzip ? 'gzipped' : 'plain'} idx)`, async () => {
      const src = path.join(tmp, gzip ? 'src-gz' : 'src-plain');
      await writeSplit(src, 'train', 12, gzip);
      const out = path.join(tmp, gzip ? 'out-gz' : 'out-plain');
      const seen: number[] = [];
      const r = await importFashionMnist({ out, split: 'train', sourceDir: src, limit: 11, onProgress: (d) => seen.push(d) });
      expect(r.count).toBe(11);
      expect(r.perClass.reduce((a, b) => a + b, 0)).toBe(11);
      expect(seen.at(-1)).toBe(11);
      const files = (await readdir(out)).sort();
      expect(files).toHaveLength(12);
      expect(files[0]).toBe('00.png');
      const lines = (await readFile(path.join(out, 'metadata.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      expect(lines[0]).toEqual({ file_name: '00.png', text: 'a photo of an ankle boot', label: 9, class: 'Ankle boot' });
      expect(lines[1]).toEqual({ file_name: '01.png', text: 'a photo of a t-shirt', label: 0, class: 'T-shirt/top' });
      const set = await loadImageFolder(out, { size: 28, channels: 1 });
      expect(set.count).toBe(11);
      expect(set.labels).toEqual(lines.map((l) => l.label));
      for (const i of [0, 5, 10]) expect(set.pixels[i * 784 + 400]).toBe(10 * i);
    });
  }

  it('reads the test split from t10k files', async () => {
    const src = path.join(tmp, 'src-test');
    await writeSplit(src, 't10k', 3, true);
    const r = await importFashionMnist({ out: path.join(tmp, 'out-test'), split: 'test', sourceDir: src });
    expect(r.count).toBe(3);
  });

  it('names the file that is wrong, missing or inconsistent', async () => {
    const src = path.join(tmp, 'src-bad');
    await writeSplit(src, 'train', 4, false);
    const imagesFile = path.join(src, 'train-images-idx3-ubyte');
    const good = await readFile(imagesFile);
    const bad = Buffer.from(good);
    bad[2] = 9; // not unsigned byte
    await writeFile(imagesFile, bad);
    await expect(importFashionMnist({ out: path.join(tmp, 'o1'), sourceDir: src })).rejects.toThrow(imagesFile);
    // Three images but four labels.
    await writeFile(imagesFile, idx([3, 28, 28], new Uint8Array(3 * 784)));
    await expect(importFashionMnist({ out: path.join(tmp, 'o2'), sourceDir: src })).rejects.toThrow(/has 4 labels but .* has 3 images/);
    await expect(importFashionMnist({ out: path.join(tmp, 'o3'), sourceDir: path.join(tmp, 'nowhere') })).rejects.toThrow(
      /not found in .*nowhere: install Debian's package \(apt-get install dataset-fashion-mnist\)/,
    );
  });
});

const real = existsSync(path.join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));

describe.skipIf(!real)("importFashionMnist on Debian's real files", () => {
  it('imports the first training images with their real labels and captions', async () => {
    const out = path.join(tmp, 'real');
    const r = await importFashionMnist({ out, split: 'train', limit: 20 });
    expect(r.count).toBe(20);
    const set = await loadImageFolder(out, { size: 28, channels: 1 });
    // The first ten training labels of Fashion-MNIST.
    expect(set.labels!.slice(0, 10)).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(set.captions[0]).toBe('a photo of an ankle boot');
    expect(set.captions[3]).toBe('a photo of a dress');
    expect(set.extras![0]!.class).toBe('Ankle boot');
    // Dark backgrounds, bright garments: the mean is about 0.28 and every image uses the full range.
    let sum = 0;
    for (const v of set.pixels) sum += v;
    const mean = sum / set.pixels.length / 255;
    expect(mean).toBeGreaterThan(0.2);
    expect(mean).toBeLessThan(0.4);
    for (let i = 0; i < set.count; i++) {
      const img = set.pixels.subarray(i * 784, (i + 1) * 784);
      expect(img[0]).toBe(0); // corner is background
      expect(Math.max(...img)).toBeGreaterThan(200);
    }
  });

  it('imports the test split too', async () => {
    const r = await importFashionMnist({ out: path.join(tmp, 'real-test'), split: 'test', limit: 5 });
    const lines = (await readFile(path.join(r.out, 'metadata.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.label)).toEqual([9, 2, 1, 1, 6]);
    expect(lines[1].text).toBe('a photo of a pullover');
  });
});
