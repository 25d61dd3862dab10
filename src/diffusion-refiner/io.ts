/**
 * Saving and loading a trained refiner: the `refiner/` part of a bundle.
 *
 *   refiner/config.json, refiner/model.safetensors   autoencoder/* and denoiser/* weights
 *   refiner/text-encoder/                            the refiner's own text encoder
 */
import path from 'node:path';
import { locatePart } from '../io/bundle.js';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
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

/** Where the refiner lives under `location`: a bundle with a refiner part, a run folder or the part folder itself. */
export function refinerDir(location: string): Promise<string> {
  return locatePart(location, REFINER_PART, 'refiner');
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
