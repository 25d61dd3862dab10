/**
 * Text encoders: a prompt becomes one embedding per text token, which the masked transformer and the
 * refiner attend to through cross-attention.
 *
 * Two kinds, both behind `TextEncoder`:
 *   - `builtin` (builtin.ts): a word-level tokenizer built from the training captions and a small
 *     pre-LN transformer encoder, trained together with the masked transformer;
 *   - `pretrained` (pretrained.ts): a frozen T5 encoder / CLIP text model (any encoder whose ONNX
 *     export has `last_hidden_state`) run through @xenova/transformers, its per-token hidden states
 *     cached per caption (`prepare` before `encode`).
 *
 * A saved encoder is a folder whose `config.json` has `"kind": "builtin" | "pretrained"`;
 * `loadTextEncoder` dispatches on it. `createTextEncoder` makes a new one from a preset's
 * `TextEncoderSpec`.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { parseConfig, readJsonFile } from '../io/config.js';
import type { ParamStore } from '../nn/params.js';
import { BuiltinTextEncoder } from './builtin.js';
import { TEXT_CONFIG_FILE, type TextEncoder } from './common.js';
import { PretrainedTextEncoder } from './pretrained.js';

export { PAD_BIAS, TEXT_CONFIG_FILE } from './common.js';
export type { TextEncoder, TextEncoding } from './common.js';

const posInt = z.number().int().positive();

/** How a preset asks for a new text encoder (the `textEncoder` section of a transformer config). */
export const TextEncoderSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('builtin'),
    dim: posInt,
    depth: z.number().int().nonnegative(),
    heads: posInt,
    maxLength: posInt,
    mlpRatio: posInt.default(4),
    /** tokenizer: a word enters the vocabulary when seen this often in the captions */
    minCount: posInt.default(1),
    /** tokenizer: the largest vocabulary, the 3 special tokens included */
    maxVocab: z.number().int().min(3).default(10000),
  }),
  z.strictObject({
    kind: z.literal('pretrained'),
    /** hub id (e.g. Xenova/t5-small) or local folder */
    model: z.string().min(1),
    maxLength: posInt,
    localOnly: z.boolean().default(false),
    quantized: z.boolean().optional(),
    modelFile: z.string().min(1).optional(),
  }),
]);
export type TextEncoderSpec = z.input<typeof TextEncoderSpecSchema>;

export interface CreateTextEncoderOptions {
  /** builtin: the training captions the tokenizer is built from (required for builtin) */
  captions?: Iterable<string>;
  /** builtin: create the variables in this store (e.g. `root.scope('text')`); default a store of its own */
  store?: ParamStore;
  /** builtin: seed of a store of its own (default 0) */
  seed?: number;
}

/** A new encoder from a spec (validated; `where` names it in errors, e.g. `config configs/tiny.json: transformer.textEncoder`). */
export async function createTextEncoder(spec: TextEncoderSpec, opts: CreateTextEncoderOptions = {}, where = 'text encoder'): Promise<TextEncoder> {
  const s = parseConfig(TextEncoderSpecSchema, spec, where);
  if (s.kind === 'builtin') {
    if (opts.captions === undefined) throw new Error('createTextEncoder: a builtin encoder needs the training captions');
    return BuiltinTextEncoder.fromCaptions(opts.captions, s, { store: opts.store, seed: opts.seed });
  }
  return PretrainedTextEncoder.create(s);
}

const KindSchema = z.looseObject({ kind: z.enum(['builtin', 'pretrained']) });

export interface LoadTextEncoderOptions {
  /**
   * builtin only: create the encoder's variables in this store (e.g. `root.scope('text')`) so that
   * the caller's `valueAndGrads` and optimizer cover them; default: a store of its own.
   */
  store?: ParamStore;
}

/** Reads `<dir>/config.json` and loads the encoder of its `kind`; problems are UserErrors naming the file. */
export async function loadTextEncoder(dir: string, opts: LoadTextEncoderOptions = {}): Promise<TextEncoder> {
  const file = path.join(dir, TEXT_CONFIG_FILE);
  const config = await readJsonFile(file);
  const { kind } = parseConfig(KindSchema, config, `text encoder config ${file}`);
  if (kind === 'builtin') return BuiltinTextEncoder.load(dir, opts);
  if (kind === 'pretrained') return PretrainedTextEncoder.load(dir);
  throw new UserError(`text encoder config ${file}: unknown kind ${JSON.stringify(kind)}`);
}
