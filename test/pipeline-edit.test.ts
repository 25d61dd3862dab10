/**
 * Editing through the pipeline (inpainting, outpainting, mask-free), on a tiny pipeline trained
 * inside the test on coloured squares named by their colour (as in pipeline-generate.test.ts):
 * 16×16 images, patch 4, so a 4×4 token grid.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawImage } from '../src/data/images.js';
import { boxToTokens, featherMask, outpaintLayout, outpaintPositions } from '../src/decoding/index.js';
import { editSettings, MaskgenPipeline, maskFreeSettings, outpaintWindows } from '../src/pipeline.js';
import { COLOURS, dominantColour, makeShapes } from './helpers/shapes.js';
import { trainTinyPipeline } from './helpers/tiny-pipeline.js';

let tmp: string;
let pipe: MaskgenPipeline;
const SIZE = 16;
const names = Object.keys(COLOURS);
const data = makeShapes(512, SIZE, 1);
/** Test images not seen in training: i % 4 = colour index (0 red, 2 blue). */
const fresh = makeShapes(16, SIZE, 99);
const imageAt = (set: typeof data, i: number): RawImage => {
  const per = SIZE * SIZE * 3;
  return { data: set.pixels.slice(i * per, (i + 1) * per), width: SIZE, height: SIZE, channels: 3 };
};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-edit-'));
  pipe = await trainTinyPipeline(tmp, { data });
}, 900_000); // ~25 s of CPU; long only so that a machine busy with training runs does not fail it

afterAll(async () => {
  pipe?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** Positions where two token grids differ. */
const diff = (a: Int32Array, b: Int32Array) => Array.from(a).flatMap((t, i) => (t !== b[i] ? [i] : []));

/** Mean colour (0–255) of the non-white pixels of an HWC [0, 1] image. */
function meanInk(d: Float32Array): number[] {
  const sum = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < d.length; i += 3) {
    if (d[i]! > 0.85 && d[i + 1]! > 0.85 && d[i + 2]! > 0.85) continue;
    for (let c = 0; c < 3; c++) sum[c]! += d[i + c]! * 255;
    count++;
  }
  return count === 0 ? [255, 255, 255] : sum.map((s) => s / count);
}
const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));

describe('inpainting', () => {
  it('a box regenerates exactly the tokens it touches; every other token and far pixel stays', async () => {
    const image = imageAt(fresh, 0);
    for (const box of [
      { x: 5, y: 1, w: 4, h: 6 },
      { x: 0, y: 12, w: 16, h: 4 },
      { x: 7, y: 7, w: 2, h: 2 },
    ]) {
      const res = await pipe.edit({ mode: 'inpaint', image, box, prompt: 'a blue square', n: 2, seed: 3, steps: 4 });
      const expected = boxToTokens(box, { width: SIZE, height: SIZE, patch: 4 });
      expect(res.grid).toEqual({ cols: 4, rows: 4 });
      const alpha = featherMask(res.pixelMask!, SIZE, SIZE, 2); // the default feather: half a 4-pixel patch
      for (const im of res.images) {
        expect(im.regenerated).toEqual(expected);
        // tokens outside the box's tokens are the source's
        for (const i of diff(im.tokens, res.sourceTokens)) expect(expected).toContain(i);
        expect(im.changed.every((i) => expected.includes(i))).toBe(true);
        // pixels with feather weight 0 are the original's exactly; inside the box, the decoder's
        let far = 0;
        for (let q = 0; q < SIZE * SIZE; q++) {
          for (let c = 0; c < 3; c++) {
            if (alpha[q] === 0) expect(im.image.data[q * 3 + c]).toBeCloseTo(image.data[q * 3 + c]! / 255, 6);
            if (alpha[q] === 1) expect(im.image.data[q * 3 + c]).toBe(im.decoded.data[q * 3 + c]);
          }
          if (alpha[q] === 0) far++;
        }
        expect(far).toBeGreaterThan(0);
      }
    }
  });

  it('a pixel mask regenerates the tokens it touches; paste: false leaves the decoder output', async () => {
    const image = imageAt(fresh, 1);
    const mask = new Uint8Array(SIZE * SIZE);
    mask[13 * SIZE + 10] = 255; // one pixel in row 3, column 2 of the token grid
    mask[2 * SIZE + 1] = 1; // and one in row 0, column 0
    const res = await pipe.edit({ mode: 'inpaint', image, mask, prompt: 'a red square', seed: 1, steps: 3, paste: false });
    expect(res.images[0]!.regenerated).toEqual([0, 14]);
    for (const i of diff(res.images[0]!.tokens, res.sourceTokens)) expect([0, 14]).toContain(i);
    expect(Array.from(res.images[0]!.image.data)).toEqual(Array.from(res.images[0]!.decoded.data));
  });

  it('refuses a box outside the image, both or neither of mask and box, a wrong-size image', async () => {
    const image = imageAt(fresh, 0);
    await expect(pipe.edit({ mode: 'inpaint', image, box: { x: 10, y: 0, w: 8, h: 4 }, prompt: 'a red square' })).rejects.toThrow(/not inside the 16×16 image/);
    await expect(pipe.edit({ mode: 'inpaint', image, prompt: 'a red square' })).rejects.toThrow(/exactly one of a mask or a box/);
    const small: RawImage = { data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, channels: 3 };
    await expect(pipe.edit({ mode: 'mask-free', image: small, prompt: 'a red square' })).rejects.toThrow(/takes 16×16×3: resize it first/);
  });
});

describe('outpainting', () => {
  it('grows the grid and the image by whole tokens and keeps the original tokens and pixels', async () => {
    const image = imageAt(fresh, 4);
    const extend = { left: 3, top: 0, right: 8, bottom: 1 }; // → 1, 0, 2, 1 tokens
    const res = await pipe.edit({ mode: 'outpaint', image, extend, prompt: 'a red square', n: 2, seed: 2, steps: 4 });
    expect(res.grid).toEqual({ cols: 4 + 1 + 2, rows: 4 + 0 + 1 });
    expect([res.width, res.height]).toEqual([28, 20]);
    expect(res.layout!.offset).toEqual({ col: 1, row: 0 });
    const K = pipe.transformer.config.codebookSize;
    const newArea = outpaintPositions(res.layout!);
    const alpha = featherMask(res.pixelMask!, 28, 20, 2);
    for (const im of res.images) {
      expect([im.image.width, im.image.height, im.image.channels]).toEqual([28, 20, 3]);
      expect(im.tokens.length).toBe(7 * 5);
      expect(im.tokens.every((t) => t >= 0 && t < K)).toBe(true);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(im.tokens[r * 7 + c + 1]).toBe(res.sourceTokens[r * 4 + c]);
      expect(im.changed).toEqual(newArea);
      expect(im.kept).toBe(1);
      // the original's pixels, away from the feathered edge, are pasted back exactly
      for (let y = 0; y < 20; y++)
        for (let x = 0; x < 28; x++)
          if (alpha[y * 28 + x] === 0) {
            for (let c = 0; c < 3; c++) expect(im.image.data[(y * 28 + x) * 3 + c]).toBeCloseTo(image.data[(y * 16 + x - 4) * 3 + c]! / 255, 6);
          }
    }
    // the blended window decoding agrees with the plain decoding of the original inside the old area
    const plain = pipe.decodeTokens(res.sourceTokens, 1)[0]!.data;
    let err = 0;
    const big = res.images[0]!.decoded.data;
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) err += Math.abs(big[(y * 28 + x + 4) * 3 + c]! - plain[(y * 16 + x) * 3 + c]!);
    const mae = err / (16 * 16 * 3);
    console.log(`outpaint: mean |window-blended − plain decoding| over the original area = ${mae.toFixed(4)}`);
    expect(mae).toBeLessThan(0.15);
  });

  it('visits windows from the original outward and covers the larger grid', () => {
    const layout = outpaintLayout({ width: 16, height: 16, patch: 4 }, { left: 12, top: 0, right: 4, bottom: 8 });
    // grid 8 × 6, original at column 3, row 0; stride 2
    const windows = outpaintWindows(layout, 4);
    expect(windows[0]).toEqual({ col: 3, row: 0 });
    expect(windows).toEqual([
      { col: 3, row: 0 },
      { col: 1, row: 0 },
      { col: 4, row: 0 },
      { col: 3, row: 2 },
      { col: 1, row: 2 },
      { col: 4, row: 2 },
      { col: 0, row: 0 },
      { col: 0, row: 2 },
    ]);
    const covered = new Set<number>();
    for (const w of windows) for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) covered.add((w.row + r) * 8 + w.col + c);
    expect(covered.size).toBe(8 * 6);
  });
});

describe('determinism', () => {
  it('the same seed gives the same edit in every mode; another seed another', async () => {
    const image = imageAt(fresh, 8);
    const opts = [
      { mode: 'inpaint' as const, box: { x: 0, y: 0, w: 16, h: 8 } },
      { mode: 'outpaint' as const, extend: { left: 0, top: 4, right: 4, bottom: 0 } },
      { mode: 'mask-free' as const, strength: 0.3, iterations: 4 },
    ];
    for (const o of opts) {
      const a = await pipe.edit({ ...o, image, prompt: 'a green square', n: 2, seed: 11, steps: 4 });
      const b = await pipe.edit({ ...o, image, prompt: 'a green square', n: 2, seed: 11, steps: 4 });
      const c = await pipe.edit({ ...o, image, prompt: 'a green square', n: 2, seed: 12, steps: 4 });
      for (const i of [0, 1]) {
        expect(Array.from(b.images[i]!.tokens)).toEqual(Array.from(a.images[i]!.tokens));
        expect(Array.from(b.images[i]!.image.data)).toEqual(Array.from(a.images[i]!.image.data));
      }
      const tokensOf = (r: typeof a) => r.images.flatMap((im) => Array.from(im.tokens));
      expect(tokensOf(c)).not.toEqual(tokensOf(a));
    }
  });

  it("a mask-free edit takes the bundle's measured settings where the options give none, and the options over them", async () => {
    const bundle = { strength: 0.3, iterations: 3, steps: 2, revert: 0.5, guidance: 4, temperature: 0.7 };
    expect(maskFreeSettings({ maskFree: bundle }, { iterations: 1 })).toEqual({ ...bundle, iterations: 1, selection: 'least-likely' });
    expect(maskFreeSettings({}, {})).toEqual({ strength: 0.1, iterations: 10, steps: 1, revert: 0, guidance: 6, temperature: 0.5, selection: 'least-likely' });
    const withDefaults = new MaskgenPipeline(pipe.tokenizer, pipe.text, pipe.transformer, undefined, { maskFree: bundle }); // shares the models: not disposed
    const image = imageAt(fresh, 0);
    const tokens = (r: Awaited<ReturnType<MaskgenPipeline['edit']>>) => r.images.flatMap((im) => Array.from(im.tokens));
    const given = { strength: 0.3, iterations: 3, stepsPerIteration: 2, revert: 0.5, guidance: 4, temperature: 0.7 };
    const o = { mode: 'mask-free' as const, image, prompt: 'a blue square', n: 2, seed: 5 };
    expect(tokens(await withDefaults.edit(o))).toEqual(tokens(await pipe.edit({ ...o, ...given })));
    expect(tokens(await withDefaults.edit({ ...o, iterations: 1 }))).toEqual(tokens(await pipe.edit({ ...o, ...given, iterations: 1 })));
    expect(tokens(await withDefaults.edit({ ...o, iterations: 1 }))).not.toEqual(tokens(await withDefaults.edit(o)));
    // and it reports what it ran with
    expect((await withDefaults.edit({ ...o, iterations: 1 })).settings).toMatchObject({ ...bundle, iterations: 1, selection: 'least-likely' });
  });

  it('resolves every edit setting once: as given, else the bundle\'s, else the default; the bundle\'s generation guidance and steps are not an edit\'s', () => {
    const sampling = { guidance: 5, steps: 8, plausibility: 0.1, maskFree: { strength: 0.2, steps: 2, revert: 0.15 } };
    const image = imageAt(fresh, 0);
    const base = { image, prompt: 'a blue square' };
    const shared = { guidanceSchedule: 'constant', choiceTemperature: 4.5, plausibility: 0.1 };
    expect(editSettings(sampling, 4, { ...base, mode: 'mask-free', iterations: 6, choiceTemperature: 9 })).toEqual({
      ...shared,
      choiceTemperature: 9,
      steps: 2,
      guidance: 6,
      temperature: 0.5,
      strength: 0.2,
      iterations: 6,
      selection: 'least-likely',
      revert: 0.15,
    });
    expect(editSettings(sampling, 4, { ...base, mode: 'inpaint', box: { x: 0, y: 0, w: 4, h: 4 }, guidance: 2, negativePrompt: 'red' })).toEqual({
      ...shared,
      steps: 12,
      guidance: 2,
      temperature: 1,
      negativePrompt: 'red',
      paste: true,
      feather: 2,
    });
    expect(editSettings({}, 8, { ...base, mode: 'outpaint', extend: { left: 4, top: 0, right: 0, bottom: 0 }, paste: false, plausibility: 0 })).toMatchObject({ guidance: 3, plausibility: 0, paste: false, feather: 4 });
  });

  it('does not leak tensors across edits', async () => {
    const image = imageAt(fresh, 0);
    await pipe.edit({ mode: 'mask-free', image, prompt: 'a blue square', iterations: 2 });
    const before = tf.memory().numTensors;
    await pipe.edit({ mode: 'inpaint', image, box: { x: 0, y: 0, w: 8, h: 8 }, prompt: 'a blue square', steps: 2 });
    await pipe.edit({ mode: 'outpaint', image, extend: { left: 4, top: 0, right: 0, bottom: 0 }, prompt: 'a blue square', steps: 2 });
    await pipe.edit({ mode: 'mask-free', image, prompt: 'a blue square', iterations: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('mask-free editing', () => {
  /** 1 where a pixel is ink (not white), per pixel. */
  const ink = (d: Float32Array) => Array.from({ length: d.length / 3 }, (_, q) => (d[q * 3]! > 0.85 && d[q * 3 + 1]! > 0.85 && d[q * 3 + 2]! > 0.85 ? 0 : 1));
  const iou = (a: number[], b: number[]) => {
    let inter = 0;
    let union = 0;
    a.forEach((v, q) => {
      inter += v && b[q] ? 1 : 0;
      union += v || b[q] ? 1 : 0;
    });
    return union === 0 ? 1 : inter / union;
  };

  // Random selection (Muse) must keep most tokens; least-likely selection moves more of them (each
  // round picks the tokens that fit least, which are new ones once the first round has run) but
  // still keeps the layout.
  it.each([
    ['random', 0.5],
    ['least-likely', 0.3],
  ] as const)('moves a red square toward "a blue square" while the layout stays (%s selection, more than %s of the tokens kept)', async (selection, keptAtLeast) => {
    const reds = makeShapes(32, SIZE, 7);
    const RED = COLOURS.red!;
    const BLUE = COLOURS.blue!;
    // 2 rounds × 30% (5 of 16 tokens each): about half the positions are resampled at least once.
    const settings = { iterations: 2, strength: 0.3, n: 3, seed: 5, selection };
    const m = { before: 0, after: 0, blue: 0, kept: 0, keptSame: 0, layout: 0, count: 0 };
    for (let i = 0; i < 32; i += 4) {
      const image = imageAt(reds, i); // i % 4 = 0: red
      const res = await pipe.edit({ mode: 'mask-free', image, prompt: 'a blue square', ...settings });
      const same = await pipe.edit({ mode: 'mask-free', image, prompt: 'a red square', ...settings });
      const src = pipe.decodeTokens(res.sourceTokens, 1)[0]!.data;
      res.images.forEach((im, b) => {
        m.before += dist(meanInk(src), BLUE) - dist(meanInk(src), RED);
        m.after += dist(meanInk(im.image.data), BLUE) - dist(meanInk(im.image.data), RED);
        m.blue += dominantColour(im.image.data) === names.indexOf('blue') ? 1 : 0;
        m.kept += im.kept;
        m.keptSame += same.images[b]!.kept;
        m.layout += iou(ink(src), ink(im.image.data));
        m.count++;
        expect(im.kept).toBeCloseTo(1 - diff(im.tokens, res.sourceTokens).length / 16, 9);
      });
    }
    const avg = (v: number) => v / m.count;
    console.log(
      `mask-free red → "a blue square" (${selection}, ${settings.iterations} iterations × ${settings.strength}, guidance 3), ${m.count} edits: ` +
        `ink colour (dist to blue − dist to red) ${avg(m.before).toFixed(0)} → ${avg(m.after).toFixed(0)}; ` +
        `judged blue ${(100 * avg(m.blue)).toFixed(0)}%; tokens kept ${(100 * avg(m.kept)).toFixed(0)}% ` +
        `(toward "a red square" instead: ${(100 * avg(m.keptSame)).toFixed(0)}%); ink-mask IoU with the source ${avg(m.layout).toFixed(2)}`,
    );
    expect(avg(m.before)).toBeGreaterThan(100); // the sources are clearly red
    expect(avg(m.after)).toBeLessThan(0); // the edits are nearer blue than red on average
    expect(avg(m.blue)).toBeGreaterThanOrEqual(0.75);
    expect(avg(m.kept)).toBeGreaterThan(keptAtLeast);
    expect(avg(m.layout)).toBeGreaterThan(0.5); // and so does the square's place
  });

  it('with the defaults (10 rounds × 10 %, least likely first) the colour flips fully and most positions are resampled', async () => {
    const image = imageAt(fresh, 0);
    const res = await pipe.edit({ mode: 'mask-free', image, prompt: 'a blue square', n: 3, seed: 5 });
    const kept = res.images.reduce((a, im) => a + im.kept, 0) / 3;
    const resampled = res.images.reduce((a, im) => a + im.regenerated.length, 0) / 3 / 16;
    console.log(`mask-free defaults: judged blue ${res.images.filter((im) => dominantColour(im.image.data) === 2).length}/3; resampled ${(100 * resampled).toFixed(0)}%, kept ${(100 * kept).toFixed(0)}%`);
    for (const im of res.images) expect(dominantColour(im.image.data)).toBe(names.indexOf('blue'));
    expect(resampled).toBeGreaterThan(0.7);
  });
});
