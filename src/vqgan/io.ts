/** Saving and loading a trained tokenizer: the `vqgan/` part of a bundle. */
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { locatePart } from '../io/bundle.js';
import { parseConfig } from '../io/config.js';
import { assignWeights } from '../io/tensors.js';
import { VqganConfigSchema } from './config.js';
import { VitVqgan } from './model.js';

export const VQGAN_PART = 'vqgan';

/** Writes the model's config and weights into `dir` (a part folder). */
export async function saveTokenizer(dir: string, model: VitVqgan, opts: { float16?: boolean } = {}): Promise<void> {
  await saveCheckpoint(dir, { config: model.config, weights: model.variables() }, opts);
}

/** Where the tokenizer lives under `location`: a bundle (its vqgan part), a run folder or the part folder itself. */
export function tokenizerDir(location: string): Promise<string> {
  return locatePart(location, VQGAN_PART, 'tokenizer');
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
