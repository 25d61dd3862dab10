/**
 * The masked transformer (with its built-in text encoder) killed with SIGKILL between steps, in the
 * middle of writing a checkpoint (its text encoder's files included), and right after one, resumed
 * each time, ends with the weights, optimizer moments and masking state of a run never stopped, bit
 * for bit. Then `generate` on the trained bundle with a full disk: one error line, exit code 1, the
 * images written before kept whole, no half-written PNG.
 */
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/data/png.js';
import { loadConfig } from '../src/io/config.js';
import { VqganConfigSchema } from '../src/vqgan/config.js';
import { saveTokenizer } from '../src/vqgan/io.js';
import { VitVqgan } from '../src/vqgan/model.js';
import { checkpointBytes, expectSameCheckpoint, killAndResume, maskgenChild, readNewest, shapesFolder, tinyConfig } from './helpers/crash.js';

let tmp: string;
const STORE = 'checkpoints/transformer';
// 10 steps, a checkpoint every 3, a third of the captions dropped, an EMA of the weights (the bundle's),
// every image and its mirror as examples.
const cmd = (out: string) => ['train-transformer', '--config', 'config.json', '--data', 'data', '--tokenizer', 'tok', '--out', out, '--batch-size', '8'];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-crash-tr-'));
  await shapesFolder(path.join(tmp, 'data'), 24);
  await tinyConfig(path.join(tmp, 'config.json'), { transformerTrain: { steps: 10, checkpointEvery: 3, warmup: 2, condDropout: 0.3, ema: 0.8, augmentFlip: true } });
  // An untrained tokenizer is enough: it turns the images into token grids.
  const tok = new VitVqgan(await loadConfig(VqganConfigSchema, 'tiny', 'vqgan'), 3);
  await saveTokenizer(path.join(tmp, 'tok'), tok);
  tok.dispose();
  const ref = await maskgenChild(tmp, cmd('ref'));
  expect(ref.code, ref.stderr).toBe(0);
  // the images' tokens and their mirrors', each computed once
  expect((await readdir(path.join(tmp, 'ref', 'cache'))).filter((f) => f.startsWith('tokens-'))).toHaveLength(2);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('train-transformer killed and resumed', () => {
  it('ends where the uninterrupted run ends, bit for bit', async () => {
    const size = await checkpointBytes(path.join(tmp, 'ref', STORE));
    await killAndResume(tmp, cmd('run'), [
      // right after the checkpoint of step 3
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: '3' }, newest: 3, store: `run/${STORE}` },
      // resumed at 3, it writes the checkpoints of steps 6 and 9: killed in the second one's last files
      { env: { MASKGEN_TEST_FAULT: `kill@${STORE}/:${size * 2 - 300}` }, newest: 6, store: `run/${STORE}`, torn: true },
      // resumed at 6: between steps 8 and 9
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: '8' }, newest: 6, store: `run/${STORE}` },
    ]);
    await expectSameCheckpoint(path.join(tmp, 'run', STORE), path.join(tmp, 'ref', STORE));
    const newest = await readNewest(path.join(tmp, 'run', STORE));
    expect(Object.keys(newest.state.random as object)).toEqual(['masking']);
    expect(newest.state.emaUpdates).toBe(10); // the average went on across the kills
    // the bundle the run leaves is the checkpoint's: same transformer weights
    expect(await readFile(path.join(tmp, 'run', 'transformer', 'model.safetensors'))).toEqual(await readFile(path.join(tmp, 'ref', 'transformer', 'model.safetensors')));
  });

  it('resumes with the flips turned off or on (--flip; a continuation with or without mirrors), but not with another rate', async () => {
    await cp(path.join(tmp, 'ref'), path.join(tmp, 'cont'), { recursive: true });
    const train = { steps: 10, checkpointEvery: 3, warmup: 2, condDropout: 0.3, ema: 0.8 };
    await tinyConfig(path.join(tmp, 'noflip.json'), { transformerTrain: { ...train, augmentFlip: false } });
    await tinyConfig(path.join(tmp, 'otherlr.json'), { transformerTrain: { ...train, augmentFlip: true, lr: 0.01 } });
    const resume = (config: string, steps: string) => ['train-transformer', '--config', config, '--data', 'data', '--tokenizer', 'tok', '--out', 'cont', '--batch-size', '8', '--resume', '--steps', steps];
    const off = await maskgenChild(tmp, resume('noflip.json', '12'));
    expect(off.code, off.stderr).toBe(0);
    expect((await readNewest(path.join(tmp, 'cont', STORE))).step).toBe(12);
    const on = await maskgenChild(tmp, [...resume('noflip.json', '13'), '--flip']);
    expect(on.code, on.stderr).toBe(0);
    expect((await readNewest(path.join(tmp, 'cont', STORE))).step).toBe(13);
    const other = await maskgenChild(tmp, resume('otherlr.json', '14'));
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/different config: train\.lr/);
  });

  it('generate with a full disk: one error line, exit code 1, earlier images whole', async () => {
    const gen = await maskgenChild(tmp, ['generate', '--bundle', 'run', '--prompt', 'a red square', '--n', '3', '--steps', '2', '--out', 'gen'], {
      MASKGEN_TEST_FAULT: 'enospc@square-1.png:100',
    });
    expect(gen.code).toBe(1);
    const lines = gen.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(`maskgen: error: cannot write ${path.join('gen', 'a-red-square-1.png')}: no space left on the device`);
    expect(lines.filter((l) => l.includes('error'))).toHaveLength(1);
    expect((await readdir(path.join(tmp, 'gen'))).sort()).toEqual(['a-red-square-0.json', 'a-red-square-0.png']);
    const png = decodePng(await readFile(path.join(tmp, 'gen', 'a-red-square-0.png')));
    expect([png?.width, png?.height]).toEqual([16, 16]);
  });
});
