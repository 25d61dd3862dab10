/**
 * Scale-out over a real redis-server: the server puts jobs on BullMQ, two `maskgen worker`
 * processes run them, progress (with previews) and results come back through BullMQ. One worker is
 * SIGKILLed mid-job: its job is retried by the other (stalled-job handling, with a short lock in the
 * test) and every job is done exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/data/png.js';
import type { JobEvent, JobView } from '../src/serve/jobs.js';
import { createMetrics } from '../src/serve/metrics.js';
import { RedisQueue } from '../src/serve/redis.js';
import { buildServer, type MaskgenServer } from '../src/serve/server.js';
import { readEvents, startMaskgen, startRedis, waitFor, which, type MaskgenProcess } from './helpers/serve.js';

const haveRedis = which('redis-server') !== undefined;
if (!haveRedis) console.warn('serve-redis: redis-server is not installed (apt-get install redis-server): skipping the BullMQ scale-out tests');

describe.skipIf(!haveRedis)('maskgen serve --queue redis:// with two maskgen workers', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let queue: RedisQueue;
  let server: MaskgenServer;
  let base: string;
  const workers: MaskgenProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const backend = process.env.MASKGEN_TEST_BACKEND ?? 'wasm';
    for (let i = 0; i < 2; i++) {
      workers.push(startMaskgen(['worker', '--queue', redis.url, '--backend', backend, '--threads', '1', '--lock-duration', '2000', '--stalled-interval', '1000']));
    }
    queue = await RedisQueue.open(redis.url);
    server = await buildServer({ queue, metrics: createMetrics({ counts: () => queue.counts() }) });
    base = await server.app.listen({ port: 0, host: '127.0.0.1' });
    await Promise.all(workers.map((w) => w.ready));
  });

  afterAll(async () => {
    await server?.shutdown();
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await redis?.stop();
  });

  it('runs a generation on a worker: previews and the PNG come back through BullMQ', async () => {
    const res = await fetch(`${base}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompts: ['green heart'], steps: 4, refine: false }) });
    expect(res.status).toBe(202);
    const { events: url } = (await res.json()) as { events: string };
    const events = await readEvents(base + url);
    expect(events.at(-1)!.event).toBe('done');
    const done = events.at(-1)!.data as unknown as { result: { worker: string; images: { url: string }[] } };
    const workerPids = await Promise.all(workers.map(async (w) => String((await w.ready).worker)));
    expect(workerPids).toContain(done.result.worker);
    const image = decodePng(new Uint8Array(await (await fetch(base + done.result.images[0]!.url)).arrayBuffer()))!;
    expect([image.width, image.height]).toEqual([32, 32]);
    // steps that arrived (the stream may open after the first) carry previews of the base size
    for (const e of events.filter((x) => x.event === 'step')) expect(decodePng(Buffer.from((e.data.previews as string[])[0]!.split(',')[1]!, 'base64'))!.width).toBe(32);
    const health = (await (await fetch(`${base}/healthz`)).json()) as { mode: string; queue: { waiting: number } };
    expect(health).toMatchObject({ mode: 'redis', queue: { waiting: 0 } });
  });

  it('a worker killed mid-job loses it to the other: every job done, each exactly once', async () => {
    const jobs = 4;
    const finishedTimes = new Map<string, number>();
    const byWorker = new Map<string, string[]>(); // worker → job ids it sent progress for
    let victim: { worker: string; job: string } | undefined;
    const ids: string[] = [];
    const body = JSON.stringify({ prompts: ['fire'], steps: 24, refine: false });
    for (let i = 0; i < jobs; i++) {
      const res = await fetch(`${base}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body.replace('"steps"', `"seed":${i},"steps"`) });
      const id = ((await res.json()) as { id: string }).id;
      ids.push(id);
      queue.subscribe(id, (e: JobEvent) => {
        if (e.type === 'done') finishedTimes.set(id, (finishedTimes.get(id) ?? 0) + 1);
        if (e.type !== 'progress') return;
        const w = e.progress.worker;
        byWorker.set(w, [...new Set([...(byWorker.get(w) ?? []), id])]);
        // Kill the first worker seen decoding, at its third step: mid-job.
        if (!victim && e.progress.step === 3) {
          victim = { worker: w, job: id };
          const pid = Number(w.split(':').at(-1));
          const proc = workers.find((p) => p.proc.pid === pid)!;
          proc.proc.kill('SIGKILL');
        }
      });
    }
    const views = await waitFor(
      async () => {
        const v = await Promise.all(ids.map((id) => queue.get(id)));
        return v.every((x) => x?.state === 'done' || x?.state === 'failed') ? (v as JobView[]) : undefined;
      },
      120_000,
      'every job to finish',
    );
    expect(victim).toBeDefined();
    const killed = workers.find((p) => victim!.worker.endsWith(`:${p.proc.pid}`))!;
    expect(await killed.exited).toBe(null); // killed by a signal
    expect(views.map((v) => v.state)).toEqual(Array(jobs).fill('done'));
    const victimView = views[ids.indexOf(victim!.job)]!;
    expect(victimView.result!.worker).not.toBe(victim!.worker); // finished by the other worker
    // the other worker took the job over after the kill
    const survivor = victimView.result!.worker;
    expect(byWorker.get(survivor)).toContain(victim!.job);
    // each job done once; nothing finished by the dead worker after it died
    await new Promise((r) => setTimeout(r, 500));
    expect(ids.map((id) => finishedTimes.get(id))).toEqual(Array(jobs).fill(1));
    expect(views.every((v) => v.result!.images.length === 1)).toBe(true);
  });
});
