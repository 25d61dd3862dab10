/**
 * The loop every training run shares: step until done or asked to stop, log metrics as JSON lines,
 * save a checkpoint every `checkpointEvery` steps and at the end (also when stopped early).
 *
 * Test hook: `MASKGEN_TEST_KILL_AFTER_STEP=[<logName>:]<step>` makes the process SIGKILL itself
 * right after that step (and the checkpoint due at it, if any), to test resuming after a crash.
 */
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { epochBatches } from '../data/batches.js';
import { UserError } from '../errors.js';
import { fsError, writeFileAtomic } from '../io/atomic.js';
import { hasTrainingCheckpoint, loadTrainingCheckpoint, type Checkpoint, type ResumeFrom } from '../io/checkpoint.js';
import { Rng } from '../random.js';
import { lockRun } from '../io/run-lock.js';

/** What a run's `resume` option takes: false (start a new run), true (= 'latest'), or which checkpoint. */
export type Resume = boolean | ResumeFrom | undefined;

/** The checkpoint a `resume` option asks for, or undefined for a new run. */
export function resumeFrom(resume: Resume): ResumeFrom | undefined {
  return resume === true ? 'latest' : resume === false || resume === undefined ? undefined : resume;
}

/** The step after which MASKGEN_TEST_KILL_AFTER_STEP kills a loop that logs as `logName`. */
function killAfterStep(logName: string): number | undefined {
  const spec = process.env.MASKGEN_TEST_KILL_AFTER_STEP;
  if (!spec) return undefined;
  const m = /^(?:(.+):)?(\d+)$/.exec(spec);
  if (!m) throw new Error(`MASKGEN_TEST_KILL_AFTER_STEP must be [<logName>:]<step>, got ${JSON.stringify(spec)}`);
  return m[1] === undefined || m[1] === logName ? Number(m[2]) : undefined;
}

/**
 * Drops the log lines of steps after `step`: a run resumed from a checkpoint redoes them, and its
 * log should read as if it had never stopped.
 */
async function trimLog(file: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const kept = lines.filter((l) => {
    try {
      return Number((JSON.parse(l) as { step?: unknown }).step) <= step;
    } catch {
      return false; // a line torn by a crash
    }
  });
  if (kept.length !== lines.length) await writeFileAtomic(file, kept.map((l) => l + '\n').join(''));
}

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
  const logFile = path.join(o.out, 'logs', `${o.logName}.jsonl`);
  let log: fsp.FileHandle;
  try {
    await fsp.mkdir(path.dirname(logFile), { recursive: true });
    await trimLog(logFile, o.startStep);
    log = await fsp.open(logFile, 'a');
  } catch (err) {
    throw fsError(err, 'write', logFile);
  }
  const logEvery = o.logEvery ?? 10;
  const killAt = killAfterStep(o.logName);
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
        await log.write(JSON.stringify({ step, time: (Date.now() - t0) / 1000, ...last }) + '\n').catch((err: unknown) => {
          throw fsError(err, 'write', logFile);
        });
      }
      if (step % o.checkpointEvery === 0 && step < o.steps) await o.save();
      if (step === killAt) process.kill(process.pid, 'SIGKILL');
    }
    await o.save();
  } finally {
    await log.close();
  }
  return { steps: step - o.startStep, interrupted, last, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Takes the run folder's lock (io/run-lock.ts: one training process per folder), then says whether
 * the checkpoint store `ckptDir` holds a run to resume; refuses to start over an existing run
 * without `resume`, and to resume when there is nothing there.
 */
export async function checkResume(out: string, ckptDir: string, resume: Resume): Promise<boolean> {
  lockRun(out);
  const exists = await hasTrainingCheckpoint(ckptDir);
  if (exists && !resumeFrom(resume)) throw new UserError(`${out} already holds a training run; pass --resume to continue it or choose another --out`);
  if (!exists && resumeFrom(resume)) throw new UserError(`nothing to resume in ${out} (no ${ckptDir})`);
  return exists;
}

/**
 * The checkpoint a run resumes from in the store `ckptDir` (see `loadTrainingCheckpoint`), the one
 * `resume` asks for; checkpoints `latest-good` skips are reported to `onWarning`.
 */
export function resumeCheckpoint(
  ckptDir: string,
  resume: Resume,
  o: { expectConfig?: unknown; what: string; onWarning?: (message: string) => void },
): Promise<Checkpoint & { dir: string; step: number }> {
  return loadTrainingCheckpoint(ckptDir, { expectConfig: o.expectConfig, what: o.what, from: resumeFrom(resume), onSkip: o.onWarning });
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
