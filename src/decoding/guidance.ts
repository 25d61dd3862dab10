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

/**
 * Guidance within the conditional model's plausible set: the adaptive plausibility constraint of
 * contrastive decoding (Li et al., 2023), applied to classifier-free guidance. Guidance extrapolates
 * away from the unconditional branch, and a token both branches find unlikely, but the unconditional
 * one more so, can come out on top: an isolated speck that fits none of its neighbours. So in each
 * row of `vocab` logits, a token whose conditional probability is below `alpha` times that of the
 * row's most probable conditional token gets −∞; the others get uncond + s · (cond − uncond).
 *
 * `alpha` = 0 is plain `applyGuidance`; `alpha` = 1 keeps only the conditional argmax (and its ties).
 * The conditional argmax always stays, so no row is left without a token. `out` may be `cond`.
 */
export function applyPlausibleGuidance(cond: Float32Array, uncond: Float32Array, s: number, vocab: number, alpha: number, out?: Float32Array): Float32Array {
  if (!(alpha >= 0 && alpha <= 1)) throw new UserError(`plausibility must be in [0, 1], got ${alpha}`);
  if (!Number.isInteger(vocab) || vocab < 1 || cond.length % vocab !== 0) {
    throw new UserError(`guidance: ${cond.length} logits are not rows of ${vocab}`);
  }
  // Decided from `cond` before guidance writes over it (out may be cond).
  const implausible = alpha > 0 ? implausibleTokens(cond, vocab, alpha) : undefined;
  const result = applyGuidance(cond, uncond, s, out);
  if (implausible) for (let i = 0; i < result.length; i++) if (implausible[i]) result[i] = -Infinity;
  return result;
}

/** 1 for each logit whose token is less than `alpha` times as probable as its row's most probable one. */
function implausibleTokens(logits: Float32Array, vocab: number, alpha: number): Uint8Array {
  const out = new Uint8Array(logits.length);
  const cut = Math.log(alpha);
  for (let row = 0; row < logits.length; row += vocab) {
    let max = -Infinity;
    for (let i = row; i < row + vocab; i++) if (logits[i]! > max) max = logits[i]!;
    const floor = max + cut; // p(i) / p(max) = exp(logit_i − max) ≥ alpha
    for (let i = row; i < row + vocab; i++) if (logits[i]! < floor) out[i] = 1;
  }
  return out;
}
