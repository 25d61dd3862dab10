/**
 * Frozen pretrained text encoders through @xenova/transformers (transformers.js 2.17): a T5 encoder,
 * a CLIP text model, or any encoder whose ONNX export has a `last_hidden_state` output. Its per-token
 * hidden states (not the pooled vector) are the conditioning.
 *
 * `model` is a Hugging Face hub id (e.g. `Xenova/t5-small`, `Xenova/clip-vit-base-patch32`) or a local
 * folder in the transformers.js layout:
 *
 *   <folder>/config.json              its `model_type` picks the ONNX file (below)
 *   <folder>/tokenizer.json           a Hugging Face `tokenizers` file
 *   <folder>/tokenizer_config.json    tokenizer_class, special tokens, model_max_length
 *   <folder>/onnx/<file>.onnx         and/or onnx/<file>_quantized.onnx
 *
 * where <file> is `encoder_model` for T5-family models (t5, mt5, longt5, umt5), `text_model` for
 * CLIP / SigLIP, and `model` otherwise (`modelFile` overrides it). transformers.js resolves a model
 * as `<env.localModelPath>/<id>/<file>`, so a local folder is loaded as id = its base name with
 * `env.localModelPath` = its parent, `env.allowRemoteModels = false` and the file cache off. A hub id
 * is fetched from the hub (and cached in `env.cacheDir`) unless `localOnly`, which turns remote
 * models off so that only the cache (or `env.localModelPath`) is used.
 *
 * transformers.js is asynchronous and `encode` is synchronous, so embeddings come from a cache:
 * `prepare(prompts)` runs the model once per caption not seen before and keeps its hidden states
 * (padded or cut to maxLength); `encode` reads them. Saved as config.json only (a reference).
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseConfig, readJsonFile } from '../io/config.js';
import { PAD_BIAS, TEXT_CONFIG_FILE } from './common.js';
import type { TextEncoder, TextEncoding } from './common.js';

const posInt = z.number().int().positive();

export const PretrainedTextConfigSchema = z.strictObject({
  kind: z.literal('pretrained'),
  /** hub id, or a local folder (relative paths in a saved config.json are relative to its folder) */
  model: z.string().min(1),
  /** tokens per prompt (special tokens included); longer prompts are cut, shorter ones padded */
  maxLength: posInt,
  /** width of the hidden states (checked against the model when it loads) */
  dim: posInt,
  /** never fetch from the hub: use a local folder or transformers.js's file cache only */
  localOnly: z.boolean().default(false),
  /** use onnx/<file>_quantized.onnx (default: for a folder, the full-precision file when present; for a hub id, true) */
  quantized: z.boolean().optional(),
  /** the ONNX file's base name under onnx/ (default: from config.json's model_type) */
  modelFile: z.string().min(1).optional(),
});
export type PretrainedTextConfig = z.infer<typeof PretrainedTextConfigSchema>;

export interface PretrainedTextOptions {
  model: string;
  maxLength: number;
  localOnly?: boolean;
  quantized?: boolean;
  modelFile?: string;
  /** prompts per model run in `prepare` (default 16) */
  batchSize?: number;
}

/** The ONNX file (under onnx/) holding the text encoder, by config.json's model_type. */
export function defaultModelFile(modelType: string | undefined): string {
  switch (modelType) {
    case 't5':
    case 'mt5':
    case 'longt5':
    case 'umt5':
      return 'encoder_model';
    case 'clip':
    case 'siglip':
      return 'text_model';
    default:
      return 'model';
  }
}

// ---------------------------------------------------------------------------------------------
// the bits of transformers.js we use (typed loosely: its generated .d.ts types are not callable)

interface HfTensor {
  type: string;
  data: ArrayLike<number | bigint>;
  dims: number[];
}
type HfTokenizer = ((texts: string[], opts: Record<string, unknown>) => Record<string, HfTensor>) & {
  model_max_length?: number;
};
interface HfModel {
  forward(inputs: Record<string, HfTensor>): Promise<Record<string, HfTensor>>;
  dispose(): Promise<unknown>;
  session?: { inputNames: string[]; outputNames: string[] };
}
type Transformers = typeof import('@xenova/transformers');

let transformers: Promise<Transformers> | null = null;
function loadTransformers(): Promise<Transformers> {
  transformers ??= import('@xenova/transformers');
  return transformers;
}

/** transformers.js keeps its settings in one global `env`; loads change it, one at a time. */
let envLock: Promise<unknown> = Promise.resolve();

async function withEnv<T>(
  settings: { allowRemoteModels: boolean; localModelPath?: string; useFSCache: boolean },
  fn: (t: Transformers) => Promise<T>,
): Promise<T> {
  const run = envLock.then(async () => {
    const t = await loadTransformers();
    const env = t.env;
    const saved = {
      allowRemoteModels: env.allowRemoteModels,
      allowLocalModels: env.allowLocalModels,
      localModelPath: env.localModelPath,
      useFSCache: env.useFSCache,
    };
    env.allowLocalModels = true;
    env.allowRemoteModels = settings.allowRemoteModels;
    if (settings.localModelPath !== undefined) env.localModelPath = settings.localModelPath;
    env.useFSCache = settings.useFSCache;
    try {
      return await fn(t);
    } finally {
      Object.assign(env, saved);
    }
  });
  envLock = run.catch(() => undefined);
  return run;
}

// ---------------------------------------------------------------------------------------------
// where the model is

interface ModelRef {
  /** what the user gave (for messages) */
  given: string;
  /** the absolute folder, for a local model */
  folder?: string;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A local folder when `model` is a path (absolute, ./, ../) or names an existing folder; else a hub id. */
function resolveModel(model: string, base: string): ModelRef {
  const pathLike = path.isAbsolute(model) || /^\.\.?([\\/]|$)/.test(model);
  const abs = path.resolve(base, model);
  if (pathLike || isDir(abs)) {
    if (!isDir(abs)) throw new UserError(`text encoder model folder ${abs}: no such folder`);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(path.join(abs, f))) throw new UserError(`text encoder model folder ${abs}: no ${f} (a transformers.js model folder has config.json, tokenizer.json, tokenizer_config.json and onnx/*.onnx)`);
    }
    return { given: model, folder: abs };
  }
  return { given: model };
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const msg = String(e?.message ?? err).split('\n')[0]!;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${msg} (${cause})` : msg;
}

// ---------------------------------------------------------------------------------------------

interface CachedEmbedding {
  /** [maxLength, dim], zeros after the real tokens */
  data: Float32Array;
  /** real tokens (≥ 1) */
  length: number;
}

export class PretrainedTextEncoder implements TextEncoder {
  readonly kind = 'pretrained' as const;
  readonly trainable = false;
  readonly maxLength: number;
  readonly config: PretrainedTextConfig;
  private runs = 0;

  private readonly cache = new Map<string, CachedEmbedding>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly batchSize: number;

  private constructor(
    config: PretrainedTextConfig,
    private readonly tokenizer: HfTokenizer,
    private readonly model: HfModel,
    private readonly modelRef: ModelRef,
    private dimValue: number,
    batchSize: number,
  ) {
    this.config = config;
    this.maxLength = config.maxLength;
    this.batchSize = batchSize;
  }

  get dim(): number {
    return this.dimValue;
  }

  /** Number of times the model has run (one per batch of new prompts in `prepare`). */
  get modelRuns(): number {
    return this.runs;
  }

  /** Number of distinct prompts whose embeddings are cached. */
  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * Loads `opts.model` (hub id or local folder, relative paths against the working folder), finds
   * its width by encoding the empty prompt (which stays cached: it is the null condition).
   */
  static async create(opts: PretrainedTextOptions): Promise<PretrainedTextEncoder> {
    const where = 'pretrained text encoder options';
    const config = parseConfig(
      PretrainedTextConfigSchema,
      { kind: 'pretrained', model: opts.model, maxLength: opts.maxLength, dim: 1, localOnly: opts.localOnly, quantized: opts.quantized, modelFile: opts.modelFile },
      where,
    );
    return PretrainedTextEncoder.open(config, process.cwd(), where, undefined, opts.batchSize);
  }

  /** Loads the encoder a `save` referenced in `<dir>/config.json`. */
  static async load(dir: string, opts: { batchSize?: number } = {}): Promise<PretrainedTextEncoder> {
    const file = path.join(dir, TEXT_CONFIG_FILE);
    const where = `text encoder config ${file}`;
    const config = parseConfig(PretrainedTextConfigSchema, await readJsonFile(file), where);
    return PretrainedTextEncoder.open(config, path.resolve(dir), where, config.dim, opts.batchSize);
  }

  private static async open(
    partial: PretrainedTextConfig,
    base: string,
    where: string,
    expectDim: number | undefined,
    batchSize = 16,
  ): Promise<PretrainedTextEncoder> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
    const ref = resolveModel(partial.model, base);
    const local = ref.folder !== undefined;
    const id = local ? path.basename(ref.folder!) : ref.given;
    const settings = local
      ? { allowRemoteModels: false, localModelPath: path.dirname(ref.folder!) + path.sep, useFSCache: false }
      : { allowRemoteModels: !partial.localOnly, useFSCache: true };
    const label = local ? `text encoder model folder ${ref.folder}` : `text encoder model '${ref.given}'`;

    const loaded = await withEnv(settings, async (t) => {
      const opts = { local_files_only: !settings.allowRemoteModels };
      try {
        const hfConfig = (await t.AutoConfig.from_pretrained(id, opts)) as { model_type?: string };
        const modelFile = partial.modelFile ?? defaultModelFile(hfConfig.model_type);
        let quantized = partial.quantized;
        if (local) {
          const has = (q: boolean) => existsSync(path.join(ref.folder!, 'onnx', `${modelFile}${q ? '_quantized' : ''}.onnx`));
          if (quantized === undefined) quantized = has(false) ? false : has(true) ? true : undefined;
          if (quantized === undefined || !has(quantized)) {
            const want = quantized === undefined ? `onnx/${modelFile}.onnx or onnx/${modelFile}_quantized.onnx` : `onnx/${modelFile}${quantized ? '_quantized' : ''}.onnx`;
            throw new UserError(`${label}: no ${want} (model_type ${JSON.stringify(hfConfig.model_type ?? null)})`);
          }
        }
        quantized ??= true;
        const tokenizer = (await t.AutoTokenizer.from_pretrained(id, opts)) as unknown as HfTokenizer;
        // Any registered encoder-only class runs an ONNX encoder generically (feeds the session's
        // inputs by name, token_type_ids zero when asked for); BertModel adds nothing of its own.
        const model = (await t.BertModel.from_pretrained(id, {
          ...opts,
          quantized,
          model_file_name: modelFile,
          config: hfConfig as never,
        })) as unknown as HfModel;
        return { tokenizer, model, modelFile, quantized };
      } catch (err) {
        if (err instanceof UserError) throw err;
        let hint = '';
        if (!local && settings.allowRemoteModels) hint = ' (without internet, give a local folder, or set localOnly to use only the transformers.js cache)';
        else if (!local) hint = ` (localOnly: looked in ${t.env.localModelPath} and the transformers.js cache ${t.env.cacheDir})`;
        throw new UserError(`${label}: cannot load: ${describe(err)}${hint}`);
      }
    });

    const names = loaded.model.session?.outputNames;
    if (names && !names.includes('last_hidden_state')) {
      throw new UserError(`${label}: onnx/${loaded.modelFile}: no 'last_hidden_state' output (it has ${names.join(', ')}); a per-token encoder is needed`);
    }
    // transformers.js pads and cuts to min(max_length, model_max_length): a tokenizer_config.json
    // without model_max_length would make that NaN.
    if (!Number.isFinite(loaded.tokenizer.model_max_length)) loaded.tokenizer.model_max_length = partial.maxLength;

    const config: PretrainedTextConfig = {
      kind: 'pretrained',
      model: local ? ref.folder! : ref.given,
      maxLength: partial.maxLength,
      dim: expectDim ?? 1,
      localOnly: partial.localOnly,
      quantized: loaded.quantized,
      ...(partial.modelFile !== undefined ? { modelFile: partial.modelFile } : {}),
    };
    const enc = new PretrainedTextEncoder(config, loaded.tokenizer, loaded.model, ref, 0, batchSize);
    const dim = await enc.run(['']);
    if (expectDim !== undefined && dim !== expectDim) {
      enc.dispose();
      throw new UserError(`${where}: dim is ${expectDim} but ${label} gives hidden states of width ${dim}`);
    }
    enc.dimValue = dim;
    (enc.config as { dim: number }).dim = dim;
    return enc;
  }

  /**
   * Computes and caches the embeddings of every prompt not cached yet (in batches of `batchSize`).
   * Calls are queued, so concurrent calls never encode a prompt twice.
   */
  prepare(prompts: string[]): Promise<void> {
    const work = this.queue.then(async () => {
      if (this.disposed) throw new Error('pretrained text encoder: used after dispose()');
      const todo = [...new Set(prompts)].filter((p) => !this.cache.has(p));
      for (let i = 0; i < todo.length; i += this.batchSize) await this.run(todo.slice(i, i + this.batchSize));
    });
    this.queue = work.catch(() => undefined);
    return work;
  }

  /** Runs the model on `prompts`, caches their embeddings and returns the hidden width. */
  private async run(prompts: string[]): Promise<number> {
    const L = this.maxLength;
    const inputs = this.tokenizer(prompts, { padding: true, truncation: true, max_length: L });
    let out: Record<string, HfTensor>;
    try {
      out = await this.model.forward(inputs);
    } catch (err) {
      throw new Error(`pretrained text encoder ${this.modelRef.given}: the model failed: ${describe(err)}`);
    }
    this.runs++;
    const hidden = out.last_hidden_state;
    if (!hidden) throw new UserError(`pretrained text encoder ${this.modelRef.given}: no 'last_hidden_state' output (it has ${Object.keys(out).join(', ')})`);
    const [b, s, d] = hidden.dims as [number, number, number];
    if (hidden.dims.length !== 3 || b !== prompts.length) {
      throw new Error(`pretrained text encoder ${this.modelRef.given}: last_hidden_state has shape [${hidden.dims.join(',')}], expected [${prompts.length}, seq, dim]`);
    }
    if (this.dimValue !== 0 && d !== this.dimValue) throw new Error(`pretrained text encoder: hidden width changed from ${this.dimValue} to ${d}`);
    const values = hidden.data instanceof Float32Array ? hidden.data : Float32Array.from(hidden.data as ArrayLike<number>);
    const mask = inputs.attention_mask;
    for (let i = 0; i < b; i++) {
      const data = new Float32Array(L * d);
      let length = 0;
      for (let j = 0; j < s && length < L; j++) {
        if (mask && Number(mask.data[i * s + j]) === 0) continue;
        data.set(values.subarray((i * s + j) * d, (i * s + j + 1) * d), length * d);
        length++;
      }
      // A tokenizer that gives no token for "" still yields one (zero) real position to attend to.
      this.cache.set(prompts[i]!, { data, length: Math.max(1, length) });
    }
    return d;
  }

  /** The cached embeddings of `prompts`; a prompt not `prepare`d is an Error. */
  encode(prompts: string[]): TextEncoding {
    if (this.disposed) throw new Error('pretrained text encoder: used after dispose()');
    if (prompts.length === 0) throw new Error('pretrained text encoder: encode() needs at least one prompt');
    const B = prompts.length;
    const L = this.maxLength;
    const D = this.dim;
    const emb = new Float32Array(B * L * D);
    const bias = new Float32Array(B * L);
    prompts.forEach((p, b) => {
      const hit = this.cache.get(p);
      if (!hit) throw new Error(`pretrained text encoder: prompt ${JSON.stringify(p)} is not prepared; call (and await) prepare(prompts) before encode()`);
      emb.set(hit.data, b * L * D);
      bias.fill(PAD_BIAS, b * L + hit.length, (b + 1) * L);
    });
    return { embeddings: tf.tensor2d(emb, [B * L, D]), keyBias: tf.tensor2d(bias, [B, L]), batch: B, length: L };
  }

  variables(): Record<string, tf.Variable> {
    return {};
  }

  /**
   * Writes `<dir>/config.json`: the reference to the model, not its weights. A local model folder is
   * written relative to `dir` when it lies inside it (so the bundle can move), else as an absolute path.
   */
  async save(dir: string): Promise<void> {
    const config = { ...this.config };
    if (this.modelRef.folder !== undefined) {
      const rel = path.relative(path.resolve(dir), this.modelRef.folder);
      if (rel === '') throw new UserError(`cannot save the text encoder reference into its own model folder ${dir} (it would replace the model's config.json)`);
      if (!rel.startsWith('..') && !path.isAbsolute(rel)) config.model = `./${rel.split(path.sep).join('/')}`;
    }
    await writeFileAtomic(path.join(dir, TEXT_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cache.clear();
    void this.model.dispose().catch(() => undefined);
  }
}
