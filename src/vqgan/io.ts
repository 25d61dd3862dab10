/** Saving and loading a trained tokenizer: the `vqgan/` part of a bundle. */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { INDEX_FILE, partDir, readModelIndex } from '../io/bundle.js';
import { parseConfig } from '../io/config.js';
import { assignWeights } from '../io/tensors.js';
import { VqganConfigSchema } from './config.js';
import { VitVqgan } from './model.js';

export const VQGAN_PART = 'vqgan';

/** Writes the model's config and weights into `dir` (a part folder). */
export async function saveTokenizer(dir: string, model: VitVqgan, opts: { float16?: boolean } = {}): Promise<void> {
  await saveCheckpoint(dir, { config: model.config, weights: model.variables() }, opts);
}

/** Where the tokenizer lives under `location`: a bundle (its vqgan part) or a part folder itself. */
export async function tokenizerDir(location: string): Promise<string> {
  const isBundle = await fsp
    .access(path.join(location, INDEX_FILE))
    .then(() => true)
    .catch(() => false);
  if (isBundle) return partDir(location, VQGAN_PART, await readModelIndex(location));
  if (await hasCheckpoint(location)) return location;
  const nested = path.join(location, VQGAN_PART);
  if (await hasCheckpoint(nested)) return nested;
  throw new UserError(`${location}: no tokenizer there (expected a bundle with a '${VQGAN_PART}' part, or a folder with config.json and model.safetensors)`);
}

/** Loads a tokenizer from a bundle or a part folder. */
export async function loadTokenizer(location: string): Promise<VitVqgan> {
  const dir = await tokenizerDir(location);
  const ckpt = await loadCheckpoint(dir, { what: 'tokenizer' });
  const config = parseConfig(VqganConfigSchema, ckpt.config, path.join(dir, 'config.json'));
  const model = new VitVqgan(config);
  try {
    assignWeights(model.variables(), ckpt.weights, `tokenizer ${dir}`);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
