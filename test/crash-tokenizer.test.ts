/**
 * The tokenizer killed with SIGKILL between steps, in the middle of writing a checkpoint, and right
 * after one, resumed each time, ends with the weights, discriminator, optimizer moments and random
 * state of a run never stopped, bit for bit. A damaged newest checkpoint is one clear error, and
 * `--resume latest-good` goes back to the one before; a full disk while checkpointing is one error
 * line, exit code 1, the earlier checkpoint kept.
 */
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints, verifyCheckpoint } from '../src/io/checkpoint.js';
import { checkpointBytes, expectSameCheckpoint, killAndResume, maskgenChild, readNewest, shapesFolder, storeState, tinyConfig } from './helpers/crash.js';

let tmp: string;
const STORE = 'checkpoints/vqgan';
// 10 steps, a checkpoint every 3; restarts every 2 steps, the discriminator from step 4, random flips.
const cmd = (out: string, ...more: string[]) => ['train-tokenizer', '--config', 'config.json', '--data', 'data', '--out', out, '--batch-size', '8', ...more];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-crash-tok-'));
  await shapesFolder(path.join(tmp, 'data'), 24);
  await tinyConfig(path.join(tmp, 'config.json'), {
    vqganTrain: { steps: 10, checkpointEvery: 3, warmup: 2, restartEvery: 2, augmentFlip: true, adversarial: { weight: 0.05, start: 4, width: 8 } },
  });
  const ref = await maskgenChild(tmp, cmd('ref'));
  expect(ref.code, ref.stderr).toBe(0);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('train-tokenizer killed and resumed', () => {
  it('ends where the uninterrupted run ends, bit for bit', async () => {
    const size = await checkpointBytes(path.join(tmp, 'ref', STORE));
    await killAndResume(tmp, cmd('run'), [
      // between steps: after step 4 (the checkpoint of step 3 is the newest)
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: '4' }, newest: 3, store: `run/${STORE}` },
      // resumed at 3, it writes the checkpoints of steps 6 and 9: killed halfway through the second
      { env: { MASKGEN_TEST_FAULT: `kill@${STORE}/:${Math.round(size * 1.5)}` }, newest: 6, store: `run/${STORE}`, torn: true },
      // resumed at 6: killed right after the checkpoint of step 9
      { env: { MASKGEN_TEST_KILL_AFTER_STEP: '9' }, newest: 9, store: `run/${STORE}` },
    ]);
    await expectSameCheckpoint(path.join(tmp, 'run', STORE), path.join(tmp, 'ref', STORE));
    const state = (await readNewest(path.join(tmp, 'ref', STORE))).state;
    expect(Object.keys(state.random as object).sort()).toEqual(['flip', 'restarts']);
  });

  it('a torn newest checkpoint is one error naming the file; --resume latest-good goes back one', async () => {
    const store = path.join(tmp, 'run', STORE);
    const [newest, previous] = await listCheckpoints(store);
    const torn = path.join(path.relative(tmp, newest!.dir), 'optimizer.safetensors');
    await truncate(path.join(tmp, torn), 1000);
    await expect(verifyCheckpoint(newest!.dir)).rejects.toThrow(torn);

    const refused = await maskgenChild(tmp, cmd('run', '--steps', '11', '--resume'));
    expect(refused.code).toBe(1);
    const lines = refused.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      new RegExp(`^maskgen: error: ${torn}: torn or replaced: 1000 bytes, the manifest says \\d+; --resume latest-good continues from the newest good one of the 2 older \\(step 9\\)$`),
    );
    expect(lines.filter((l) => l.startsWith('maskgen: error:'))).toHaveLength(1);

    const good = await maskgenChild(tmp, cmd('run', '--steps', '11', '--resume', 'latest-good', '--json'));
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toContain(`maskgen: warning: skipping tokenizer checkpoint ${path.dirname(torn)}: ${torn}: torn or replaced`);
    expect(JSON.parse(good.stdout.trim().split('\n').at(-1)!).steps).toBe(11 - previous!.step);
    expect((await storeState(store)).newest).toBe(11);
  });

  it('a full disk while checkpointing: one error line, exit code 1, the earlier checkpoint kept', async () => {
    const size = await checkpointBytes(path.join(tmp, 'ref', STORE));
    const full = await maskgenChild(tmp, cmd('full', '--steps', '6'), {
      MASKGEN_TEST_FAULT: `enospc@${STORE}/:${Math.round(size * 1.5)}`,
    });
    expect(full.code).toBe(1);
    const store = path.join(tmp, 'full', STORE);
    expect(full.stderr.trim().split('\n').at(-1)).toBe(
      `maskgen: error: cannot write checkpoint ${path.join('full', STORE, 'step-00000006')}: no space left on the device; the earlier checkpoints are kept`,
    );
    expect(await storeState(store)).toEqual({ newest: 3, staging: false });
    await verifyCheckpoint((await listCheckpoints(store))[0]!.dir);
  });
});
