/**
 * Checkpoints: one folder per model part.
 *
 *   <dir>/config.json             the config the model was built from
 *   <dir>/model.safetensors       the weights (F32, or F16 when asked)
 *   <dir>/optimizer.safetensors   optimizer state, always F32 (training checkpoints only)
 *   <dir>/state.json              e.g. {"step": 1200, ...} (training checkpoints only)
 *
 * Each file is written atomically, so a crash never leaves a half-written file.
 *
 * A training run keeps its checkpoints in a store (`saveTrainingCheckpoint`), where a whole
 * checkpoint is committed at once, so that a crash never leaves weights of one step beside optimizer
 * state of another:
 *
 *   <root>/step-00000400/         one checkpoint as above, plus
 *   <root>/step-00000400/manifest.json   every file's size and SHA-256, written last
 *   <root>/step-00000200/, …      the previous ones (the newest `keep` are kept)
 *   <root>/.staging-*             a checkpoint being written (ignored, removed by the next save)
 *
 * A checkpoint is written into a staging folder, fsynced, and renamed to `step-N` in one step; a
 * crash at any byte leaves the earlier checkpoints as they were. Loading checks the manifest, so a
 * torn, truncated or foreign file is an error naming it.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { fsError, fsReason, syncDir, writeFileAtomic, writeFileDurable } from './atomic.js';
import { configDiff, readJsonFile } from './config.js';
import { encodeSafetensors, loadSafetensors, saveSafetensors } from './safetensors.js';
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
  if (opts.expectConfig !== undefined) checkConfig(config, opts.expectConfig, label);

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

/** A checkpoint whose config differs from the one expected (the user's to fix: another --config). */
export class ConfigMismatchError extends UserError {}

/** Throws a ConfigMismatchError `<label> was made with a different config: <field>: <a> vs <b> …` unless `config` equals `expected` as JSON. */
export function checkConfig(config: unknown, expected: unknown, label: string): void {
  const diff = configDiff(config, JSON.parse(JSON.stringify(expected) ?? 'null'));
  if (diff !== null) throw new ConfigMismatchError(`${label} was made with a different config: ${diff} (checkpoint vs expected)`);
}

/** Whether `dir` holds a checkpoint (config.json and model.safetensors). */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  return (await isFile(path.join(dir, CONFIG_FILE))) && (await isFile(path.join(dir, MODEL_FILE)));
}

// ---------------------------------------------------------------------------------------------
// the checkpoint store of a training run

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'maskgen-checkpoint/1';
/** How many checkpoints a store keeps by default. */
export const KEEP_CHECKPOINTS = 3;
const STAGING = '.staging-';
const TRASH = '.trash-';

/**
 * Which checkpoint `--resume` continues from: `latest`, the newest (a damaged newest one is an
 * error), or `latest-good`, the newest one that passes its checks (damaged ones are skipped with a
 * warning; none good is an error, never a fresh start).
 */
export type ResumeFrom = 'latest' | 'latest-good';

export interface TrainingCheckpoint extends Checkpoint {
  state: Record<string, unknown> & { step: number };
}

export interface StoredCheckpoint {
  /** The checkpoint's folder. */
  dir: string;
  step: number;
  /** A checkpoint written before stores had manifests: the files directly in the store's root. */
  legacy: boolean;
}

const stepDirName = (step: number) => `step-${String(step).padStart(8, '0')}`;

/** The checkpoints committed in the store `root`, newest first (damaged ones included). */
export async function listCheckpoints(root: string): Promise<StoredCheckpoint[]> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return [];
  }
  const out: StoredCheckpoint[] = [];
  for (const name of names) {
    const m = /^step-(\d+)$/.exec(name);
    if (m) out.push({ dir: path.join(root, name), step: Number(m[1]), legacy: false });
  }
  if (await hasCheckpoint(root)) {
    let step = 0;
    try {
      step = Number((await readJsonFile(path.join(root, STATE_FILE)) as { step?: unknown }).step ?? 0) || 0;
    } catch {
      // a damaged legacy state.json: found by loading it
    }
    out.push({ dir: root, step, legacy: true });
  }
  return out.sort((a, b) => b.step - a.step || Number(a.legacy) - Number(b.legacy));
}

/** Whether the store `root` holds any checkpoint (good or damaged). */
export async function hasTrainingCheckpoint(root: string): Promise<boolean> {
  return (await listCheckpoints(root)).length > 0;
}

async function* filesUnder(dir: string, rel = ''): AsyncGenerator<string> {
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) yield* filesUnder(dir, r);
    else yield r;
  }
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Manifest {
  format: string;
  step: number;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Checks every file the manifest of `dir` lists against its size and SHA-256; a problem is a UserError naming the file. */
export async function verifyCheckpoint(dir: string): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await fsp.readFile(file, 'utf8')) as Manifest;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new UserError(`checkpoint ${dir}: not a folder`);
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'missing, so the checkpoint is incomplete or not one of maskgen\'s' : 'not valid JSON, so the checkpoint is damaged'}`);
  }
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== MANIFEST_FORMAT || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new UserError(`${file}: not a maskgen checkpoint manifest (expected "format": "${MANIFEST_FORMAT}")`);
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    const f = path.join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(f);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new UserError(`${f}: missing (the manifest lists it)`) : fsError(err, 'read', f);
    }
    if (bytes.length !== want.bytes) throw new UserError(`${f}: torn or replaced: ${bytes.length} bytes, the manifest says ${want.bytes}`);
    if (sha256(bytes) !== want.sha256) throw new UserError(`${f}: damaged or replaced: its SHA-256 differs from the manifest's`);
  }
}

/** Moves `dir` out of sight in one rename, then deletes it, so that a crash never leaves half a checkpoint under a `step-N` name. */
async function removeDir(root: string, dir: string): Promise<void> {
  const trash = path.join(root, `${TRASH}${randomBytes(6).toString('hex')}`);
  await fsp.rename(dir, trash);
  await fsp.rm(trash, { recursive: true, force: true });
}

/**
 * Commits a training checkpoint to the store `root` as `step-<state.step>` (replacing one of the same
 * step) and keeps the newest `keep` (default KEEP_CHECKPOINTS). `extra` may write more files into
 * the checkpoint's folder before it is committed (e.g. a text encoder's vocabulary). Returns the
 * checkpoint's folder. On failure (a full disk, …) the store is as it was, and the error is a
 * UserError naming the checkpoint. The tensors are not disposed.
 */
export async function saveTrainingCheckpoint(
  root: string,
  ckpt: TrainingCheckpoint,
  opts: { keep?: number; extra?: (dir: string) => Promise<void> } = {},
): Promise<string> {
  const final = path.join(root, stepDirName(ckpt.state.step));
  const staging = path.join(root, `${STAGING}${process.pid}-${randomBytes(6).toString('hex')}`);
  const meta = { library: 'maskgen' };
  try {
    await fsp.mkdir(root, { recursive: true });
    // What an earlier crash left: half-written checkpoints and half-deleted ones.
    for (const name of await fsp.readdir(root)) {
      if (name.startsWith(STAGING) || name.startsWith(TRASH)) await fsp.rm(path.join(root, name), { recursive: true, force: true });
    }
    await fsp.mkdir(staging);
    const files: Record<string, Uint8Array> = {
      [MODEL_FILE]: encodeSafetensors(await tensorsToArrays(ckpt.weights), meta),
      [OPTIMIZER_FILE]: encodeSafetensors(await tensorsToArrays(ckpt.optimizer ?? {}), meta),
      [CONFIG_FILE]: Buffer.from(json(ckpt.config ?? null)),
      [STATE_FILE]: Buffer.from(json(ckpt.state)),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFileDurable(path.join(staging, name), bytes);
    await opts.extra?.(staging);
    const manifest: Manifest = { format: MANIFEST_FORMAT, step: ckpt.state.step, files: {} };
    for await (const name of filesUnder(staging)) {
      const bytes = files[name] ?? (await fsp.readFile(path.join(staging, name)));
      manifest.files[name] = { bytes: bytes.length, sha256: sha256(bytes) };
    }
    await writeFileDurable(path.join(staging, MANIFEST_FILE), json(manifest));
    await syncDir(staging);
    if (await fsp.stat(final).then(() => true, () => false)) await removeDir(root, final);
    await fsp.rename(staging, final);
    await syncDir(root);
  } catch (err) {
    await fsp.rm(staging, { recursive: true, force: true }).catch(() => {});
    const reason = fsReason(err);
    if (reason !== undefined) throw new UserError(`cannot write checkpoint ${final}: ${reason}; the earlier checkpoints are kept`);
    if (err instanceof UserError) throw new UserError(`cannot write checkpoint ${final}: ${err.message}; the earlier checkpoints are kept`);
    throw err;
  }
  // Keep the newest `keep`. A failure here loses nothing: the next save tries again.
  const keep = Math.max(1, opts.keep ?? KEEP_CHECKPOINTS);
  for (const old of (await listCheckpoints(root)).slice(keep)) {
    try {
      if (old.legacy) for (const f of [STATE_FILE, OPTIMIZER_FILE, MODEL_FILE, CONFIG_FILE]) await fsp.rm(path.join(root, f), { force: true });
      else await removeDir(root, old.dir);
    } catch {
      // ignore
    }
  }
  return final;
}

/**
 * Loads a checkpoint from the store `root` to resume from (see ResumeFrom). A checkpoint made with
 * another config than `expectConfig` is an error either way (it is not damage to skip). `onSkip`
 * hears about each damaged checkpoint `latest-good` passes over. The caller owns the tensors.
 */
export async function loadTrainingCheckpoint(
  root: string,
  opts: { expectConfig?: unknown; what?: string; from?: ResumeFrom; onSkip?: (message: string) => void } = {},
): Promise<Checkpoint & { dir: string; step: number }> {
  const what = opts.what ?? 'checkpoint';
  const all = await listCheckpoints(root);
  if (all.length === 0) throw new UserError(`no ${what} in ${root}`);
  let first: UserError | undefined;
  for (const [i, c] of all.entries()) {
    try {
      if (!c.legacy) await verifyCheckpoint(c.dir);
      const ckpt = await loadCheckpoint(c.dir, { what });
      try {
        if (opts.expectConfig !== undefined) checkConfig(ckpt.config, opts.expectConfig, `${what} ${c.dir}`);
      } catch (err) {
        for (const t of [...Object.values(ckpt.weights), ...Object.values(ckpt.optimizer ?? {})]) t.dispose();
        throw err;
      }
      return { ...ckpt, dir: c.dir, step: Number(ckpt.state?.step ?? c.step) };
    } catch (err) {
      if (!(err instanceof UserError) || err instanceof ConfigMismatchError) throw err;
      const older = all.slice(i + 1);
      if (opts.from !== 'latest-good') {
        const hint = older.length > 0 ? `; --resume latest-good continues from the newest good one of the ${older.length} older (step ${older[0]!.step})` : '';
        throw new UserError(`${err.message}${hint}`);
      }
      first ??= err;
      opts.onSkip?.(`skipping ${what} ${c.dir}: ${err.message}`);
    }
  }
  throw new UserError(`no good ${what} in ${root} (${all.length} damaged; the newest: ${first!.message})`);
}
