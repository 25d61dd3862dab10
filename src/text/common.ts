/**
 * What the text encoders share: the `TextEncoder` interface they implement and its constants. Kept
 * apart from encoder.ts (the factory, which imports both implementations) so that no module cycle forms.
 */
import type * as tf from '@tensorflow/tfjs';

/** The score added to attention logits for a padded key. */
export const PAD_BIAS = -1e9;

/** Every saved text encoder folder has this file, with `"kind": "builtin" | "pretrained"`. */
export const TEXT_CONFIG_FILE = 'config.json';

export interface TextEncoding {
  /** [B·L, dim], rows grouped by prompt; L = maxLength for every prompt (padded). */
  embeddings: tf.Tensor2D;
  /** [B, L]: 0 where a real token, -1e9 where padding (added to attention scores). */
  keyBias: tf.Tensor2D;
  batch: number;
  length: number;
}

export interface TextEncoder {
  readonly kind: 'builtin' | 'pretrained';
  readonly dim: number;
  readonly maxLength: number;
  readonly trainable: boolean;
  /** Encodes prompts; the empty prompt "" is the null condition used for classifier-free guidance. */
  encode(prompts: string[]): TextEncoding;
  /**
   * Makes `encode(prompts)` possible: a pretrained encoder computes and caches their embeddings
   * (once per distinct prompt); the builtin one has nothing to do. Await it before `encode`.
   */
  prepare?(prompts: string[]): Promise<void>;
  /** The trainable variables ({} when frozen), named as in the ParamStore that holds them. */
  variables(): Record<string, tf.Variable>;
  /** Writes config.json (+ model.safetensors + tokenizer.json for builtin; a reference for pretrained). */
  save(dir: string): Promise<void>;
  dispose(): void;
}
