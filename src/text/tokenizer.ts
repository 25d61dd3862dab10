/**
 * The built-in encoder's word-level tokenizer, built from the training captions.
 *
 * Text is NFKC-normalised, lower-cased and split on every run of characters that are not letters or
 * digits (Unicode classes L and N): "A photo of a T-shirt!" → a, photo, of, a, t, shirt.
 *
 * Ids: 0 = [PAD], 1 = [UNK], 2 = [BOS], then the words seen at least `minCount` times in the
 * captions, most frequent first (ties in code-point order, so the same captions always give the same
 * ids), until the vocabulary holds `maxVocab` entries (the three special tokens included). Every
 * encoded prompt starts with [BOS], so the empty prompt (the null condition of classifier-free
 * guidance) is [BOS] alone and still has one real token.
 *
 * The file `tokenizer.json` (written atomically):
 *
 *   {
 *     "type": "maskgen-word",          // this format
 *     "version": 1,
 *     "normalize": "nfkc-lowercase",   // how text is prepared before splitting (the only value)
 *     "split": "non-letter-digit",     // how it is split into words (the only value)
 *     "vocab": ["[PAD]", "[UNK]", "[BOS]", "a", "photo", ...]   // id → token; the first three fixed
 *   }
 */
import { z } from 'zod';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseConfig, readJsonFile } from '../io/config.js';

export const PAD_ID = 0;
export const UNK_ID = 1;
export const BOS_ID = 2;
export const PAD_TOKEN = '[PAD]';
export const UNK_TOKEN = '[UNK]';
export const BOS_TOKEN = '[BOS]';
export const SPECIAL_TOKENS: readonly string[] = [PAD_TOKEN, UNK_TOKEN, BOS_TOKEN];

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_TYPE = 'maskgen-word';

const SPLIT = /[^\p{L}\p{N}]+/u;
const WORD = /^[\p{L}\p{N}]+$/u;

/** The words of `text` as the tokenizer sees them (before looking them up). */
export function splitWords(text: string): string[] {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .split(SPLIT)
    .filter((w) => w.length > 0);
}

export interface WordTokenizerOptions {
  /** A word enters the vocabulary when seen at least this often (default 1). */
  minCount?: number;
  /** The largest vocabulary, the three special tokens included (default 10000). */
  maxVocab?: number;
}

export const WordTokenizerFileSchema = z.strictObject({
  type: z.literal(TOKENIZER_TYPE),
  version: z.literal(1),
  normalize: z.literal('nfkc-lowercase').default('nfkc-lowercase'),
  split: z.literal('non-letter-digit').default('non-letter-digit'),
  vocab: z.array(z.string()).min(SPECIAL_TOKENS.length),
});
export type WordTokenizerFile = z.infer<typeof WordTokenizerFileSchema>;

/** Prompts as a padded id matrix: `ids` [batch·maxLength] row-major, `lengths[b]` real tokens of prompt b. */
export interface EncodedBatch {
  ids: Int32Array;
  lengths: number[];
  batch: number;
  length: number;
}

export class WordTokenizer {
  /** id → token */
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;

  /** `vocab` must start with [PAD], [UNK], [BOS] and hold distinct words; see `fromJSON` for checked input. */
  constructor(vocab: readonly string[]) {
    for (let i = 0; i < SPECIAL_TOKENS.length; i++) {
      if (vocab[i] !== SPECIAL_TOKENS[i]) throw new Error(`vocabulary entry ${i} must be ${SPECIAL_TOKENS[i]}, got ${JSON.stringify(vocab[i])}`);
    }
    this.vocab = Object.freeze([...vocab]);
    this.ids = new Map(this.vocab.map((w, i) => [w, i]));
    if (this.ids.size !== this.vocab.length) throw new Error('vocabulary has repeated entries');
  }

  /** Builds the vocabulary from captions (see the file comment for the rules). */
  static fromCaptions(captions: Iterable<string>, opts: WordTokenizerOptions = {}): WordTokenizer {
    const minCount = opts.minCount ?? 1;
    const maxVocab = opts.maxVocab ?? 10000;
    if (!Number.isInteger(minCount) || minCount < 1) throw new UserError(`tokenizer: minCount must be a positive integer, got ${minCount}`);
    if (!Number.isInteger(maxVocab) || maxVocab < SPECIAL_TOKENS.length) {
      throw new UserError(`tokenizer: maxVocab must be an integer of at least ${SPECIAL_TOKENS.length}, got ${maxVocab}`);
    }
    const counts = new Map<string, number>();
    for (const caption of captions) for (const w of splitWords(caption)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const words = [...counts]
      .filter(([, n]) => n >= minCount)
      .sort(([a, n], [b, m]) => m - n || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, maxVocab - SPECIAL_TOKENS.length)
      .map(([w]) => w);
    return new WordTokenizer([...SPECIAL_TOKENS, ...words]);
  }

  /** Checks a parsed tokenizer.json; problems are UserErrors starting with `where` (e.g. `tokenizer <file>`). */
  static fromJSON(value: unknown, where: string): WordTokenizer {
    const file = parseConfig(WordTokenizerFileSchema, value, where);
    const seen = new Map<string, number>();
    file.vocab.forEach((w, i) => {
      if (i < SPECIAL_TOKENS.length) {
        if (w !== SPECIAL_TOKENS[i]) throw new UserError(`${where}: vocab[${i}]: expected "${SPECIAL_TOKENS[i]}", got ${JSON.stringify(w)}`);
      } else if (!WORD.test(w) || splitWords(w).length !== 1 || splitWords(w)[0] !== w) {
        throw new UserError(`${where}: vocab[${i}]: ${JSON.stringify(w)} is not a lower-case word of letters and digits`);
      }
      const before = seen.get(w);
      if (before !== undefined) throw new UserError(`${where}: vocab[${i}]: ${JSON.stringify(w)} repeats vocab[${before}]`);
      seen.set(w, i);
    });
    return new WordTokenizer(file.vocab);
  }

  /** Reads a tokenizer.json; a missing, malformed or invalid file is a UserError naming it. */
  static async load(file: string): Promise<WordTokenizer> {
    return WordTokenizer.fromJSON(await readJsonFile(file), `tokenizer ${file}`);
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  toJSON(): WordTokenizerFile {
    return { type: TOKENIZER_TYPE, version: 1, normalize: 'nfkc-lowercase', split: 'non-letter-digit', vocab: [...this.vocab] };
  }

  /** Writes tokenizer.json atomically. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, JSON.stringify(this.toJSON(), null, 1) + '\n');
  }

  /** The id of one word (after normalisation), [UNK] when not in the vocabulary. */
  idOf(word: string): number {
    return this.ids.get(word) ?? UNK_ID;
  }

  /** [BOS] followed by the words' ids, cut to `maxLength` tokens when given. */
  encode(text: string, maxLength?: number): number[] {
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) throw new Error(`maxLength must be a positive integer, got ${maxLength}`);
    const out = [BOS_ID];
    for (const w of splitWords(text)) {
      if (maxLength !== undefined && out.length >= maxLength) break;
      out.push(this.idOf(w));
    }
    return out;
  }

  /** The words of `ids` joined by spaces; [PAD] and [BOS] are left out, an unknown id is an Error. */
  decode(ids: Iterable<number>): string {
    const words: string[] = [];
    for (const id of ids) {
      const w = this.vocab[id];
      if (w === undefined) throw new Error(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (id !== PAD_ID && id !== BOS_ID) words.push(w);
    }
    return words.join(' ');
  }

  /** Encodes prompts into a [batch, maxLength] matrix padded with [PAD]. */
  encodeBatch(texts: readonly string[], maxLength: number): EncodedBatch {
    const ids = new Int32Array(texts.length * maxLength); // zeros = [PAD]
    const lengths = texts.map((t, b) => {
      const row = this.encode(t, maxLength);
      ids.set(row, b * maxLength);
      return row.length;
    });
    return { ids, lengths, batch: texts.length, length: maxLength };
  }
}
