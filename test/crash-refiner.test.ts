/**
 * The refiner's two stages, autoencoder then denoiser, killed with SIGKILL between steps, in the
 * middle of writing a checkpoint and right after one (in each stage, and at the hand-over from one
 * to the other), resumed each time, end with the weights, optimizer moments and noise state of a run
 * never stopped, bit for bit.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointBytes, expectSameCheckpoint, killAndResume, maskgenChild, readNewest, shapesFolder, tinyConfig } from './helpers/crash.js';

let tmp: string;
const AE = 'checkpoints/refiner-autoencoder';
const DN = 'checkpoints/refiner';
// 7 autoencoder steps, then 7 denoiser steps, a checkpoint every 3 (and at each stage's end).
const cmd = (out: string) => ['train-refiner', '--config', 'config.json', '--data', 'data', '--out', out];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-crash-ref-'));
  await shapesFolder(path.join(tmp, 'data'), 24);
  await tinyConfig(path.join(tmp, 'config.json'), {
    refinerTrain: { autoencoderSteps: 7, autoencoderBatchSize: 8, steps: 7, batchSize: 8, warmup: 2, checkpointEvery: 3, condDropout: 0.3 },
  });
  const ref = await maskgenChild(tmp, cmd('ref'));
  expect(ref.code, ref.stderr).toBe(0);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('train-refiner killed and resumed', () => {
  it('ends where the uninterrupted run ends, in both stages, bit for bit', async () => {
    const aeSize = await checkpointBytes(path.join(tmp, 'ref', AE));
    const dnSize = await checkpointBytes(path.join(tmp, 'ref', DN));
    await killAndResume(tmp, cmd('run'), [
      // autoencoder, between steps 4 and 5
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: 'refiner-autoencoder:4' }, newest: 3, store: `run/${AE}` },
      // resumed at 3, it writes the autoencoder's checkpoints of steps 6 and 7 (its last): killed inside the second's weights
      { env: { MASKGEN_TEST_FAULT: `kill@${AE}/:${aeSize + 2000}` }, newest: 6, store: `run/${AE}`, torn: true },
      // resumed at 6: finishes the autoencoder, killed right after the denoiser's checkpoint of step 3
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: 'refiner:3' }, newest: 3, store: `run/${DN}` },
      // the autoencoder is done; the denoiser resumes at 3 and is killed halfway through its checkpoint of step 6
      { env: { MASKGEN_TEST_FAULT: `kill@${DN}/:${Math.round(dnSize / 2)}` }, newest: 3, store: `run/${DN}`, torn: true },
    ]);
    await expectSameCheckpoint(path.join(tmp, 'run', AE), path.join(tmp, 'ref', AE));
    await expectSameCheckpoint(path.join(tmp, 'run', DN), path.join(tmp, 'ref', DN));
    expect(Object.keys((await readNewest(path.join(tmp, 'run', DN))).state.random as object)).toEqual(['noise']);
    expect(await readFile(path.join(tmp, 'run', 'refiner', 'model.safetensors'))).toEqual(await readFile(path.join(tmp, 'ref', 'refiner', 'model.safetensors')));
  });
});
