/**
 * The built-in text encoder, trained together with the masked transformer: a word-level tokenizer
 * (tokenizer.ts), token embedding + learned positions, `depth` pre-LN transformer blocks, a final
 * LayerNorm. One embedding per text token, [B·L, dim] with L = maxLength.
 *
 * The blocks are the shared pre-LN `Block` (nn/layers.ts) without cross-attention; their
 * self-attention is given the padding mask, so a prompt's embeddings do not depend on the [PAD]
 * tokens after it.
 *
 * Saved as a checkpoint folder:
 *   config.json         {"kind": "builtin", "dim", "depth", "heads", "maxLength", "vocabSize", "mlpRatio"}
 *   model.safetensors   the weights, named relative to the encoder (tok_emb, pos, blocks.0.attn.q.w, ...)
 *   tokenizer.json      the vocabulary (see tokenizer.ts)
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { parseConfig } from '../io/config.js';
import { assignWeights } from '../io/tensors.js';
import { Block, LayerNorm, addPositions } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { PAD_BIAS, TEXT_CONFIG_FILE } from './common.js';
import type { TextEncoder, TextEncoding } from './common.js';
import { TOKENIZER_FILE, WordTokenizer, type WordTokenizerOptions } from './tokenizer.js';

const posInt = z.number().int().positive();

export const BuiltinTextConfigSchema = z.strictObject({
  kind: z.literal('builtin'),
  /** embedding width (the transformer's cross-attention context width) */
  dim: posInt,
  /** number of transformer blocks (0: embeddings + positions + LayerNorm only) */
  depth: z.number().int().nonnegative(),
  heads: posInt,
  /** tokens per prompt, [BOS] included; longer prompts are cut */
  maxLength: posInt,
  /** the tokenizer's vocabulary size, special tokens included */
  vocabSize: z.number().int().min(3),
  mlpRatio: posInt.default(4),
});
export type BuiltinTextConfig = z.infer<typeof BuiltinTextConfigSchema>;

/** What `BuiltinTextEncoder.fromCaptions` takes: the architecture and the tokenizer's options. */
export interface BuiltinTextOptions extends WordTokenizerOptions {
  dim: number;
  depth: number;
  heads: number;
  maxLength: number;
  mlpRatio?: number;
}

export interface BuiltinTextEncoderOptions {
  /** Make the variables in this store (e.g. `root.scope('text')`) instead of a store of its own. */
  store?: ParamStore;
  /** Seed of the store of its own (ignored when `store` is given; default 0). */
  seed?: number;
}

/** A pre-LN encoder block with a padding mask on self-attention (parameters named like nn/layers.ts `Block`). */
export class BuiltinTextEncoder implements TextEncoder {
  readonly kind = 'builtin' as const;
  readonly trainable = true;
  readonly dim: number;
  readonly maxLength: number;
  readonly config: BuiltinTextConfig;
  readonly tokenizer: WordTokenizer;

  private readonly store: ParamStore;
  private readonly tokEmb: tf.Variable;
  private readonly pos: tf.Variable;
  private readonly blocks: Block[];
  private readonly lnOut: LayerNorm;
  /** store name → name relative to this encoder (what model.safetensors holds) */
  private readonly localNames: Map<string, string>;
  private disposed = false;

  /** `config` is validated here (a UserError naming the field when wrong). */
  constructor(config: BuiltinTextConfig, tokenizer: WordTokenizer, opts: BuiltinTextEncoderOptions = {}) {
    this.config = parseConfig(BuiltinTextConfigSchema, config, 'builtin text encoder config');
    const c = this.config;
    if (c.dim % c.heads !== 0) throw new UserError(`builtin text encoder config: dim ${c.dim} is not divisible by heads ${c.heads}`);
    if (tokenizer.vocabSize !== c.vocabSize) {
      throw new UserError(`builtin text encoder config: vocabSize ${c.vocabSize} but the tokenizer has ${tokenizer.vocabSize} tokens`);
    }
    this.tokenizer = tokenizer;
    this.dim = c.dim;
    this.maxLength = c.maxLength;

    this.store = opts.store ?? new ParamStore(opts.seed ?? 0);
    const p = this.store;
    const before = new Set(Object.keys(p.variables()));
    this.tokEmb = p.get('tok_emb', [c.vocabSize, c.dim], { normal: 0.02 });
    this.pos = p.get('pos', [c.maxLength, c.dim], { normal: 0.02 });
    this.blocks = Array.from({ length: c.depth }, (_, i) => new Block(p.scope(`blocks.${i}`), c.dim, c.heads, c.mlpRatio, c.depth));
    this.lnOut = new LayerNorm(p.scope('ln_out'), c.dim);

    // Our variables are the ones this constructor added; the store's prefix is what precedes 'tok_emb'.
    const all = Object.entries(p.variables());
    const embName = all.find(([, v]) => v === this.tokEmb)![0];
    if (before.has(embName)) {
      throw new Error(`builtin text encoder: the store already holds '${embName}'; give the encoder a scope of its own (e.g. store.scope('text'))`);
    }
    const prefix = embName.slice(0, embName.length - 'tok_emb'.length);
    const mine = all.filter(([name]) => !before.has(name));
    this.localNames = new Map(mine.map(([name]) => [name, name.slice(prefix.length)]));
  }

  /** Builds the tokenizer from `captions` and a freshly initialised encoder for it. */
  static fromCaptions(captions: Iterable<string>, opts: BuiltinTextOptions, encOpts: BuiltinTextEncoderOptions = {}): BuiltinTextEncoder {
    const tokenizer = WordTokenizer.fromCaptions(captions, opts);
    const config = parseConfig(
      BuiltinTextConfigSchema,
      {
        kind: 'builtin',
        dim: opts.dim,
        depth: opts.depth,
        heads: opts.heads,
        maxLength: opts.maxLength,
        vocabSize: tokenizer.vocabSize,
        mlpRatio: opts.mlpRatio ?? 4,
      },
      'builtin text encoder options',
    );
    return new BuiltinTextEncoder(config, tokenizer, encOpts);
  }

  /** Loads an encoder saved by `save`; every problem is a UserError naming the file. */
  static async load(dir: string, opts: BuiltinTextEncoderOptions = {}): Promise<BuiltinTextEncoder> {
    const ckpt = await loadCheckpoint(dir, { what: 'text encoder' });
    let enc: BuiltinTextEncoder;
    try {
      const config = parseConfig(BuiltinTextConfigSchema, ckpt.config, `text encoder config ${path.join(dir, TEXT_CONFIG_FILE)}`);
      const tokFile = path.join(dir, TOKENIZER_FILE);
      const tokenizer = await WordTokenizer.load(tokFile);
      if (tokenizer.vocabSize !== config.vocabSize) {
        throw new UserError(`tokenizer ${tokFile}: has ${tokenizer.vocabSize} tokens but ${path.join(dir, TEXT_CONFIG_FILE)} says vocabSize ${config.vocabSize}`);
      }
      enc = new BuiltinTextEncoder(config, tokenizer, opts);
    } catch (err) {
      for (const t of Object.values(ckpt.weights)) t.dispose();
      throw err;
    }
    try {
      assignWeights(enc.localVariables(), ckpt.weights, `text encoder ${dir}`);
    } catch (err) {
      enc.dispose();
      throw err;
    }
    return enc;
  }

  /** The variables keyed by their names in the store (what `store.valueAndGrads` reports). */
  variables(): Record<string, tf.Variable> {
    const all = this.store.variables();
    const out: Record<string, tf.Variable> = {};
    for (const name of this.localNames.keys()) if (all[name]) out[name] = all[name];
    return out;
  }

  /** The variables keyed by their names relative to the encoder (what model.safetensors holds). */
  localVariables(): Record<string, tf.Variable> {
    const all = this.store.variables();
    const out: Record<string, tf.Variable> = {};
    for (const [name, local] of this.localNames) if (all[name]) out[local] = all[name];
    return out;
  }

  /** The ParamStore holding the variables (its own, or the one given). */
  get params(): ParamStore {
    return this.store;
  }

  /** Token ids [B·L] and real-token counts, as `encode` sees them. */
  tokenize(prompts: readonly string[]) {
    return this.tokenizer.encodeBatch(prompts, this.maxLength);
  }

  /** Nothing to prepare: the builtin encoder runs inside `encode`. */
  async prepare(_prompts: string[]): Promise<void> {}

  /** What `encode` feeds its layers: token ids [B·L] and the key bias [B·L] (0, or PAD_BIAS where padding). */
  inputs(prompts: readonly string[]): { ids: Int32Array; keyBias: Float32Array } {
    const L = this.maxLength;
    const { ids, lengths } = this.tokenize(prompts);
    const keyBias = new Float32Array(prompts.length * L);
    for (let b = 0; b < prompts.length; b++) keyBias.fill(PAD_BIAS, b * L + lengths[b]!, (b + 1) * L);
    return { ids, keyBias };
  }

  encode(prompts: string[]): TextEncoding {
    if (this.disposed) throw new Error('builtin text encoder: used after dispose()');
    if (prompts.length === 0) throw new Error('builtin text encoder: encode() needs at least one prompt');
    const B = prompts.length;
    const L = this.maxLength;
    const { ids, keyBias: bias } = this.inputs(prompts);
    return tf.tidy(() => {
      const keyBias = tf.tensor2d(bias, [B, L]);
      let x = tf.gather(this.tokEmb, tf.tensor1d(ids, 'int32')) as tf.Tensor2D; // [B·L, D]
      x = addPositions(x, this.pos, B);
      for (const block of this.blocks) x = block.apply(x, B, undefined, undefined, keyBias);
      const embeddings = this.lnOut.apply(x);
      return { embeddings, keyBias, batch: B, length: L };
    });
  }

  async save(dir: string): Promise<void> {
    await saveCheckpoint(dir, { config: this.config, weights: this.localVariables() });
    await this.tokenizer.save(path.join(dir, TOKENIZER_FILE));
  }

  /** Disposes this encoder's variables (and removes them from the store, if it was shared). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const name of this.localNames.keys()) {
      const v = this.store.vars.get(name);
      if (v) {
        v.dispose();
        this.store.vars.delete(name);
      }
    }
  }
}
