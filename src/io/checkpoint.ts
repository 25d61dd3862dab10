/**
 * Checkpoints: one folder per model part or training run.
 *
 *   <dir>/config.json             the config the model was built from
 *   <dir>/model.safetensors       the weights (F32, or F16 when asked)
 *   <dir>/optimizer.safetensors   optimizer state, always F32 (training checkpoints only)
 *   <dir>/state.json              e.g. {"step": 1200, ...} (training checkpoints only)
 *
 * Each file is written atomically, so a crash never leaves a half-written file.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { configDiff, readJsonFile } from './config.js';
import { loadSafetensors, saveSafetensors } from './safetensors.js';
import { arraysToTensors, tensorsToArrays } from './tensors.js';

export const CONFIG_FILE = 'config.json';
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';

export interface Checkpoint {
  config: unknown;
  weights: Record<string, tf.Tensor>;
  optimizer?: Record<string, tf.Tensor>;
  state?: Record<string, unknown>;
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fsp.stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * Writes a checkpoint into `dir` (created if needed). Weights are stored as float16 only when
 * `opts.float16`; optimizer state always as float32. Saving without `optimizer` / `state` removes a
 * stale optimizer.safetensors / state.json left in `dir` by an earlier save, so the folder always
 * describes one checkpoint. The tensors are not disposed.
 */
export async function saveCheckpoint(dir: string, ckpt: Checkpoint, opts: { float16?: boolean } = {}): Promise<void> {
  const meta = { library: 'maskgen' };
  const weights = await tensorsToArrays(ckpt.weights, { float16: opts.float16 === true });
  await saveSafetensors(path.join(dir, MODEL_FILE), weights, meta);
  if (ckpt.optimizer) {
    await saveSafetensors(path.join(dir, OPTIMIZER_FILE), await tensorsToArrays(ckpt.optimizer), meta);
  } else {
    await fsp.rm(path.join(dir, OPTIMIZER_FILE), { force: true });
  }
  await writeFileAtomic(path.join(dir, CONFIG_FILE), json(ckpt.config ?? null));
  if (ckpt.state) await writeFileAtomic(path.join(dir, STATE_FILE), json(ckpt.state));
  else await fsp.rm(path.join(dir, STATE_FILE), { force: true });
}

/**
 * Reads a checkpoint. A missing folder or file is a UserError; so is a checkpoint whose config
 * differs from `opts.expectConfig` (compared as JSON): `checkpoint DIR was made with a different
 * config: <field>: <checkpoint's value> vs <expected value>`. `opts.what` replaces the word
 * "checkpoint" in messages (e.g. `'tokenizer checkpoint'`). The caller owns the returned tensors.
 */
export async function loadCheckpoint(
  dir: string,
  opts: { expectConfig?: unknown; what?: string } = {},
): Promise<Checkpoint> {
  const label = `${opts.what ?? 'checkpoint'} ${dir}`;
  let st;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new UserError(`${label}: no such folder`);
  }
  if (!st.isDirectory()) throw new UserError(`${label}: not a folder`);
  for (const f of [CONFIG_FILE, MODEL_FILE]) {
    if (!(await isFile(path.join(dir, f)))) throw new UserError(`${label}: not a checkpoint (no ${f})`);
  }

  const config = await readJsonFile(path.join(dir, CONFIG_FILE));
  if (opts.expectConfig !== undefined) {
    const expected: unknown = JSON.parse(JSON.stringify(opts.expectConfig) ?? 'null');
    const diff = configDiff(config, expected);
    if (diff !== null) throw new UserError(`${label} was made with a different config: ${diff} (checkpoint vs expected)`);
  }

  const weights = arraysToTensors((await loadSafetensors(path.join(dir, MODEL_FILE))).tensors);
  const out: Checkpoint = { config, weights };
  try {
    const optFile = path.join(dir, OPTIMIZER_FILE);
    if (await isFile(optFile)) out.optimizer = arraysToTensors((await loadSafetensors(optFile)).tensors);
    const stateFile = path.join(dir, STATE_FILE);
    if (await isFile(stateFile)) {
      const state = await readJsonFile(stateFile);
      if (typeof state !== 'object' || state === null || Array.isArray(state)) {
        throw new UserError(`${stateFile}: expected a JSON object`);
      }
      out.state = state as Record<string, unknown>;
    }
  } catch (err) {
    for (const t of Object.values(weights)) t.dispose();
    for (const t of Object.values(out.optimizer ?? {})) t.dispose();
    throw err;
  }
  return out;
}

/** Whether `dir` holds a checkpoint (config.json and model.safetensors). */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  return (await isFile(path.join(dir, CONFIG_FILE))) && (await isFile(path.join(dir, MODEL_FILE)));
}
