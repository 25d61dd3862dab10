/**
 * Tokenizing a data set once with the frozen tokenizer, cached on disk next to the run so that a
 * resumed or repeated run does not encode 60,000 images again. The cache is keyed by a hash of the
 * tokenizer's weights and of the images' pixels.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { imagesToTensor } from '../data/batches.js';
import type { ImageSet } from '../data/imagefolder.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import type { VitVqgan } from '../vqgan/model.js';

export async function tokenizerHash(model: VitVqgan): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.config));
  for (const [name, v] of Object.entries(model.variables()).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(name);
    h.update(new Uint8Array(((await v.data()) as Float32Array).buffer));
  }
  return h.digest('hex').slice(0, 16);
}

export function dataHash(data: ImageSet): string {
  return createHash('sha256').update(data.pixels).update(`${data.count}x${data.width}x${data.height}x${data.channels}`).digest('hex').slice(0, 16);
}

/** Token ids of every image, [count · N], from the cache file when it matches, else computed and cached. */
export async function tokenizeDataset(
  model: VitVqgan,
  data: ImageSet,
  cacheDir: string | undefined,
  onProgress?: (done: number, total: number) => void,
  batchSize = 128,
): Promise<Int32Array> {
  const key = `${await tokenizerHash(model)}-${dataHash(data)}`;
  const file = cacheDir ? path.join(cacheDir, `tokens-${key}.safetensors`) : undefined;
  if (file) {
    const hit = await fsp
      .access(file)
      .then(() => true)
      .catch(() => false);
    if (hit) {
      const { tensors } = await loadSafetensors(file);
      const t = tensors.tokens;
      if (t && t.dtype === 'I32' && t.shape[0] === data.count) return t.data as Int32Array;
    }
  }
  const n = model.grid * model.grid;
  const out = new Int32Array(data.count * n);
  for (let start = 0; start < data.count; start += batchSize) {
    const count = Math.min(batchSize, data.count - start);
    const x = imagesToTensor(data, Array.from({ length: count }, (_, i) => start + i));
    const tokens = model.encode(x);
    out.set((await tokens.data()) as Int32Array, start * n);
    tf.dispose([x, tokens]);
    onProgress?.(start + count, data.count);
  }
  if (file) await saveSafetensors(file, { tokens: { dtype: 'I32', shape: [data.count, n], data: out } }, { key });
  return out;
}
