/**
 * The pretrained (transformers.js) text encoder, end to end on a tiny model folder the test writes
 * itself: an ONNX graph built with onnx-proto, a BERT-style config.json, a WordPiece tokenizer.json
 * and tokenizer_config.json. It is loaded through the same code path users use, remote models off.
 *
 * The graph: last_hidden_state[b, j] = (E[input_ids[b, j]] + P[j]) · attention_mask[b, j], so every
 * embedding row tells which token id and which position produced it.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { createTextEncoder, loadTextEncoder } from '../src/text/encoder.js';
import { PretrainedTextEncoder } from '../src/text/pretrained.js';

const { onnx } = onnxProto;

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a', 'red', 'blue', 'green', 'circle', 'square'];
const ID = Object.fromEntries(VOCAB.map((w, i) => [w, i])) as Record<string, number>;
const D = 4;
const MAX_POS = 16;
/** Exactly representable in float32, distinct per (id, k) and per (position, k). */
const E = (id: number, k: number) => id * 8 + k;
const P = (j: number, k: number) => (j + 1) * 0.25 * (k % 2 === 0 ? 1 : -1);

function tinyEncoderOnnx(): Uint8Array {
  const T = onnx.TensorProto.DataType;
  const dims = (...d: (number | string)[]) => ({ dim: d.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) });
  const io = (name: string, elemType: number, shape: ReturnType<typeof dims>) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape } } });
  const floats = (name: string, d: number[], f: (...i: number[]) => number) => {
    const values: number[] = [];
    for (let i = 0; i < d[0]!; i++) for (let k = 0; k < d[1]!; k++) values.push(f(i, k));
    return onnx.TensorProto.create({ name, dims: d, dataType: T.FLOAT, floatData: values });
  };
  const int64s = (name: string, values: number[]) => onnx.TensorProto.create({ name, dims: [values.length], dataType: T.INT64, int64Data: values });
  const node = (opType: string, input: string[], output: string[], attribute: object[] = []) =>
    onnx.NodeProto.create({ name: `${opType}_${output[0]}`, opType, input, output, attribute });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'maskgen-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny_encoder',
      input: [io('input_ids', T.INT64, dims('batch', 'seq')), io('attention_mask', T.INT64, dims('batch', 'seq'))],
      output: [io('last_hidden_state', T.FLOAT, dims('batch', 'seq', D))],
      initializer: [
        floats('E', [VOCAB.length, D], E),
        floats('P', [MAX_POS, D], P),
        int64s('zero', [0]),
        int64s('one', [1]),
        int64s('two', [2]),
      ],
      node: [
        node('Gather', ['E', 'input_ids'], ['tok'], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]),
        node('Shape', ['input_ids'], ['shape']),
        node('Slice', ['shape', 'one', 'two'], ['seq']),
        node('Slice', ['P', 'zero', 'seq', 'zero'], ['pos']),
        node('Add', ['tok', 'pos'], ['sum']),
        node('Cast', ['attention_mask'], ['maskf'], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }]),
        node('Unsqueeze', ['maskf', 'two'], ['mask3']),
        node('Mul', ['sum', 'mask3'], ['last_hidden_state']),
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A BERT-style WordPiece tokenizer.json (Hugging Face tokenizers format) whose pieces are whole words. */
function tokenizerJson(): unknown {
  const special = (id: number) => ({ id, content: VOCAB[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tok = (name: string) => ({ id: name, ids: [ID[name]], tokens: [name] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2, 3].map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': tok('[CLS]'), '[SEP]': tok('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: ID },
  };
}

async function writeModelFolder(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  const json = (v: unknown) => JSON.stringify(v, null, 2);
  await writeFile(path.join(dir, 'onnx', 'model.onnx'), tinyEncoderOnnx());
  await writeFile(path.join(dir, 'config.json'), json({ model_type: 'bert', architectures: ['BertModel'], hidden_size: D, vocab_size: VOCAB.length, max_position_embeddings: MAX_POS }));
  await writeFile(path.join(dir, 'tokenizer.json'), json(tokenizerJson()));
  await writeFile(
    path.join(dir, 'tokenizer_config.json'),
    json({ tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: MAX_POS, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]' }),
  );
}

/** What the embeddings of one prompt must be, for the token ids the tokenizer should give. */
function expected(tokens: string[], maxLength: number): { rows: number[][]; bias: number[] } {
  const rows: number[][] = [];
  const bias: number[] = [];
  for (let j = 0; j < maxLength; j++) {
    const w = tokens[j];
    rows.push(Array.from({ length: D }, (_, k) => (w === undefined ? 0 : E(ID[w]!, k) + P(j, k))));
    bias.push(w === undefined ? -1e9 : 0);
  }
  return { rows, bias };
}

let tmp: string;
let modelDir: string;
let enc: PretrainedTextEncoder;
const MAXLEN = 6;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-text-pretrained-'));
  modelDir = path.join(tmp, 'tiny-bert');
  await writeModelFolder(modelDir);
  enc = await PretrainedTextEncoder.create({ model: modelDir, maxLength: MAXLEN, localOnly: true });
});

afterAll(async () => {
  enc?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('pretrained text encoder (transformers.js, local folder)', () => {
  it('loads the folder and reads its width from the model', async () => {
    expect(enc.kind).toBe('pretrained');
    expect(enc.trainable).toBe(false);
    expect(enc.dim).toBe(D);
    expect(enc.maxLength).toBe(MAXLEN);
    expect(enc.variables()).toEqual({});
    expect(enc.config).toMatchObject({ kind: 'pretrained', model: modelDir, maxLength: MAXLEN, dim: D, localOnly: true, quantized: false });
    const { env } = await import('@xenova/transformers');
    expect(env.allowRemoteModels).toBe(true); // our settings are put back after loading
  });

  it('gives per-token hidden states for the expected token ids, padded, cut and masked', async () => {
    const prompts = ['A red circle', 'a blue zebra square', 'a red blue green circle square', ''];
    await enc.prepare(prompts);
    const out = enc.encode(prompts);
    expect(out.batch).toBe(4);
    expect(out.length).toBe(MAXLEN);
    expect(out.embeddings.shape).toEqual([4 * MAXLEN, D]);
    expect(out.keyBias.shape).toEqual([4, MAXLEN]);
    const rows = (await out.embeddings.array()) as number[][];
    const bias = (await out.keyBias.array()) as number[][];
    const want = [
      ['[CLS]', 'a', 'red', 'circle', '[SEP]'],
      ['[CLS]', 'a', 'blue', '[UNK]', 'square', '[SEP]'], // "zebra" is not in the vocabulary
      ['[CLS]', 'a', 'red', 'blue', 'green', 'circle'], // cut to maxLength
      ['[CLS]', '[SEP]'], // the empty prompt
    ];
    want.forEach((tokens, b) => {
      const e = expected(tokens, MAXLEN);
      expect(rows.slice(b * MAXLEN, (b + 1) * MAXLEN)).toEqual(e.rows);
      expect(bias[b]).toEqual(e.bias);
    });
    out.embeddings.dispose();
    out.keyBias.dispose();
  });

  it('runs the model once per caption and encodes from the cache', async () => {
    const prompts = ['green square', 'blue circle', 'green square'];
    const runs = enc.modelRuns;
    await enc.prepare(prompts);
    expect(enc.modelRuns).toBe(runs + 1); // one batch, duplicates encoded once
    const size = enc.cacheSize;
    await Promise.all([enc.prepare(prompts), enc.prepare(['blue circle', ''])]);
    expect(enc.modelRuns).toBe(runs + 1);
    expect(enc.cacheSize).toBe(size);
    const a = enc.encode(['blue circle']);
    const b = enc.encode(['blue circle']);
    expect(await a.embeddings.data()).toEqual(await b.embeddings.data());
    tf.dispose([a.embeddings, a.keyBias, b.embeddings, b.keyBias]);
    expect(() => enc.encode(['a square nobody prepared'])).toThrow(/prepare/);
  });

  it('saves a reference only, and loadTextEncoder gives the same embeddings', async () => {
    const dir = path.join(tmp, 'bundle', 'text-encoder');
    await enc.save(dir);
    expect(await readdir(dir)).toEqual(['config.json']);
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ kind: 'pretrained', model: modelDir, maxLength: MAXLEN, dim: D, localOnly: true });

    const loaded = await loadTextEncoder(dir);
    try {
      expect(loaded).toBeInstanceOf(PretrainedTextEncoder);
      const p = loaded as PretrainedTextEncoder;
      await p.prepare(['A red circle']);
      const x = p.encode(['A red circle']);
      const y = enc.encode(['A red circle']);
      expect(await x.embeddings.data()).toEqual(await y.embeddings.data());
      tf.dispose([x.embeddings, x.keyBias, y.embeddings, y.keyBias]);
    } finally {
      loaded.dispose();
    }
  });

  it('is made from a preset spec by createTextEncoder', async () => {
    const e = await createTextEncoder({ kind: 'pretrained', model: modelDir, maxLength: 3 });
    try {
      expect(e).toBeInstanceOf(PretrainedTextEncoder);
      expect(e.dim).toBe(D);
      await e.prepare!(['red square']);
      const out = e.encode(['red square', '']);
      expect(await out.keyBias.array()).toEqual([
        [0, 0, 0], // [CLS] red square, cut
        [0, 0, -1e9], // [CLS] [SEP]
      ]);
      tf.dispose([out.embeddings, out.keyBias]);
    } finally {
      e.dispose();
    }
  });

  it('writes a model folder inside the bundle as a relative path', async () => {
    const bundle = path.join(tmp, 'bundle2');
    const inside = path.join(bundle, 'text-encoder', 'model');
    await writeModelFolder(inside);
    const e = await PretrainedTextEncoder.create({ model: inside, maxLength: 3 });
    try {
      await e.save(path.join(bundle, 'text-encoder'));
      const config = JSON.parse(await readFile(path.join(bundle, 'text-encoder', 'config.json'), 'utf8'));
      expect(config.model).toBe('./model');
      const loaded = await loadTextEncoder(path.join(bundle, 'text-encoder'));
      expect(loaded.dim).toBe(D);
      loaded.dispose();
    } finally {
      e.dispose();
    }
  });

  it('reports a missing model, a missing file and a wrong dim as UserErrors', async () => {
    await expect(PretrainedTextEncoder.create({ model: 'maskgen-test/no-such-model', maxLength: 4, localOnly: true })).rejects.toThrow(UserError);
    await expect(PretrainedTextEncoder.create({ model: path.join(tmp, 'nowhere'), maxLength: 4 })).rejects.toThrow(/no such folder/);

    const broken = path.join(tmp, 'broken');
    await writeModelFolder(broken);
    await rm(path.join(broken, 'onnx'), { recursive: true });
    await expect(PretrainedTextEncoder.create({ model: broken, maxLength: 4 })).rejects.toThrow(/onnx\/model\.onnx/);
    await rm(path.join(broken, 'tokenizer.json'));
    await expect(PretrainedTextEncoder.create({ model: broken, maxLength: 4 })).rejects.toThrow(/no tokenizer\.json/);

    const dir = path.join(tmp, 'wrong-dim');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ kind: 'pretrained', model: modelDir, maxLength: 4, dim: D + 1 }));
    const err = await loadTextEncoder(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/width 4/);
  });
});
