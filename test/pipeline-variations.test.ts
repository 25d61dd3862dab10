/**
 * Variations from an image: the pure schedule and position rules pinned by numbers, then
 * `pipe.variations` on the tiny coloured-squares pipeline (test/helpers/tiny-pipeline.ts).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePng, type RawImage } from '../src/data/images.js';
import { remaskCopies, variationPositions, variationSchedule } from '../src/decoding/index.js';
import type { MaskgenPipeline } from '../src/pipeline.js';
import { COLOURS, dominantColour, makeShapes } from './helpers/shapes.js';
import { errorLine, lastJson, runMaskgen } from './helpers/cli.js';
import { trainTinyPipeline } from './helpers/tiny-pipeline.js';

describe('variation rules', () => {
  it('strength s enters the cosine schedule where s of the tokens are masked', () => {
    expect(variationSchedule(16, 1, 12)).toEqual({ masked: 16, steps: 12 });
    // r0 = (2/π)·acos(0.5) = 2/3: 12 · 1/3 = 4 steps left
    expect(variationSchedule(16, 0.5, 12)).toEqual({ masked: 8, steps: 4 });
    // acos(0.25) = 1.3181 → r0 = 0.8391 → ⌈12 · 0.1609⌉ = ⌈1.93⌉ = 2
    expect(variationSchedule(16, 0.25, 12)).toEqual({ masked: 4, steps: 2 });
    expect(variationSchedule(256, 0.01, 12)).toEqual({ masked: 3, steps: 1 });
    expect(variationSchedule(4, 0.01, 8)).toEqual({ masked: 1, steps: 1 });
    expect(() => variationSchedule(16, 0, 12)).toThrow(/strength.*\(0, 1\]/);
    expect(() => variationSchedule(16, 1.5, 12)).toThrow(/strength/);
    expect(() => variationSchedule(16, 0.5, 0)).toThrow(/steps/);
  });

  it("each variation's positions depend on the seed and its index only", () => {
    const a = variationPositions(64, 20, 7, 3);
    expect(a).toHaveLength(20);
    expect(new Set(a).size).toBe(20);
    expect(a).toEqual([...a].sort((x, y) => x - y));
    expect(a.every((i) => i >= 0 && i < 64)).toBe(true);
    expect(variationPositions(64, 20, 7, 3)).toEqual(a);
    expect(variationPositions(64, 20, 7, 2)).not.toEqual(a);
    expect(variationPositions(64, 20, 8, 3)).not.toEqual(a);
    expect(() => variationPositions(4, 5, 1, 0)).toThrow(/cannot re-mask 5 of 4/);
  });

  it('remaskCopies masks each copy at its own positions', () => {
    const out = remaskCopies(Int32Array.from([1, 2, 3]), [[0], [1, 2]], 9);
    expect(Array.from(out)).toEqual([9, 2, 3, 1, 9, 9]);
  });
});

describe('pipe.variations on a tiny pipeline', () => {
  let tmp: string;
  let pipe: MaskgenPipeline;
  const SIZE = 16;
  const fresh = makeShapes(16, SIZE, 99); // not seen in training; i % 4 = colour (0 red, 2 blue)
  const imageAt = (i: number): RawImage => {
    const per = SIZE * SIZE * 3;
    return { data: fresh.pixels.slice(i * per, (i + 1) * per), width: SIZE, height: SIZE, channels: 3 };
  };
  const names = Object.keys(COLOURS);

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-var-'));
    pipe = await trainTinyPipeline(tmp);
  }, 900_000);

  afterAll(async () => {
    pipe?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('changes only re-masked tokens, takes the scheduled steps, and is deterministic by seed (variation i does not depend on how many come after it)', async () => {
    const steps: number[] = [];
    const res = await pipe.variations({ image: imageAt(0), prompt: 'a red square', n: 4, strength: 0.5, seed: 3, onStep: (d) => void steps.push(d) });
    expect(res.steps).toBe(4); // 16 tokens, strength 0.5, 12-step schedule
    expect(steps.at(-1)).toBe(4 * 4);
    expect(res.images).toHaveLength(4);
    for (const v of res.images) {
      expect(v.remasked).toHaveLength(8);
      for (const i of v.changed) expect(v.remasked).toContain(i);
      expect(v.image.width).toBe(SIZE);
    }
    const again = await pipe.variations({ image: imageAt(0), prompt: 'a red square', n: 2, strength: 0.5, seed: 3 });
    expect(again.images.map((v) => Array.from(v.tokens))).toEqual(res.images.slice(0, 2).map((v) => Array.from(v.tokens)));
    const other = await pipe.variations({ image: imageAt(0), prompt: 'a red square', n: 4, strength: 0.5, seed: 4 });
    expect(other.images.map((v) => Array.from(v.tokens))).not.toEqual(res.images.map((v) => Array.from(v.tokens)));
  });

  it('with its own caption a variation keeps the colour; at full strength the prompt decides', async () => {
    let kept = 0;
    let total = 0;
    for (const i of [0, 2, 4, 6]) {
      const colour = names[i % 4]!;
      const res = await pipe.variations({ image: imageAt(i), prompt: `a ${colour} square`, n: 4, strength: 0.5, seed: i });
      for (const v of res.images) {
        total++;
        if (dominantColour(v.image.data) === i % 4) kept++;
      }
    }
    expect(kept / total).toBeGreaterThanOrEqual(0.75);
    const turned = await pipe.variations({ image: imageAt(0), prompt: 'a blue square', n: 8, strength: 1, seed: 1 });
    expect(turned.images.filter((v) => dominantColour(v.image.data) === 2).length).toBeGreaterThanOrEqual(6);
  });

  it('more strength changes more tokens', async () => {
    const share = async (strength: number) => {
      const res = await pipe.variations({ image: imageAt(1), prompt: 'a green square', n: 8, strength, seed: 5 });
      return res.images.reduce((a, v) => a + v.changed.length, 0) / (8 * 16);
    };
    const low = await share(0.25);
    const high = await share(0.9);
    expect(low).toBeLessThanOrEqual(0.25);
    expect(high).toBeGreaterThan(low);
  });

  it('does not leak tensors and refuses an image of the wrong size', async () => {
    await pipe.variations({ image: imageAt(0), seed: 1 });
    const before = tf.memory().numTensors;
    await pipe.variations({ image: imageAt(0), prompt: 'a red square', n: 3, seed: 2 });
    expect(tf.memory().numTensors).toBe(before);
    const small: RawImage = { data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, channels: 3 };
    await expect(pipe.variations({ image: small })).rejects.toThrow(/source image is 8×8×3, the tokenizer takes 16×16×3/);
    await expect(pipe.variations({ image: imageAt(0), strength: 0 })).rejects.toThrow(/strength/);
  });

  it('maskgen generate --image I --variations takes the caption from the folder and writes the variations; --region paints words', async () => {
    const dir = path.join(tmp, 'imgs');
    await writePng(path.join(dir, 'blue.png'), imageAt(2));
    await writeFile(path.join(dir, 'metadata.jsonl'), JSON.stringify({ file_name: 'blue.png', text: 'a blue square' }) + '\n');
    const backend = process.env.MASKGEN_TEST_BACKEND ?? 'wasm';
    const common = ['generate', '--bundle', path.join(tmp, 'run'), '--backend', backend];
    const r = await runMaskgen(tmp, [...common, '--image', path.join(dir, 'blue.png'), '--variations', '--strength', '0.5', '--n', '3', '--out', 'vars', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout);
    expect(out).toMatchObject({ prompt: 'a blue square', strength: 0.5, steps: 4, images: 3 });
    expect(await readdir(path.join(tmp, 'vars'))).toEqual(expect.arrayContaining(['grid.png', 'variations.json', 'variation-0.png', 'variation-2.png']));
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'vars', 'variations.json'), 'utf8'));
    expect(sidecar.promptFrom).toBe('caption');
    const bad = await runMaskgen(tmp, [...common, '--variations']);
    expect(bad.code).toBe(1);
    expect(errorLine(bad.stderr)).toBe('maskgen: error: --variations needs --image (the image to make variations of)');
    const region = await runMaskgen(tmp, [...common, '--prompt', 'a red square', '--region', 'red:0,0,8,16', '--region', 'square:8,0,8,16', '--n', '1', '--out', 'painted', '--json']);
    expect(region.code, region.stderr).toBe(0);
    const sidecar2 = JSON.parse(await readFile(path.join(tmp, 'painted', 'a-red-square-0.json'), 'utf8'));
    expect(sidecar2.regions).toEqual([{ word: 'red', box: { x: 0, y: 0, w: 8, h: 16 } }, { word: 'square', box: { x: 8, y: 0, w: 8, h: 16 } }]);
    const badRegion = await runMaskgen(tmp, [...common, '--prompt', 'a red square', '--region', 'red 0,0,8,16']);
    expect(errorLine(badRegion.stderr)).toMatch(/^maskgen: error: --region must be word:x,y,w,h/);
  }, 900_000);
});
