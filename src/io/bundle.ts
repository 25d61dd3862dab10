/**
 * A model bundle: one folder holding a trained pipeline, like a diffusers pipeline.
 *
 *   <bundle>/model_index.json   {"library": "maskgen", "version": "0.1.0", "parts": {"vqgan": "vqgan", ...}}
 *   <bundle>/<subfolder>/...    one checkpoint folder per part (see checkpoint.ts)
 */
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { hasCheckpoint } from './checkpoint.js';
import { packageRoot, packageVersion, parseConfig, readJsonFile } from './config.js';

export const INDEX_FILE = 'model_index.json';

export interface ModelIndex {
  library: 'maskgen';
  version: string;
  /** part name → subfolder of the bundle */
  parts: Record<string, string>;
  credits?: string[];
  sampling?: SamplingDefaults;
  [k: string]: unknown;
}

/** What writeModelIndex takes: `library` and `version` are filled in when absent. */
export type ModelIndexInput = Omit<ModelIndex, 'library' | 'version'> & { library?: 'maskgen'; version?: string };

/** A subfolder inside the bundle: relative, no `..`, not empty. */
const subfolder = z
  .string()
  .min(1)
  .refine((s) => !path.isAbsolute(s) && !s.split(/[\\/]/).includes('..'), 'must be a subfolder inside the bundle');

/**
 * The decoding settings a bundle was measured with, used where a caller gives none (each may be
 * absent; then the library's own default holds).
 */
export const SamplingDefaultsSchema = z.strictObject({
  steps: z.number().int().min(1).optional(),
  guidance: z.number().min(0).optional(),
  guidanceSchedule: z.enum(['constant', 'linear']).optional(),
  temperature: z.number().min(0).optional(),
  choiceTemperature: z.number().min(0).optional(),
  plausibility: z.number().min(0).max(1).optional(),
  polish: z.strictObject({ rounds: z.number().int().min(0), share: z.number().gt(0).max(1) }).optional(),
  /** The mask-free edit settings the bundle was measured with (each may be absent: the library's default holds). */
  maskFree: z
    .strictObject({
      strength: z.number().gt(0).max(1).optional(),
      iterations: z.number().int().min(1).optional(),
      steps: z.number().int().min(1).optional(),
      revert: z.number().min(0).optional(),
      guidance: z.number().min(0).optional(),
      temperature: z.number().min(0).optional(),
    })
    .optional(),
});
export type SamplingDefaults = z.infer<typeof SamplingDefaultsSchema>;

export const ModelIndexSchema = z.looseObject({
  library: z.literal('maskgen'),
  version: z.string(),
  parts: z.record(z.string(), subfolder),
  credits: z.array(z.string()).optional(),
  sampling: SamplingDefaultsSchema.optional(),
});

/** The bundles shipped in `models/`, by their short names (`--bundle fmnist`). */
export const SHIPPED_BUNDLES: Readonly<Record<string, string>> = { emoji: 'maskgen-emoji-small', fmnist: 'maskgen-fmnist-small' };

/**
 * A bundle location as given: a shipped bundle's short name (`emoji`, `fmnist`) becomes its folder
 * under maskgen's `models/` — unless a folder of that name exists here, which wins. Anything else
 * is returned as it is.
 */
export function resolveBundle(location: string): string {
  const shipped = SHIPPED_BUNDLES[location];
  if (shipped === undefined || existsSync(location)) return location;
  return path.join(packageRoot(), 'models', shipped);
}

/** Writes `<bundleDir>/model_index.json` atomically (`version` defaults to maskgen's own). */
export async function writeModelIndex(bundleDir: string, index: ModelIndexInput): Promise<void> {
  const full = { ...index, library: 'maskgen' as const, version: index.version ?? packageVersion() };
  const checked = parseConfig(ModelIndexSchema, full, `model index for ${bundleDir}`);
  await writeFileAtomic(path.join(bundleDir, INDEX_FILE), JSON.stringify(checked, null, 2) + '\n');
}

/**
 * Reads and validates `<bundleDir>/model_index.json`. A folder that is not a maskgen bundle (no such
 * folder, no index, or another library's index) is a UserError saying so.
 */
export async function readModelIndex(bundleDir: string): Promise<ModelIndex> {
  bundleDir = resolveBundle(bundleDir);
  let st;
  try {
    st = await fsp.stat(bundleDir);
  } catch {
    throw new UserError(`bundle ${bundleDir}: no such folder`);
  }
  if (!st.isDirectory()) throw new UserError(`bundle ${bundleDir}: not a folder (a model bundle is a folder with ${INDEX_FILE})`);
  const file = path.join(bundleDir, INDEX_FILE);
  try {
    await fsp.access(file);
  } catch {
    throw new UserError(`${bundleDir} is not a maskgen model bundle (no ${INDEX_FILE})`);
  }
  const raw = await readJsonFile(file);
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const lib = (raw as Record<string, unknown>).library;
    if (lib !== 'maskgen') {
      throw new UserError(
        `${bundleDir} is not a maskgen model bundle (${INDEX_FILE} ${lib === undefined ? 'names no library' : `is for library ${JSON.stringify(lib)}`})`,
      );
    }
  }
  return parseConfig(ModelIndexSchema, raw, file) as ModelIndex;
}

/**
 * The folder of one part. With `index`, its subfolder comes from `index.parts` (a part the bundle
 * does not have is a UserError); without, it is `<bundleDir>/<part>`.
 */
export function partDir(bundleDir: string, part: string, index?: ModelIndex): string {
  if (index === undefined) return path.join(bundleDir, part);
  const sub = index.parts[part];
  if (sub === undefined) {
    const has = Object.keys(index.parts);
    throw new UserError(`bundle ${bundleDir} has no '${part}' part (it has ${has.length > 0 ? has.join(', ') : 'none'})`);
  }
  return path.join(bundleDir, sub);
}

/**
 * Where `part` lives under `location`: a bundle (its index names the part's folder), the part folder
 * itself, or a run folder with the part in `<location>/<part>`. Nothing there is a UserError naming
 * `what` (e.g. "tokenizer").
 */
export async function locatePart(location: string, part: string, what: string): Promise<string> {
  location = resolveBundle(location);
  const isBundle = await fsp
    .access(path.join(location, INDEX_FILE))
    .then(() => true)
    .catch(() => false);
  if (isBundle) return partDir(location, part, await readModelIndex(location));
  if (await hasCheckpoint(location)) return location;
  const nested = path.join(location, part);
  if (await hasCheckpoint(nested)) return nested;
  throw new UserError(`${location}: no ${what} there (expected a bundle with a '${part}' part, or a folder with config.json and model.safetensors)`);
}
