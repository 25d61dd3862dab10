/** The built-in encoder's word-level tokenizer: vocabulary rules, ids, truncation, tokenizer.json. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { BOS_ID, PAD_ID, UNK_ID, WordTokenizer, splitWords } from '../src/text/tokenizer.js';

const CAPTIONS = ['a red circle', 'A blue circle!', 'a red square'];
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-text-tokenizer-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('word tokenizer', () => {
  it('splits lower-cased text on non-letters/digits', () => {
    expect(splitWords('  A photo of a T-shirt!')).toEqual(['a', 'photo', 'of', 'a', 't', 'shirt']);
    expect(splitWords('Café-au-lait, 42x…')).toEqual(['café', 'au', 'lait', '42x']);
    expect(splitWords('')).toEqual([]);
  });

  it('builds the vocabulary from captions: specials, then most frequent first (ties by name)', () => {
    const tok = WordTokenizer.fromCaptions(CAPTIONS);
    expect(tok.vocab).toEqual(['[PAD]', '[UNK]', '[BOS]', 'a', 'circle', 'red', 'blue', 'square']);
    expect([PAD_ID, UNK_ID, BOS_ID]).toEqual([0, 1, 2]);
    expect(WordTokenizer.fromCaptions(CAPTIONS, { minCount: 2 }).vocab).toEqual(['[PAD]', '[UNK]', '[BOS]', 'a', 'circle', 'red']);
    expect(WordTokenizer.fromCaptions(CAPTIONS, { maxVocab: 5 }).vocab).toEqual(['[PAD]', '[UNK]', '[BOS]', 'a', 'circle']);
    expect(WordTokenizer.fromCaptions([]).vocabSize).toBe(3);
    expect(() => WordTokenizer.fromCaptions(CAPTIONS, { maxVocab: 2 })).toThrow(UserError);
  });

  it('encodes with [BOS] first, unknown words as [UNK], cut to maxLength; decodes back', () => {
    const tok = WordTokenizer.fromCaptions(CAPTIONS);
    expect(tok.encode('A red circle')).toEqual([2, 3, 5, 4]);
    expect(tok.encode('a purple circle')).toEqual([2, 3, UNK_ID, 4]);
    expect(tok.encode('')).toEqual([BOS_ID]);
    expect(tok.encode('a red circle square', 3)).toEqual([2, 3, 5]);
    expect(tok.encode('a red circle', 1)).toEqual([BOS_ID]);
    expect(tok.decode([2, 3, 5, 4, 0, 0])).toBe('a red circle');
    expect(tok.decode(tok.encode('a purple square'))).toBe('a [UNK] square');
    expect(() => tok.decode([99])).toThrow(/outside the vocabulary/);

    const batch = tok.encodeBatch(['a red circle', '', 'blue blue blue blue blue'], 4);
    expect(batch).toMatchObject({ batch: 3, length: 4, lengths: [4, 1, 4] });
    expect([...batch.ids]).toEqual([2, 3, 5, 4, 2, 0, 0, 0, 2, 6, 6, 6]);
  });

  it('saves tokenizer.json and loads it back identically', async () => {
    const tok = WordTokenizer.fromCaptions([...CAPTIONS, 'Ünïcode wörds 3d'], { minCount: 1 });
    const file = path.join(tmp, 'tokenizer.json');
    await tok.save(file);
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(json).toMatchObject({ type: 'maskgen-word', version: 1, vocab: [...tok.vocab] });
    const back = await WordTokenizer.load(file);
    expect(back.vocab).toEqual(tok.vocab);
    for (const t of ['a red circle', 'ünïcode wörds 3D', 'nothing known']) expect(back.encode(t)).toEqual(tok.encode(t));
  });

  it('rejects a bad tokenizer.json with a UserError naming the file', async () => {
    const file = path.join(tmp, 'bad-tokenizer.json');
    const cases: [string, RegExp][] = [
      ['{"type": "maskgen-word", "vocab": ', /invalid JSON/],
      [JSON.stringify({ type: 'WordPiece', version: 1, vocab: ['[PAD]', '[UNK]', '[BOS]'] }), /type/],
      [JSON.stringify({ type: 'maskgen-word', version: 1, vocab: ['[UNK]', '[PAD]', '[BOS]'] }), /vocab\[0\]/],
      [JSON.stringify({ type: 'maskgen-word', version: 1, vocab: ['[PAD]', '[UNK]', '[BOS]', 'red', 'red'] }), /vocab\[4\].*repeats/],
      [JSON.stringify({ type: 'maskgen-word', version: 1, vocab: ['[PAD]', '[UNK]', '[BOS]', 'Red'] }), /vocab\[3\]/],
      [JSON.stringify({ type: 'maskgen-word', version: 1, vocab: ['[PAD]', '[UNK]', '[BOS]'], extra: 1 }), /extra/],
    ];
    for (const [text, why] of cases) {
      await writeFile(file, text);
      const err = await WordTokenizer.load(file).catch((e: unknown) => e);
      expect(err, text).toBeInstanceOf(UserError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(why);
    }
    const missing = await WordTokenizer.load(path.join(tmp, 'nope.json')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UserError);
    expect((missing as Error).message).toContain('nope.json');
  });
});
