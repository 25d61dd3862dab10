/**
 * Assembling a bundle to ship: copy the parts of a trained bundle (and optionally a refiner from
 * another run) into a clean folder — no checkpoints, caches or logs — with the weights in float16
 * when asked, and the credits in model_index.json.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { INDEX_FILE, partDir, readModelIndex, writeModelIndex, type SamplingDefaults } from './bundle.js';
import { MODEL_FILE } from './checkpoint.js';
import { float32ToFloat16, loadSafetensors, saveSafetensors, type NamedArray } from './safetensors.js';

export interface ExportOptions {
  /** The trained bundle. */
  from: string;
  /** Extra parts from other bundles or part folders: part name → location (a part folder). */
  extraParts?: Record<string, string>;
  out: string;
  float16?: boolean;
  credits?: string[];
  /** The decoding settings `generate` uses with the bundle unless told otherwise (model_index.json `sampling`). */
  sampling?: SamplingDefaults;
}

async function* files(dir: string): AsyncGenerator<string> {
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else yield p;
  }
}

/** Rewrites a safetensors file's F32 tensors as F16 (others unchanged). */
export async function toFloat16File(file: string): Promise<void> {
  const { tensors, metadata } = await loadSafetensors(file);
  const out: Record<string, NamedArray> = {};
  for (const [k, t] of Object.entries(tensors)) {
    out[k] = t.dtype === 'F32' ? { dtype: 'F16', shape: t.shape, data: float32ToFloat16(t.data as Float32Array) } : t;
  }
  await saveSafetensors(file, out, metadata);
}

/** Writes the shipped bundle; returns its size in bytes. */
export async function exportBundle(o: ExportOptions): Promise<{ bytes: number; parts: Record<string, string> }> {
  const index = await readModelIndex(o.from);
  if (path.resolve(o.out) === path.resolve(o.from)) throw new UserError('--out must differ from the bundle exported');
  const existing = await fsp.readdir(o.out).catch(() => [] as string[]);
  if (existing.length > 0 && !existing.includes(INDEX_FILE)) throw new UserError(`${o.out} exists and is not a bundle; export will only replace a bundle`);
  await fsp.rm(o.out, { recursive: true, force: true });
  await fsp.mkdir(o.out, { recursive: true });
  const parts: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const part of Object.keys(index.parts)) sources[part] = partDir(o.from, part, index);
  Object.assign(sources, o.extraParts ?? {});
  for (const [part, src] of Object.entries(sources)) {
    await fsp.cp(src, path.join(o.out, part), { recursive: true });
    parts[part] = part;
  }
  let bytes = 0;
  for await (const f of files(o.out)) {
    if (o.float16 && path.basename(f) === MODEL_FILE) await toFloat16File(f);
    bytes += (await fsp.stat(f)).size;
  }
  const { library: _l, version: _v, parts: _p, ...rest } = index;
  await writeModelIndex(o.out, {
    ...rest,
    parts,
    ...(o.credits && o.credits.length > 0 ? { credits: o.credits } : {}),
    ...(o.float16 ? { dtype: 'float16' } : {}),
    ...(o.sampling ? { sampling: o.sampling } : {}),
  });
  bytes += (await fsp.stat(path.join(o.out, INDEX_FILE))).size;
  return { bytes, parts };
}
