/**
 * Glue between tfjs tensors and the plain arrays that safetensors files hold, and loading weights
 * into a model's variables with a clear error when the checkpoint does not fit the model.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { float16ToFloat32, float32ToFloat16, type NamedArray } from './safetensors.js';

/**
 * Reads tensors into plain arrays: float32 → F32 (or F16 when `float16`), int32 → I32, bool → U8.
 * The tensors are not disposed.
 */
export async function tensorsToArrays(
  tensors: Record<string, tf.Tensor>,
  opts: { float16?: boolean } = {},
): Promise<Record<string, NamedArray>> {
  const out: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const shape = [...t.shape];
    switch (t.dtype) {
      case 'float32': {
        const data = (await t.data()) as Float32Array;
        out[name] = opts.float16 ? { dtype: 'F16', shape, data: float32ToFloat16(data) } : { dtype: 'F32', shape, data };
        break;
      }
      case 'int32':
        out[name] = { dtype: 'I32', shape, data: (await t.data()) as Int32Array };
        break;
      case 'bool':
        out[name] = { dtype: 'U8', shape, data: Uint8Array.from((await t.data()) as Uint8Array) };
        break;
      default:
        throw new Error(`tensorsToArrays: tensor '${name}' has dtype ${t.dtype}, which cannot be saved`);
    }
  }
  return out;
}

/** Makes tensors from plain arrays: F32 and F16 → float32, I32 and U8 → int32. The caller owns them. */
export function arraysToTensors(arrays: Record<string, NamedArray>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, a] of Object.entries(arrays)) {
    switch (a.dtype) {
      case 'F32':
        out[name] = tf.tensor(a.data as Float32Array, a.shape, 'float32');
        break;
      case 'F16':
        out[name] = tf.tensor(float16ToFloat32(a.data as Uint16Array), a.shape, 'float32');
        break;
      case 'I32':
        out[name] = tf.tensor(a.data as Int32Array, a.shape, 'int32');
        break;
      case 'U8':
        out[name] = tf.tensor(Int32Array.from(a.data as Uint8Array), a.shape, 'int32');
        break;
    }
  }
  return out;
}

const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Assigns `loaded[name]` to every `vars[name]`. Every variable must be present with the same shape
 * and there must be no extra names; otherwise nothing is assigned and a UserError names the first
 * problem and how many more there are, prefixed with `where` verbatim, e.g.
 * `checkpoint runs/x/vqgan: weight 'enc.wq' has shape [64,64], the model expects [128,128]`.
 * Takes ownership of `loaded`: its tensors are disposed, whether or not the assignment succeeds.
 */
export function assignWeights(vars: Record<string, tf.Variable>, loaded: Record<string, tf.Tensor>, where: string): void {
  try {
    const problems: string[] = [];
    for (const [name, v] of Object.entries(vars)) {
      const t = loaded[name];
      if (t === undefined) problems.push(`weight '${name}' ${fmt(v.shape)} is missing`);
      else if (!sameShape(t.shape, v.shape)) {
        problems.push(`weight '${name}' has shape ${fmt(t.shape)}, the model expects ${fmt(v.shape)}`);
      }
    }
    for (const [name, t] of Object.entries(loaded)) {
      if (!(name in vars)) problems.push(`unexpected weight '${name}' ${fmt(t.shape)}, which the model does not have`);
    }
    if (problems.length > 0) {
      const more = problems.length - 1;
      throw new UserError(`${where}: ${problems[0]}${more > 0 ? ` (and ${more} more problem${more > 1 ? 's' : ''})` : ''}`);
    }
    for (const [name, v] of Object.entries(vars)) {
      const t = loaded[name]!;
      if (t.dtype === v.dtype) v.assign(t);
      else tf.tidy(() => v.assign(tf.cast(t, v.dtype)));
    }
  } finally {
    const own = new Set<tf.Tensor>(Object.values(vars));
    for (const t of Object.values(loaded)) if (!own.has(t)) t.dispose();
  }
}
