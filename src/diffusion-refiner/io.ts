/**
 * Saving and loading a trained refiner: the `refiner/` part of a bundle.
 *
 *   refiner/config.json, refiner/model.safetensors   autoencoder/* and denoiser/* weights
 *   refiner/text-encoder/                            the refiner's own text encoder
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { INDEX_FILE, partDir, readModelIndex } from '../io/bundle.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { parseConfig } from '../io/config.js';
import { assignWeights } from '../io/tensors.js';
import { loadTextEncoder } from '../text/encoder.js';
import { RefinerConfigSchema } from './config.js';
import { Refiner } from './refiner.js';

export const REFINER_PART = 'refiner';
const TEXT_SUBFOLDER = 'text-encoder';

export async function saveRefiner(dir: string, refiner: Refiner, opts: { float16?: boolean } = {}): Promise<void> {
  await saveCheckpoint(dir, { config: refiner.config, weights: refiner.variables() }, opts);
  await refiner.text.save(path.join(dir, TEXT_SUBFOLDER));
}

/** Where the refiner lives under `location`: a bundle with a refiner part, or the part folder itself. */
export async function refinerDir(location: string): Promise<string> {
  const isBundle = await fsp
    .access(path.join(location, INDEX_FILE))
    .then(() => true)
    .catch(() => false);
  if (isBundle) return partDir(location, REFINER_PART, await readModelIndex(location));
  if (await hasCheckpoint(location)) return location;
  throw new UserError(`${location}: no refiner there (expected a bundle with a '${REFINER_PART}' part, or a refiner folder)`);
}

export async function loadRefiner(location: string): Promise<Refiner> {
  const dir = await refinerDir(location);
  const ckpt = await loadCheckpoint(dir, { what: 'refiner' });
  const config = parseConfig(RefinerConfigSchema, ckpt.config, path.join(dir, 'config.json'));
  const text = await loadTextEncoder(path.join(dir, TEXT_SUBFOLDER));
  const refiner = Refiner.create(config, text);
  try {
    assignWeights(refiner.variables(), ckpt.weights, `refiner ${dir}`);
  } catch (err) {
    refiner.dispose();
    throw err;
  }
  return refiner;
}
