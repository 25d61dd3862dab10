/**
 * Data folders (images + metadata.jsonl) on real emoji PNGs: loading, skipping corrupt and missing
 * images with warnings, limits, and one-line errors for bad folders and metadata.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { loadImageFolder } from '../src/data/imagefolder.js';
import { readImage } from '../src/data/images.js';
import { Rng } from '../src/random.js';

const emojiDir = path.join(
  path.dirname(createRequire(import.meta.url).resolve('emoji-datasource-twitter/package.json')),
  'img/twitter/64',
);
const EMOJI = [
  ['1f600.png', 'grinning face', 0],
  ['1f431.png', 'cat face', 1],
  ['1f34e.png', 'red apple', 2],
  ['2764-fe0f.png', 'red heart', undefined],
  ['1f680.png', 'rocket', 4],
  ['1f333.png', 'deciduous tree', 5],
] as const;

let tmp: string;
let folder: string;

async function makeFolder(name: string, lines: string[]): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'metadata.jsonl'), lines.join('\n') + '\n');
  return dir;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-folder-'));
  folder = path.join(tmp, 'set');
  await mkdir(path.join(folder, 'img'), { recursive: true });
  const lines: string[] = [];
  for (const [i, [file, text, label]] of EMOJI.entries()) {
    await copyFile(path.join(emojiDir, file), path.join(folder, 'img', file));
    lines.push(JSON.stringify({ file_name: `img/${file}`, text, ...(label === undefined ? {} : { label }), vendor: 'twitter' }));
    if (i === 1) {
      // A corrupt PNG (random bytes) and a line naming a file that does not exist, mid-list.
      const rng = new Rng(3);
      await writeFile(path.join(folder, 'corrupt.png'), Uint8Array.from({ length: 500 }, () => rng.int(256)));
      lines.push(JSON.stringify({ file_name: 'corrupt.png', text: 'noise' }));
      lines.push(JSON.stringify({ file_name: 'missing.png', text: 'nothing' }));
    }
  }
  await writeFile(path.join(folder, 'metadata.jsonl'), lines.join('\n') + '\n\n');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('loadImageFolder', () => {
  it('loads real images in metadata order, skipping and counting a corrupt and a missing one', async () => {
    const warnings: string[] = [];
    const progress: number[] = [];
    const set = await loadImageFolder(folder, {
      size: 32,
      channels: 3,
      onWarning: (m) => warnings.push(m),
      onProgress: (done) => progress.push(done),
    });
    expect(set.count).toBe(6);
    expect(set.skipped).toBe(2);
    expect([set.width, set.height, set.channels]).toEqual([32, 32, 3]);
    expect(set.pixels.length).toBe(6 * 32 * 32 * 3);
    expect(set.captions).toEqual(EMOJI.map((e) => e[1]));
    expect(set.files).toEqual(EMOJI.map((e) => `img/${e[0]}`));
    expect(set.labels).toEqual([0, 1, 2, undefined, 4, 5]);
    expect(set.extras![0]).toEqual({ label: 0, vendor: 'twitter' });
    expect(warnings).toHaveLength(2);
    warnings.sort(); // decoded concurrently: any order
    expect(warnings[0]).toMatch(/^skipping corrupt\.png \(.*metadata\.jsonl line 3\): /);
    expect(warnings[1]).toMatch(/^skipping missing\.png \(.*metadata\.jsonl line 4\): no such file$/);
    expect(progress.at(-1)).toBe(8);

    // Each image's pixels are where they belong (the third one is the apple).
    const apple = await readImage(path.join(emojiDir, '1f34e.png'), { size: 32, channels: 3 });
    const per = 32 * 32 * 3;
    expect(Array.from(set.pixels.subarray(2 * per, 3 * per))).toEqual(Array.from(apple.data));
    // White background where the emoji is transparent (the corner), and not all white.
    expect(Array.from(set.pixels.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(set.pixels.some((v) => v < 128)).toBe(true);
  });

  it('loads grayscale, and stops at a limit (the first usable images)', async () => {
    const set = await loadImageFolder(folder, { size: 16, channels: 1, limit: 3, onWarning: () => {} });
    expect(set.count).toBe(3);
    expect(set.pixels.length).toBe(3 * 16 * 16);
    expect(set.captions).toEqual(['grinning face', 'cat face', 'red apple']);
    expect(set.skipped).toBe(2);
    const one = await loadImageFolder(folder, { size: 16, channels: 1, limit: 1, onWarning: () => {} });
    expect(one.captions).toEqual(['grinning face']);
    expect(one.skipped).toBe(0);
  });

  it('has no labels when no line has one', async () => {
    const dir = await makeFolder('nolabels', [JSON.stringify({ file_name: '../set/img/1f600.png', text: 'grinning face' })]);
    const set = await loadImageFolder(dir, { size: 8, channels: 3 });
    expect(set.labels).toBeUndefined();
    expect(set.count).toBe(1);
  });

  it('rejects a folder with no usable image, an empty metadata file, and a missing folder or metadata', async () => {
    const onlyBad = await makeFolder('bad', [JSON.stringify({ file_name: 'gone.png', text: 'x' })]);
    await expect(loadImageFolder(onlyBad, { size: 8, channels: 3, onWarning: () => {} })).rejects.toThrow(/no usable image/);
    const empty = await makeFolder('empty', []);
    await expect(loadImageFolder(empty, { size: 8, channels: 3 })).rejects.toThrow(/lists no images/);
    await expect(loadImageFolder(path.join(tmp, 'absent'), { size: 8, channels: 3 })).rejects.toThrow(/does not exist/);
    const noMeta = path.join(tmp, 'nometa');
    await mkdir(noMeta);
    await expect(loadImageFolder(noMeta, { size: 8, channels: 3 })).rejects.toThrow(UserError);
    await expect(loadImageFolder(noMeta, { size: 8, channels: 3 })).rejects.toThrow(/metadata\.jsonl is missing/);
  });

  it('names the line of bad metadata', async () => {
    const ok = JSON.stringify({ file_name: 'a.png', text: 'a' });
    const badJson = await makeFolder('badjson', [ok, '{"file_name": "b.png", "text": ']);
    await expect(loadImageFolder(badJson, { size: 8, channels: 3 })).rejects.toThrow(/metadata\.jsonl line 2: invalid JSON/);
    const noText = await makeFolder('notext', [ok, '', JSON.stringify({ file_name: 'c.png' })]);
    await expect(loadImageFolder(noText, { size: 8, channels: 3 })).rejects.toThrow(/line 3: "text" must be a string/);
    const notObject = await makeFolder('array', ['["a.png", "a"]']);
    await expect(loadImageFolder(notObject, { size: 8, channels: 3 })).rejects.toThrow(/line 1: expected a JSON object/);
  });
});
