/**
 * The checkpoint store under faults, in-process: a write stopped at every byte leaves the previous
 * checkpoint as the newest, intact and loadable; torn, foreign and incomplete checkpoints are
 * errors naming the file; `latest-good` skips them but never falls back to a fresh start; a full disk
 * is one UserError with the store as it was; the store keeps the newest three and takes over a
 * checkpoint written before it had manifests.
 */
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resumeChoice } from '../src/cli/common.js';
import { UserError } from '../src/errors.js';
import { setWriteFault, writeFileAtomic } from '../src/io/atomic.js';
import {
  ConfigMismatchError,
  listCheckpoints,
  loadTrainingCheckpoint,
  MANIFEST_FILE,
  MODEL_FILE,
  saveCheckpoint,
  saveTrainingCheckpoint,
  type Checkpoint,
} from '../src/io/checkpoint.js';
import { Rng, restoreRngs, saveRngs } from '../src/random.js';
import { checkResume, resumeFrom } from '../src/training/loop.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-crash-ckpt-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
afterEach(() => setWriteFault());

const config = { kind: 'test', width: 4 };

/** A checkpoint whose every number depends on `step`, with a text file written by `extra`. */
function save(root: string, step: number, opts: { keep?: number; config?: unknown } = {}): Promise<string> {
  const weights = { w: tf.tensor2d([step, 2, 3, 4, 5, 6], [2, 3]), ids: tf.tensor1d([step, 7], 'int32') };
  const optimizer = { 'm/w': tf.fill([2, 3], step / 10), 'v/w': tf.fill([2, 3], step / 100) };
  return saveTrainingCheckpoint(root, { config: opts.config ?? config, weights, optimizer, state: { step, random: { masking: 1000 + step } } }, {
    keep: opts.keep,
    extra: (dir) => writeFileAtomic(path.join(dir, 'text-encoder', 'vocab.json'), JSON.stringify({ step, words: ['a', 'red', 'square'] })),
  }).finally(() => tf.dispose([...Object.values(weights), ...Object.values(optimizer)]));
}

/** Loads the checkpoint `root` resumes from and checks it is step `step`'s, exactly. */
async function expectLoads(root: string, step: number, from: 'latest' | 'latest-good' = 'latest', onSkip?: (m: string) => void): Promise<void> {
  const ck = await loadTrainingCheckpoint(root, { expectConfig: config, from, onSkip });
  try {
    expect(ck.step).toBe(step);
    expect(ck.state).toEqual({ step, random: { masking: 1000 + step } });
    expect(Array.from(ck.weights.w!.dataSync())).toEqual([step, 2, 3, 4, 5, 6]);
    expect(Array.from(ck.weights.ids!.dataSync())).toEqual([step, 7]);
    expect(Array.from(ck.optimizer!['m/w']!.dataSync())).toEqual(Array.from(new Float32Array(6).fill(step / 10)));
    expect(JSON.parse(await readFile(path.join(ck.dir, 'text-encoder', 'vocab.json'), 'utf8')).step).toBe(step);
  } finally {
    tf.dispose([...Object.values(ck.weights), ...Object.values(ck.optimizer ?? {})]);
  }
}

async function userError(f: () => Promise<unknown>): Promise<UserError> {
  const err = await f().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

const filesIn = async (dir: string): Promise<number> => {
  let bytes = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) bytes += (await readFile(path.join(e.parentPath, e.name))).length;
  }
  return bytes;
};

describe('a checkpoint write stopped at any byte', () => {
  it('(at each file\'s first, second and last byte, and 40 more) leaves the previous checkpoint the newest, intact and loadable', async () => {
    // The bytes of the second checkpoint's write, file by file in the order they are written.
    const probe = path.join(tmp, 'probe');
    await save(probe, 1);
    const dir = await save(probe, 2);
    const order = [MODEL_FILE, 'optimizer.safetensors', 'config.json', 'state.json', 'text-encoder/vocab.json', MANIFEST_FILE];
    const sizes = await Promise.all(order.map(async (f) => (await readFile(path.join(dir, f))).length));
    expect(sizes.reduce((a, b) => a + b)).toBe(await filesIn(dir));
    // Every byte around each file's start and end, and 40 more spread over the whole write.
    const offsets = new Set<number>();
    let start = 0;
    for (const size of sizes) {
      for (const k of [start, start + 1, start + size - 1]) offsets.add(k);
      start += size;
    }
    for (let i = 0; i < 40; i++) offsets.add(Math.floor((i * start) / 40) + 3);
    const total = start;

    const root = path.join(tmp, 'every-byte');
    await save(root, 1);
    const stoppedIn = new Set<string>();
    for (const k of [...offsets].filter((k) => k < total).sort((a, b) => a - b)) {
      const reached = new Promise<string>((onFault) => setWriteFault({ action: 'pause', scope: root, atByte: k, onFault }));
      const pending = save(root, 2).then(
        () => new Error(`the write of byte ${k} did not stop`),
        (e: unknown) => e,
      );
      stoppedIn.add(path.basename((await reached).replace(/\.tmp-.*$/, '')));
      // The disk now is what a crash at byte k leaves.
      expect((await listCheckpoints(root)).map((c) => c.step)).toEqual([1]);
      await expectLoads(root, 1);
      setWriteFault(); // the paused write fails and cleans up
      expect(String(await pending)).toBe('Error: write fault released');
    }
    expect([...stoppedIn].sort()).toEqual(order.map((f) => path.basename(f)).sort());
    // and with no fault the same write commits
    await save(root, 2);
    await expectLoads(root, 2);
  });
});

describe('damaged checkpoints', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(tmp, 'damaged');
    for (const step of [1, 2, 3]) await save(root, step);
  });

  it('a torn file: one error naming it, with the way out; latest-good takes the one before', async () => {
    const file = path.join(root, 'step-00000003', 'optimizer.safetensors');
    await truncate(file, 40);
    const err = await userError(() => loadTrainingCheckpoint(root, { expectConfig: config }));
    expect(err.message).toMatch(new RegExp(`^${file}: torn or replaced: 40 bytes, the manifest says \\d+; --resume latest-good continues from the newest good one of the 2 older \\(step 2\\)$`));
    const skipped: string[] = [];
    await expectLoads(root, 2, 'latest-good', (m) => skipped.push(m));
    expect(skipped).toEqual([expect.stringMatching(new RegExp(`^skipping checkpoint ${path.join(root, 'step-00000003')}: ${file}: torn`))]);
  });

  it('a file from another checkpoint: an error naming it; latest-good goes on to the one before', async () => {
    const other = path.join(tmp, 'other');
    await save(other, 9);
    const model = path.join(root, 'step-00000002', MODEL_FILE);
    await copyFile(path.join(other, 'step-00000009', MODEL_FILE), model);
    const skipped: string[] = [];
    await expectLoads(root, 1, 'latest-good', (m) => skipped.push(m));
    expect(skipped[1]).toBe(`skipping checkpoint ${path.join(root, 'step-00000002')}: ${model}: damaged or replaced: its SHA-256 differs from the manifest's`);
  });

  it('none good: an error, never a fresh start', async () => {
    const manifest = path.join(root, 'step-00000001', MANIFEST_FILE);
    await unlink(manifest);
    const skipped: string[] = [];
    const err = await userError(() => loadTrainingCheckpoint(root, { from: 'latest-good', onSkip: (m) => skipped.push(m) }));
    expect(err.message).toMatch(new RegExp(`^no good checkpoint in ${root} \\(3 damaged; the newest: ${path.join(root, 'step-00000003')}/optimizer.safetensors: torn`));
    expect(skipped[2]).toBe(`skipping checkpoint ${path.join(root, 'step-00000001')}: ${manifest}: missing, so the checkpoint is incomplete or not one of maskgen's`);
    // the run is still there: starting afresh over it is refused, resuming it is the error above
    expect(await checkResume(tmp, root, 'latest-good')).toBe(true);
    await expect(checkResume(tmp, root, false)).rejects.toThrow(/already holds a training run; pass --resume/);
  });

  it("a manifest that is not maskgen's, and a checkpoint of another config", async () => {
    const foreign = path.join(tmp, 'foreign');
    await save(foreign, 1);
    await writeFile(path.join(foreign, 'step-00000001', MANIFEST_FILE), JSON.stringify({ format: 'someone-else/2', files: {} }));
    expect((await userError(() => loadTrainingCheckpoint(foreign))).message).toBe(
      `${path.join(foreign, 'step-00000001', MANIFEST_FILE)}: not a maskgen checkpoint manifest (expected "format": "maskgen-checkpoint/1")`,
    );
    // another config is the user's mistake, not damage: latest-good does not skip it
    const otherConfig = path.join(tmp, 'other-config');
    await save(otherConfig, 1);
    await save(otherConfig, 2, { config: { kind: 'test', width: 8 } });
    const err = await loadTrainingCheckpoint(otherConfig, { expectConfig: config, from: 'latest-good' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigMismatchError);
    expect((err as Error).message).toBe(`checkpoint ${path.join(otherConfig, 'step-00000002')} was made with a different config: width: 8 vs 4 (checkpoint vs expected)`);
  });
});

describe('the store', () => {
  it('keeps the newest three; saving a step again replaces it', async () => {
    const root = path.join(tmp, 'rotate');
    for (const step of [1, 2, 3, 4, 5]) await save(root, step);
    expect((await readdir(root)).sort()).toEqual(['step-00000003', 'step-00000004', 'step-00000005']);
    await save(root, 5);
    await expectLoads(root, 5);
    await save(root, 6, { keep: 1 });
    expect(await readdir(root)).toEqual(['step-00000006']);
  });

  it('resumes a checkpoint written before manifests (files in the root), and retires it after three new ones', async () => {
    const root = path.join(tmp, 'legacy');
    const weights = { w: tf.tensor2d([7, 2, 3, 4, 5, 6], [2, 3]), ids: tf.tensor1d([7, 7], 'int32') };
    const optimizer = { 'm/w': tf.fill([2, 3], 0.7), 'v/w': tf.fill([2, 3], 0.07) };
    const legacy: Checkpoint = { config, weights, optimizer, state: { step: 7 } };
    await saveCheckpoint(root, legacy);
    tf.dispose([...Object.values(weights), ...Object.values(optimizer)]);
    expect(await listCheckpoints(root)).toEqual([{ dir: root, step: 7, legacy: true }]);
    const ck = await loadTrainingCheckpoint(root, { expectConfig: config });
    expect([ck.step, ck.dir]).toEqual([7, root]);
    tf.dispose([...Object.values(ck.weights), ...Object.values(ck.optimizer ?? {})]);
    for (const step of [8, 9]) await save(root, step);
    expect((await listCheckpoints(root)).map((c) => c.step)).toEqual([9, 8, 7]);
    await save(root, 10);
    expect((await readdir(root)).sort()).toEqual(['step-00000008', 'step-00000009', 'step-00000010']);
  });
});

describe('a full disk', () => {
  it('while checkpointing: one UserError naming the checkpoint, the store as it was', async () => {
    const root = path.join(tmp, 'full');
    await save(root, 1);
    setWriteFault({ action: 'enospc', scope: root, atByte: 150 });
    const err = await userError(() => save(root, 2));
    expect(err.message).toBe(`cannot write checkpoint ${path.join(root, 'step-00000002')}: no space left on the device; the earlier checkpoints are kept`);
    expect(await readdir(root)).toEqual(['step-00000001']);
    setWriteFault();
    await expectLoads(root, 1);
  });

  it('while writing a file atomically: the old file whole, no temporary file', async () => {
    const file = path.join(tmp, 'atomic', 'image.png');
    await writeFileAtomic(file, 'old contents');
    setWriteFault({ action: 'enospc', atByte: 5 });
    expect((await userError(() => writeFileAtomic(file, 'new contents, longer'))).message).toBe(`cannot write ${file}: no space left on the device`);
    expect(await readFile(file, 'utf8')).toBe('old contents');
    expect(await readdir(path.dirname(file))).toEqual(['image.png']);
  });
});

describe('resume options and random state', () => {
  it('--resume alone is latest; latest-good; anything else is an error', () => {
    expect([resumeChoice(undefined), resumeChoice(''), resumeChoice('latest'), resumeChoice('latest-good')]).toEqual([undefined, 'latest', 'latest', 'latest-good']);
    expect(() => resumeChoice('newest')).toThrow(`--resume takes no value, 'latest' or 'latest-good', got "newest"`);
    expect([resumeFrom(true), resumeFrom(false), resumeFrom(undefined), resumeFrom('latest-good')]).toEqual(['latest', undefined, undefined, 'latest-good']);
  });

  it('a generator continued from its saved position draws what it would have', () => {
    const a = { masking: new Rng(5), noise: new Rng(6) };
    for (let i = 0; i < 17; i++) a.masking.next();
    a.noise.normal();
    const saved = JSON.parse(JSON.stringify(saveRngs(a))) as unknown;
    const b = { masking: new Rng(5), noise: new Rng(6) };
    restoreRngs(b, saved);
    expect([b.masking.next(), b.noise.normal(), b.masking.int(1000)]).toEqual([a.masking.next(), a.noise.normal(), a.masking.int(1000)]);
    // a checkpoint from before random state was kept: the seeded start
    const c = { masking: new Rng(5) };
    restoreRngs(c, undefined);
    expect(c.masking.next()).toBe(new Rng(5).next());
  });
});
