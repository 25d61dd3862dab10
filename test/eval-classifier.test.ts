import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { imagesToFloat32 } from '../src/data/batches.js';
import { accuracyOn, classify, fieldClasses, labelsFromField, loadClassifier, saveClassifier, trainClassifier } from '../src/eval/classifier.js';
import { makeShapes } from './helpers/shapes.js';

describe('the judging classifier', () => {
  it('learns labelled images, and save → load predicts the same', async () => {
    const train = makeShapes(256, 16, 1);
    const test = makeShapes(64, 16, 2);
    const model = trainClassifier(train, { classes: 4, epochs: 6, batchSize: 32, seed: 1 });
    expect(accuracyOn(model, test)).toBeGreaterThanOrEqual(0.9);

    const dir = await mkdtemp(path.join(tmpdir(), 'maskgen-cls-'));
    await saveClassifier(path.join(dir, 'c'), model, { size: 16, channels: 3, classes: 4 });
    const loaded = await loadClassifier(path.join(dir, 'c'));
    const x = imagesToFloat32(test, Array.from({ length: 16 }, (_, i) => i));
    expect(Array.from(classify(loaded.model, x, loaded.config))).toEqual(Array.from(classify(model, x, { size: 16, channels: 3 })));
    model.dispose();
    loaded.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses unlabelled data', () => {
    const set = makeShapes(8, 16, 1);
    set.labels = undefined;
    expect(() => trainClassifier(set, { classes: 4 })).toThrow(/no "label"/);
  });
});

describe('classes from a metadata field', () => {
  it('numbers the distinct values in sorted order, and labels each image by them', () => {
    const set = { ...makeShapes(4, 8, 1), extras: [{ category: 'Symbols' }, { category: 'Flags' }, { category: 'Symbols' }, { category: 'Animals' }] };
    const classes = fieldClasses(set, 'category');
    expect(classes).toEqual(['Animals', 'Flags', 'Symbols']);
    expect(labelsFromField(set, 'category', classes)).toEqual([2, 1, 2, 0]);
  });
});
