/**
 * Paint-with-words (eDiff-I, Balaji et al. 2022, §4.3) for the masked transformer: a user places
 * words of the prompt in boxes of the image, and the cross-attention logits between the image
 * tokens inside a word's box and that word's text tokens get a weight added, so those tokens attend
 * to that word more. The weight falls over the decoding steps as the mask ratio does (eDiff-I lets
 * it fall with the noise level), so it steers the layout, decided early, and leaves the details.
 *
 * Pure functions: where a word sits in the built-in encoder's text tokens, the bias
 * [image tokens × text tokens], its weight at a step, and parsing `word:x,y,w,h`.
 */
import { UserError } from '../errors.js';
import { splitWords } from '../text/tokenizer.js';
import { boxToTokens, parseBox, type ImageGrid, type PixelBox } from './regions.js';
import { checkSteps, maskRatio } from './schedules.js';

/** One word (or phrase) of the prompt placed in a box of the image, in the image's pixels. */
export interface WordRegion {
  word: string;
  box: PixelBox;
}

/** Default paint-with-words strength: the weight added to the logits at step 0. */
export const DEFAULT_REGION_STRENGTH = 4;

/**
 * The text positions of `word` (one or more words) in `prompt` as the built-in encoder tokenizes it:
 * position 0 is [BOS], then one token per word (`splitWords`), cut at `maxLength`. Every occurrence
 * counts; a word not in the prompt is a UserError.
 */
export function wordPositions(prompt: string, word: string, maxLength: number): number[] {
  const words = splitWords(prompt);
  const target = splitWords(word);
  if (target.length === 0) throw new UserError(`paint-with-words: the region word '${word}' has no letters or digits`);
  const out: number[] = [];
  for (let i = 0; i + target.length <= words.length; i++) {
    if (target.every((w, k) => words[i + k] === w)) for (let k = 0; k < target.length; k++) if (1 + i + k < maxLength) out.push(1 + i + k);
  }
  if (out.length === 0) throw new UserError(`paint-with-words: '${word}' is not a word of the prompt '${prompt}'${words.length + 1 > maxLength ? ` (or lies past the encoder's ${maxLength} tokens)` : ''}`);
  return [...new Set(out)].sort((a, b) => a - b);
}

/**
 * The attention bias [N, L] (row-major; N image tokens, L text tokens) of a prompt's regions at
 * weight 1: entry (i, j) is 1 when image token i overlaps the box of a region whose word sits at
 * text position j (`wordPositions`), else 0. Multiply by `regionWeightAt` for a step.
 */
export function regionBias(o: { prompt: string; regions: readonly WordRegion[]; image: ImageGrid; textLength: number }): Float32Array {
  const { image, textLength: L } = o;
  const cols = image.width / image.patch;
  const N = cols * (image.height / image.patch);
  const bias = new Float32Array(N * L);
  for (const r of o.regions) {
    const text = wordPositions(o.prompt, r.word, L);
    for (const i of boxToTokens(r.box, image)) for (const j of text) bias[i * L + j] = 1;
  }
  return bias;
}

/**
 * The weight at decoding step t of T: strength · γ(t/T), γ the cosine mask ratio, i.e. `strength`
 * at step 0 falling with the share of tokens still masked when the step starts (strength · cos(π/2 · (T−1)/T) at the last).
 */
export function regionWeightAt(step: number, steps: number, strength: number): number {
  checkSteps(steps, 'decoding steps');
  if (!Number.isInteger(step) || step < 0 || step >= steps) throw new UserError(`step must be a whole number in [0, ${steps - 1}], got ${step}`);
  if (!Number.isFinite(strength) || strength < 0) throw new UserError(`region strength must be a number ≥ 0, got ${strength}`);
  return strength * maskRatio(step / steps);
}

/** `word:x,y,w,h` (the CLI's --region) → a WordRegion. */
export function parseRegion(text: string): WordRegion {
  const at = text.lastIndexOf(':');
  if (at < 0) throw new UserError(`--region must be word:x,y,w,h (e.g. "cat:0,0,16,32"), got '${text}'`);
  const word = text.slice(0, at).trim();
  if (word === '') throw new UserError(`--region '${text}': the word is empty`);
  let box: PixelBox;
  try {
    box = parseBox(text.slice(at + 1));
  } catch {
    throw new UserError(`--region must be word:x,y,w,h in whole pixels (e.g. "cat:0,0,16,32"), got '${text}'`);
  }
  return { word, box };
}
