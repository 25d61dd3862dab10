/**
 * The loop every training run shares: step until done or asked to stop, log metrics as JSON lines,
 * save a checkpoint every `checkpointEvery` steps and at the end (also when stopped early).
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { epochBatches } from '../data/batches.js';
import { UserError } from '../errors.js';
import { hasCheckpoint } from '../io/checkpoint.js';
import { Rng } from '../random.js';

export interface LoopOptions<M extends object> {
  /** Run folder; the log goes to `<out>/logs/<logName>.jsonl` (appended, so resumed runs continue it). */
  out: string;
  logName: string;
  startStep: number;
  steps: number;
  checkpointEvery: number;
  logEvery?: number;
  /** One training step; returns its metrics. */
  step: () => M;
  save: () => Promise<void>;
  onStep?: (step: number, metrics: M) => void;
  shouldStop?: () => boolean;
}

export interface LoopResult<M> {
  steps: number;
  interrupted: boolean;
  last?: M;
  seconds: number;
}

export async function trainingLoop<M extends object>(o: LoopOptions<M>): Promise<LoopResult<M>> {
  await fsp.mkdir(path.join(o.out, 'logs'), { recursive: true });
  const log = await fsp.open(path.join(o.out, 'logs', `${o.logName}.jsonl`), 'a');
  const logEvery = o.logEvery ?? 10;
  const t0 = Date.now();
  let step = o.startStep;
  let last: M | undefined;
  let interrupted = false;
  try {
    while (step < o.steps) {
      if (o.shouldStop?.()) {
        interrupted = true;
        break;
      }
      last = o.step();
      step++;
      o.onStep?.(step, last);
      if (step % logEvery === 0 || step === o.steps) {
        await log.write(JSON.stringify({ step, time: (Date.now() - t0) / 1000, ...last }) + '\n');
      }
      if (step % o.checkpointEvery === 0 && step < o.steps) await o.save();
    }
    await o.save();
  } finally {
    await log.close();
  }
  return { steps: step - o.startStep, interrupted, last, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Whether `ckptDir` holds a run to resume; refuses to start over an existing run without `resume`,
 * and to resume when there is nothing there.
 */
export async function checkResume(out: string, ckptDir: string, resume: boolean | undefined): Promise<boolean> {
  const exists = await hasCheckpoint(ckptDir);
  if (exists && !resume) throw new UserError(`${out} already holds a training run; pass --resume to continue it or choose another --out`);
  if (!exists && resume) throw new UserError(`nothing to resume in ${out} (no ${ckptDir})`);
  return exists;
}

/**
 * The batch indices of a run from `startStep` on. The order is a function of the seed alone, so a
 * resumed run sees the batches it would have seen.
 */
export function runBatches(count: number, batchSize: number, seed: number, startStep: number): () => number[] {
  const batches = epochBatches(count, batchSize, new Rng(seed + 2), true);
  for (let s = 0; s < startStep; s++) batches.next();
  return () => (batches.next().value as { indices: number[] }).indices;
}
