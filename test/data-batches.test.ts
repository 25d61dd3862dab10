/**
 * Seeded shuffling and batching, and batches as one float tensor (with optional seeded flips).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { batchIndices, captionsAt, epochBatches, imagesToFloat32, imagesToTensor, mirrored } from '../src/data/batches.js';
import type { ImageSet } from '../src/data/imagefolder.js';
import { Rng } from '../src/random.js';

function order(seed: number, n = 50, batch = 8): number[][] {
  return [...batchIndices(n, batch, new Rng(seed))];
}

/** A tiny set whose pixel values encode (image, y, x, channel). */
function makeSet(count: number, h: number, w: number, c: 1 | 3): ImageSet {
  const pixels = new Uint8Array(count * h * w * c);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) % 256;
  return {
    count,
    width: w,
    height: h,
    channels: c,
    pixels,
    captions: Array.from({ length: count }, (_, i) => `image ${i}`),
    files: Array.from({ length: count }, (_, i) => `${i}.png`),
    skipped: 0,
  };
}

describe('batchIndices', () => {
  it('gives the same order for the same seed and another for another seed', () => {
    expect(order(1)).toEqual(order(1));
    expect(order(1)).not.toEqual(order(2));
  });

  it('visits every index exactly once per epoch', () => {
    const batches = order(7, 50, 8);
    expect(batches.map((b) => b.length)).toEqual([8, 8, 8, 8, 8, 8, 2]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('drops the short last batch when asked, and keeps order without an rng', () => {
    const dropped = [...batchIndices(50, 8, new Rng(7), true)];
    expect(dropped).toHaveLength(6);
    expect(new Set(dropped.flat()).size).toBe(48);
    expect([...batchIndices(5, 2, null)]).toEqual([[0, 1], [2, 3], [4]]);
  });

  it('reshuffles each epoch in epochBatches, deterministically', () => {
    const take = (seed: number) => {
      const it = epochBatches(10, 5, new Rng(seed), true);
      return Array.from({ length: 6 }, () => it.next().value!);
    };
    const a = take(3);
    expect(a.map((b) => b.epoch)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(take(3)).toEqual(a);
    for (const e of [0, 1, 2]) {
      const epoch = a.filter((b) => b.epoch === e).flatMap((b) => b.indices);
      expect(epoch.sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    }
    expect(a[0]!.indices.concat(a[1]!.indices)).not.toEqual(a[2]!.indices.concat(a[3]!.indices));
    expect(epochBatches(3, 5, new Rng(1), true).next().done).toBe(true);
  });
});

describe('imagesToTensor', () => {
  it('makes one float32 [B,H,W,C] tensor in [0,1] with the chosen images', () => {
    const set = makeSet(5, 4, 3, 3);
    const before = tf.memory().numTensors;
    const x = imagesToTensor(set, [4, 0]);
    expect(x.shape).toEqual([2, 4, 3, 3]);
    expect(x.dtype).toBe('float32');
    const data = x.dataSync();
    const per = 4 * 3 * 3;
    expect(data[0]).toBeCloseTo(set.pixels[4 * per]! / 255, 6);
    expect(data[per]).toBeCloseTo(set.pixels[0]! / 255, 6);
    expect(Math.min(...data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...data)).toBeLessThanOrEqual(1);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(captionsAt(set, [4, 0])).toEqual(['image 4', 'image 0']);
  });

  it('flips left–right with a seeded rng, and not at all without one', () => {
    const set = makeSet(16, 2, 5, 3);
    const plain = imagesToFloat32(set, [...Array(16).keys()]);
    const flipped = imagesToFloat32(set, [...Array(16).keys()], { hflip: new Rng(9) });
    expect(imagesToFloat32(set, [...Array(16).keys()], { hflip: new Rng(9) })).toEqual(flipped);
    const per = 2 * 5 * 3;
    let nFlipped = 0;
    for (let b = 0; b < 16; b++) {
      const img = flipped.subarray(b * per, (b + 1) * per);
      const orig = plain.subarray(b * per, (b + 1) * per);
      const same = img.every((v, i) => v === orig[i]);
      if (same) continue;
      nFlipped++;
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 5; x++)
          for (let k = 0; k < 3; k++) expect(img[(y * 5 + x) * 3 + k]).toBe(orig[(y * 5 + (4 - x)) * 3 + k]);
    }
    expect(nFlipped).toBeGreaterThan(2);
    expect(nFlipped).toBeLessThan(14);
  });

  it('mirrors a whole set left–right, captions kept, and twice is the original', () => {
    const set = makeSet(3, 2, 5, 3);
    const m = mirrored(set);
    expect(m.captions).toEqual(set.captions);
    for (let i = 0; i < 3; i++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 5; x++)
          for (let k = 0; k < 3; k++) expect(m.pixels[((i * 2 + y) * 5 + x) * 3 + k]).toBe(set.pixels[((i * 2 + y) * 5 + (4 - x)) * 3 + k]);
    expect(mirrored(m).pixels).toEqual(set.pixels);
  });

  it('rejects an index out of range', () => {
    expect(() => imagesToFloat32(makeSet(2, 1, 1, 1), [2])).toThrow(/out of range/);
  });
});
