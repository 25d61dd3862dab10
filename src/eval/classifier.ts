/**
 * An independent judge for generated images: a small CNN classifier (tfjs layers) trained on the
 * real images of a labelled data set, e.g. Fashion-MNIST. Generation recipes score "is this image
 * of the prompted class?" with it. Weights are saved as safetensors like every other model here.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { batchIndices, imagesToFloat32 } from '../data/batches.js';
import type { ImageSet } from '../data/imagefolder.js';
import { UserError } from '../errors.js';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { featureStats, type FeatureStats } from './frechet.js';
import { Rng } from '../random.js';

export interface ClassifierConfig {
  size: number;
  channels: number;
  classes: number;
}

export function buildClassifier(c: ClassifierConfig, seed = 0): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed + i });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [c.size, c.size, c.channels], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ units: c.classes, kernelInitializer: init(4) }),
    ],
  });
}

function labelsOf(set: ImageSet): number[] {
  return Array.from({ length: set.count }, (_, i) => {
    const l = set.labels?.[i];
    if (l === undefined) throw new UserError(`image ${set.files[i]} has no "label" in metadata.jsonl; the classifier needs labelled data`);
    return l;
  });
}

/**
 * The distinct values of a metadata field (e.g. emoji "category"), sorted: class i is the i-th. Every
 * script that trains or queries a classifier by such a field numbers the classes this way.
 */
export function fieldClasses(set: ImageSet, field: string): string[] {
  return [...new Set((set.extras ?? []).map((e) => String(e[field])))].sort();
}

/** Each image's class number for a metadata field, as `fieldClasses` numbers them. */
export function labelsFromField(set: ImageSet, field: string, classes: readonly string[]): number[] {
  return (set.extras ?? []).map((e) => classes.indexOf(String(e[field])));
}

export interface TrainClassifierOptions {
  classes: number;
  epochs?: number;
  batchSize?: number;
  seed?: number;
  onBatch?: (done: number, total: number, loss: number) => void;
}

/** Trains on every image of `set` (labels from metadata.jsonl) with Adam and softmax cross-entropy. */
export function trainClassifier(set: ImageSet, o: TrainClassifierOptions): tf.Sequential {
  const labels = labelsOf(set);
  const model = buildClassifier({ size: set.width, channels: set.channels, classes: o.classes }, o.seed ?? 0);
  const opt = tf.train.adam(1e-3);
  const rng = new Rng(o.seed ?? 0);
  const bs = o.batchSize ?? 64;
  const epochs = o.epochs ?? 2;
  const total = epochs * Math.floor(set.count / bs);
  let done = 0;
  for (let e = 0; e < epochs; e++) {
    for (const idx of batchIndices(set.count, bs, rng, true)) {
      const loss = tf.tidy(() => {
        const x = tf.tensor4d(imagesToFloat32(set, idx), [idx.length, set.height, set.width, set.channels]);
        const y = tf.oneHot(tf.tensor1d(idx.map((i) => labels[i]!), 'int32'), o.classes);
        return opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.predict(x) as tf.Tensor) as tf.Scalar, true)!;
      });
      done++;
      o.onBatch?.(done, total, loss.dataSync()[0]!);
      loss.dispose();
    }
  }
  opt.dispose();
  return model;
}

/** Predicted class of each image; `images` is [B·H·W·C] in [0, 1]. */
export function classify(model: tf.Sequential, images: Float32Array, c: { size: number; channels: number }, batchSize = 256): Int32Array {
  const per = c.size * c.size * c.channels;
  const count = images.length / per;
  const out = new Int32Array(count);
  for (let s = 0; s < count; s += batchSize) {
    const n = Math.min(batchSize, count - s);
    const pred = tf.tidy(() => tf.argMax(model.predict(tf.tensor4d(images.subarray(s * per, (s + n) * per), [n, c.size, c.size, c.channels])) as tf.Tensor, 1));
    out.set(pred.dataSync() as Int32Array, s);
    pred.dispose();
  }
  return out;
}

/** Share of the images of `set` that the classifier labels right. */
export function accuracyOn(model: tf.Sequential, set: ImageSet): number {
  const labels = labelsOf(set);
  const pred = classify(model, imagesToFloat32(set, Array.from({ length: set.count }, (_, i) => i)), { size: set.width, channels: set.channels });
  return pred.reduce((hits, p, i) => hits + (p === labels[i] ? 1 : 0), 0) / set.count;
}

export async function saveClassifier(dir: string, model: tf.Sequential, config: ClassifierConfig): Promise<void> {
  const weights = Object.fromEntries(model.weights.map((w, i) => [`${i}:${w.name}`, w.read()]));
  await saveCheckpoint(dir, { config: { kind: 'classifier', ...config }, weights });
}

export async function loadClassifier(dir: string): Promise<{ model: tf.Sequential; config: ClassifierConfig }> {
  const ckpt = await loadCheckpoint(dir, { what: 'classifier' });
  const config = ckpt.config as ClassifierConfig;
  const model = buildClassifier(config);
  const ordered = Object.entries(ckpt.weights).sort(([a], [b]) => parseInt(a) - parseInt(b)).map(([, t]) => t);
  if (ordered.length !== model.weights.length) throw new UserError(`classifier ${path.resolve(dir)}: ${ordered.length} weights, the model has ${model.weights.length}`);
  model.setWeights(ordered);
  tf.dispose(ordered);
  return { model, config };
}

/** The feature model of each classifier: its input up to the 128-unit dense layer (after ReLU). */
const featureModels = new WeakMap<tf.Sequential, tf.LayersModel>();

function featureModel(model: tf.Sequential): tf.LayersModel {
  let m = featureModels.get(model);
  if (!m) {
    const penultimate = model.layers[model.layers.length - 2];
    if (!penultimate) throw new Error('classifier has fewer than two layers: no penultimate features');
    m = tf.model({ inputs: model.inputs, outputs: penultimate.output as tf.SymbolicTensor });
    featureModels.set(model, m);
  }
  return m;
}

/**
 * Penultimate-layer activations (the 128-unit dense layer after ReLU) of each image, for Fréchet
 * distances; `images` is [B·H·W·C] in [0, 1] like `classify`. Returns [B·dim] row after row.
 */
export function classifierFeatures(model: tf.Sequential, images: Float32Array, c: { size: number; channels: number }, batchSize = 256): { features: Float32Array; dim: number } {
  const fm = featureModel(model);
  const dim = fm.outputs[0]!.shape[1]!;
  const per = c.size * c.size * c.channels;
  const count = images.length / per;
  if (!Number.isInteger(count)) throw new Error(`${images.length} values are not whole ${c.size}×${c.size}×${c.channels} images`);
  const features = new Float32Array(count * dim);
  for (let s = 0; s < count; s += batchSize) {
    const n = Math.min(batchSize, count - s);
    const out = tf.tidy(() => fm.predict(tf.tensor4d(images.subarray(s * per, (s + n) * per), [n, c.size, c.size, c.channels])) as tf.Tensor);
    features.set(out.dataSync() as Float32Array, s * dim);
    out.dispose();
  }
  return { features, dim };
}

/** Mean and covariance of the classifier's features of `images` ([B·H·W·C] in [0, 1]): one side of a Fréchet distance. */
export function classifierFeatureStats(model: tf.Sequential, images: Float32Array, c: { size: number; channels: number }): FeatureStats {
  const { features, dim } = classifierFeatures(model, images, c);
  return featureStats(features, features.length / dim, dim);
}
