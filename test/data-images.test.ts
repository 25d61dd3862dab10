/**
 * Reading and writing images: PNG round trips, the built-in PNG codec against sharp on every kind
 * of PNG, resizing against sharp on real emoji, 'contain' padding, grids, and errors naming the file.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { ImageReadError, encodePng, makeGrid, readImage, writePng, type RawImage } from '../src/data/images.js';
import { crc32, decodePng, encodePngBytes } from '../src/data/png.js';
import { Rng } from '../src/random.js';

let tmp: string;
const emojiDir = path.join(
  path.dirname(createRequire(import.meta.url).resolve('emoji-datasource-twitter/package.json')),
  'img/twitter/64',
);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-images-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function randomImage(width: number, height: number, channels: 1 | 3, seed: number): RawImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * channels).map(() => rng.int(256));
  return { data, width, height, channels };
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

describe('PNG round trip', () => {
  it('gives back the same pixels, grayscale and RGB, through both decoders', async () => {
    for (const [channels, seed] of [
      [1, 1],
      [3, 2],
    ] as const) {
      const img = randomImage(7, 5, channels, seed);
      const file = path.join(tmp, `rt-${channels}.png`);
      await writePng(file, img);
      for (const decoder of ['auto', 'sharp'] as const) {
        const back = await readImage(file, { size: { width: 7, height: 5 }, channels, decoder });
        expect(back.width).toBe(7);
        expect(back.height).toBe(5);
        expect(Array.from(back.data)).toEqual(Array.from(img.data));
      }
    }
  });

  it('writes float images in [0,1] rounded to 0–255, clamping outside values', async () => {
    const data = new Float32Array([0, 1, 0.5, -0.2, 1.7, 0.25]);
    const file = path.join(tmp, 'float.png');
    await writePng(file, { data, width: 3, height: 2, channels: 1 });
    const back = await readImage(file, { size: { width: 3, height: 2 }, channels: 1 });
    expect(Array.from(back.data)).toEqual([0, 255, 128, 0, 255, 64]);
  });

  it('rejects pixel arrays of the wrong length', async () => {
    await expect(encodePng({ data: new Uint8Array(5), width: 2, height: 2, channels: 1 })).rejects.toThrow(/needs 4 values/);
  });
});

describe('built-in PNG decoder', () => {
  const w = 13;
  const h = 9;
  const rgba = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? (i * 37) % 256 : (i * 53 + 11) % 256));
  const gray = new Uint8Array(w * h).map((_, i) => (i * 29) % 256);
  const grayAlpha = new Uint8Array(w * h * 2).map((_, i) => (i % 2 ? (i * 41) % 256 : (i * 29) % 256));
  // A 1-bit grayscale PNG made by hand (sharp does not write them): a checkerboard.
  const stride = Math.ceil(w / 8);
  const rows = new Uint8Array((stride + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x + y) % 2) rows[y * (stride + 1) + 1 + (x >> 3)]! |= 0x80 >> (x & 7);
  const oneBitGray = (() => {
    const png = encodePngBytes(new Uint8Array(w * h), w, h, 1); // borrow its chunk framing, then swap IHDR and IDAT
    const ihdr = Buffer.from(png.subarray(8, 8 + 25));
    ihdr[16] = 1; // bit depth
    ihdr.writeUInt32BE(crc32(ihdr.subarray(4, 21)), 21);
    const data = deflateSync(rows);
    const idat = Buffer.alloc(12 + data.length);
    idat.writeUInt32BE(data.length, 0);
    idat.write('IDAT', 4, 'latin1');
    idat.set(data, 8);
    idat.writeUInt32BE(crc32(idat.subarray(4, 8 + data.length)), 8 + data.length);
    return Buffer.concat([png.subarray(0, 8), ihdr, idat, png.subarray(png.length - 12)]);
  })();

  const variants: [string, () => Promise<Buffer>][] = [
    ['RGBA', () => sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer()],
    ['RGB', () => sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).removeAlpha().png().toBuffer()],
    ['gray', () => sharp(gray, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toBuffer()],
    ['gray + alpha', () => sharp(grayAlpha, { raw: { width: w, height: h, channels: 2 } }).toColourspace('b-w').png().toBuffer()],
    ['gray, 1 bit', async () => oneBitGray],
    ['palette with transparency', () => sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png({ palette: true, colours: 16 }).toBuffer()],
    ['palette, 2 bits', () => sharp(gray, { raw: { width: w, height: h, channels: 1 } }).png({ palette: true, colours: 4 }).toBuffer()],
    ['16-bit RGB', () => sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).removeAlpha().toColourspace('rgb16').png().toBuffer()],
    ['16-bit gray', () => sharp(gray, { raw: { width: w, height: h, channels: 1 } }).toColourspace('grey16').png().toBuffer()],
    ['interlaced (falls back to sharp)', () => sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png({ progressive: true }).toBuffer()],
  ];

  for (const [name, make] of variants) {
    it(`agrees with sharp: ${name}`, async () => {
      const png = await make();
      for (const channels of [1, 3] as const) {
        const ours = await readImage(png, { size: { width: w, height: h }, channels });
        const theirs = await readImage(png, { size: { width: w, height: h }, channels, decoder: 'sharp' });
        // Flattening alpha and sRGB → grey may round differently by one level.
        const maxDiff = ours.data.reduce((m, v, i) => Math.max(m, Math.abs(v - theirs.data[i]!)), 0);
        expect(maxDiff).toBeLessThanOrEqual(2);
      }
    });
  }

  it('unpacks 1-bit grayscale to 0 and 255', () => {
    const img = decodePng(oneBitGray)!;
    expect(img.channels).toBe(1);
    expect(Array.from(img.data.subarray(0, 4))).toEqual([0, 255, 0, 255]);
    expect(img.data[w]).toBe(255);
  });

  it('checks chunk CRCs and truncation', async () => {
    const png = await sharp(gray, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
    const flipped = Buffer.from(png);
    flipped[40] = flipped[40]! ^ 0xff;
    expect(() => decodePng(flipped)).toThrow(/CRC|truncated/);
    expect(() => decodePng(png.subarray(0, png.length - 20))).toThrow();
  });
});

describe('readImage', () => {
  it('shrinks real emoji like sharp does, to a fraction of a grey level', async () => {
    const files = (await readdir(emojiDir)).filter((f) => f.endsWith('.png')).slice(400, 440);
    let total = 0;
    for (const f of files) {
      const file = path.join(emojiDir, f);
      for (const channels of [1, 3] as const) {
        const ours = await readImage(file, { size: 32, channels });
        const theirs = await readImage(file, { size: 32, channels, decoder: 'sharp' });
        total += meanAbsDiff(ours.data, theirs.data);
      }
    }
    expect(total / (files.length * 2)).toBeLessThan(1);
  });

  it('flattens transparency onto the background (white by default, or the one asked for)', async () => {
    const file = path.join(emojiDir, '1f600.png'); // grinning face: transparent corners
    const white = await readImage(file, { size: 64, channels: 3 });
    expect(Array.from(white.data.subarray(0, 3))).toEqual([255, 255, 255]);
    const black = await readImage(file, { size: 64, channels: 3, background: '#000000' });
    expect(Array.from(black.data.subarray(0, 3))).toEqual([0, 0, 0]);
    const centre = (32 * 64 + 32) * 3;
    expect(Array.from(black.data.subarray(centre, centre + 3))).toEqual(Array.from(white.data.subarray(centre, centre + 3)));
    await expect(readImage(file, { size: 8, channels: 3, background: 'chartreuse-ish' })).rejects.toThrow(UserError);
  });

  it("'contain' keeps the aspect ratio and pads with the background", async () => {
    const red = new Uint8Array(20 * 10 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0));
    const file = path.join(tmp, 'wide.png');
    await writePng(file, { data: red, width: 20, height: 10, channels: 3 });
    const img = await readImage(file, { size: 16, channels: 3, fit: 'contain' });
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
    expect(px(8, 0)).toEqual([255, 255, 255]); // padding above
    expect(px(8, 15)).toEqual([255, 255, 255]); // and below
    expect(px(8, 8)).toEqual([255, 0, 0]);
    expect(px(0, 8)).toEqual([255, 0, 0]); // full width
    const filled = await readImage(file, { size: 16, channels: 3, fit: 'fill' });
    expect(Array.from(filled.data.subarray(0, 3))).toEqual([255, 0, 0]);
  });

  it('enlarges with pixel centres aligned (no half-pixel shift)', async () => {
    const dot = new Uint8Array(8 * 8);
    dot[2 * 8 + 2] = 255;
    const img = await readImage(await encodePng({ data: dot, width: 8, height: 8, channels: 1 }), { size: 16, channels: 1 });
    let sx = 0;
    let sy = 0;
    let s = 0;
    img.data.forEach((v, i) => {
      sx += v * (i % 16);
      sy += v * Math.floor(i / 16);
      s += v;
    });
    // Source pixel 2 covers [2, 3) → [4, 6) at twice the size, whose centre is pixel 4.5.
    expect(sx / s).toBeCloseTo(4.5, 1);
    expect(sy / s).toBeCloseTo(4.5, 1);
  });

  it('names the file when it is corrupt or missing', async () => {
    const bad = path.join(tmp, 'corrupt.png');
    const rng = new Rng(5);
    await writeFile(bad, Uint8Array.from({ length: 300 }, () => rng.int(256)));
    await expect(readImage(bad, { size: 8, channels: 3 })).rejects.toThrow(ImageReadError);
    await expect(readImage(bad, { size: 8, channels: 3 })).rejects.toThrow(bad);
    // A real PNG header followed by garbage.
    const png = await encodePng(randomImage(8, 8, 3, 9));
    const half = path.join(tmp, 'half.png');
    await writeFile(half, png.subarray(0, 40));
    await expect(readImage(half, { size: 8, channels: 3 })).rejects.toThrow(/half\.png/);
    const missing = path.join(tmp, 'nope.png');
    await expect(readImage(missing, { size: 8, channels: 1 })).rejects.toThrow(`cannot read image ${missing}: no such file`);
  });
});

describe('makeGrid', () => {
  it('tiles images with padding, filling a partial last row', () => {
    const images = [1, 2, 3, 4, 5].map((v) => ({ data: new Uint8Array(4 * 3 * 3).fill(v * 10), width: 4, height: 3, channels: 3 as const }));
    const grid = makeGrid(images, 3, 2);
    expect(grid.width).toBe(3 * 4 + 4 * 2);
    expect(grid.height).toBe(2 * 3 + 3 * 2);
    expect(grid.channels).toBe(3);
    const px = (x: number, y: number) => grid.data[(y * grid.width + x) * 3]!;
    expect(px(0, 0)).toBe(255); // padding
    expect(px(2, 2)).toBe(10); // first image
    expect(px(2 + 4 + 2, 2)).toBe(20); // second image
    expect(px(2, 2 + 3 + 2)).toBe(40); // fourth, second row
    expect(px(2 + 2 * 6, 2 + 3 + 2)).toBe(255); // empty sixth cell
  });

  it('takes float images and rejects mixed sizes', () => {
    const f: RawImage<Float32Array> = { data: new Float32Array(4).fill(1), width: 2, height: 2, channels: 1 };
    const grid = makeGrid([f, f], 2, 0);
    expect(grid.width).toBe(4);
    expect(Array.from(grid.data)).toEqual(new Array(8).fill(255));
    expect(() => makeGrid([f, { data: new Uint8Array(9), width: 3, height: 3, channels: 1 }], 2)).toThrow(/image 1/);
  });
});
