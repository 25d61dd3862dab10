/**
 * The embedded queue with a stand-in runner (no model): one job at a time in order, bounded with a
 * Retry-After, events in order, close() drains, finished jobs forgotten beyond `keep`.
 */
import { describe, expect, it } from 'vitest';
import { QueueFullError, ShuttingDownError, retryAfterSeconds, type JobEvent, type JobResult, type JobSpec } from '../src/serve/jobs.js';
import { LocalQueue } from '../src/serve/local-queue.js';
import type { RunContext } from '../src/serve/runner.js';

const spec = (prompt: string): JobSpec => ({ kind: 'generate', prompts: [prompt], n: 1, guidance: 3, steps: 2, seed: 0, refine: false });

/** A runner whose jobs finish when the test says so, recording what ran and how many at once. */
function fakeRunner() {
  let running = 0;
  const log = { maxRunning: 0, order: [] as string[], timeouts: [] as (number | undefined)[] };
  const releases: (() => void)[] = [];
  const run = async (s: JobSpec, ctx: RunContext): Promise<JobResult> => {
    running++;
    log.maxRunning = Math.max(log.maxRunning, running);
    log.order.push(s.kind === 'generate' ? s.prompts[0]! : 'edit');
    log.timeouts.push(ctx.timeoutMs);
    await ctx.onProgress?.({ phase: 'decode', step: 1, total: 2, worker: 'w', previews: ['x'], first: 0 });
    await new Promise<void>((r) => releases.push(r));
    running--;
    if (s.kind === 'generate' && s.prompts[0] === 'boom') throw new Error('boom failed');
    return { kind: 'generate', images: [], seconds: 2, worker: 'w', backend: 'test' };
  };
  const releaseNext = async () => {
    while (releases.length === 0) await new Promise((r) => setTimeout(r, 1));
    releases.shift()!();
  };
  return { run, log, releaseNext };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('LocalQueue', () => {
  it('runs one job at a time, first in first out, and passes the timeout on', async () => {
    const f = fakeRunner();
    const q = new LocalQueue(f.run, { timeoutMs: 1234 });
    const ids = [await q.submit(spec('a')), await q.submit(spec('b')), await q.submit(spec('c'))];
    expect(await q.counts()).toEqual({ waiting: 2, active: 1 });
    for (let i = 0; i < 3; i++) await f.releaseNext();
    await q.close();
    expect(f.log.order).toEqual(['a', 'b', 'c']);
    expect(f.log.maxRunning).toBe(1);
    expect(f.log.timeouts).toEqual([1234, 1234, 1234]);
    for (const id of ids) expect((await q.get(id))!.state).toBe('done');
  });

  it('answers QueueFullError with a Retry-After once maxQueue jobs wait', async () => {
    const f = fakeRunner();
    const q = new LocalQueue(f.run, { maxQueue: 2 });
    await q.submit(spec('running'));
    await q.submit(spec('w1'));
    await q.submit(spec('w2'));
    const err = await q.submit(spec('one too many')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).retryAfter).toBeGreaterThanOrEqual(1);
    await f.releaseNext();
    await settle();
    await q.submit(spec('room again')); // one left the queue: there is room
    for (let i = 0; i < 3; i++) await f.releaseNext();
    await q.close();
  });

  it('tells subscribers running, progress, then done or failed; the view keeps progress without previews', async () => {
    const f = fakeRunner();
    const q = new LocalQueue(f.run);
    const ok = await q.submit(spec('ok'));
    const bad = await q.submit(spec('boom'));
    const seen: Record<string, JobEvent['type'][]> = { [ok]: [], [bad]: [] };
    q.subscribe(ok, (e) => seen[ok]!.push(e.type));
    q.subscribe(bad, (e) => seen[bad]!.push(e.type));
    await f.releaseNext();
    await f.releaseNext();
    await q.close();
    expect(seen[bad]).toEqual(['running', 'progress', 'failed']);
    const okView = (await q.get(ok))!;
    expect(okView.progress).toEqual({ phase: 'decode', step: 1, total: 2, worker: 'w', first: 0 });
    expect((await q.get(bad))!.error).toBe('boom failed');
  });

  it('close() takes no new jobs and waits for those accepted', async () => {
    const f = fakeRunner();
    const q = new LocalQueue(f.run);
    const a = await q.submit(spec('a'));
    const b = await q.submit(spec('b'));
    let closed = false;
    const closing = q.close().then(() => (closed = true));
    await expect(q.submit(spec('late'))).rejects.toBeInstanceOf(ShuttingDownError);
    await f.releaseNext();
    await settle();
    expect(closed).toBe(false); // b has not run yet
    await f.releaseNext();
    await closing;
    expect([(await q.get(a))!.state, (await q.get(b))!.state]).toEqual(['done', 'done']);
  });

  it('forgets the oldest finished jobs beyond keep', async () => {
    const f = fakeRunner();
    const q = new LocalQueue(f.run, { keep: 2 });
    const ids = [await q.submit(spec('1')), await q.submit(spec('2')), await q.submit(spec('3'))];
    for (let i = 0; i < 3; i++) await f.releaseNext();
    await q.close();
    expect(await q.get(ids[0]!)).toBeUndefined();
    expect((await q.get(ids[2]!))!.state).toBe('done');
  });
});

describe('retryAfterSeconds', () => {
  it('is the queue length times the seconds a job, over the workers, in [1, 60]', () => {
    expect(retryAfterSeconds(10, 0.5)).toBe(5);
    expect(retryAfterSeconds(10, 0.5, 2)).toBe(3);
    expect(retryAfterSeconds(0, 1)).toBe(1);
    expect(retryAfterSeconds(1000, 2)).toBe(60);
  });
});
