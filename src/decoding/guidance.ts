/**
 * Classifier-free guidance on logits: uncond + s · (cond − uncond), element by element.
 */
import { UserError } from '../errors.js';

/**
 * Returns uncond + s · (cond − uncond) for every element, written into `out` if given (it may be
 * `cond` or `uncond` itself) or into a new Float32Array.
 *
 * Computed as s · cond + (1 − s) · uncond (the same value) so that the two ends are exact: s = 0
 * gives `uncond` and s = 1 gives `cond` bit for bit. Where cond and uncond are equal (including
 * both −∞, e.g. a logit masked out in both branches) the result is that value.
 */
export function applyGuidance(cond: Float32Array, uncond: Float32Array, s: number, out?: Float32Array): Float32Array {
  if (cond.length !== uncond.length) {
    throw new UserError(`guidance: conditional and unconditional logits differ in size (${cond.length} vs ${uncond.length})`);
  }
  if (!Number.isFinite(s)) throw new UserError(`guidance scale must be a finite number, got ${s}`);
  const result = out ?? new Float32Array(cond.length);
  if (result.length !== cond.length) throw new UserError(`guidance: output has ${result.length} elements, expected ${cond.length}`);
  if (s === 1) {
    if (result !== cond) result.set(cond);
    return result;
  }
  if (s === 0) {
    if (result !== uncond) result.set(uncond);
    return result;
  }
  const r = 1 - s;
  for (let i = 0; i < cond.length; i++) {
    const c = cond[i]!;
    const u = uncond[i]!;
    result[i] = c === u ? c : s * c + r * u;
  }
  return result;
}
