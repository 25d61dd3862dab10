/**
 * Scale-out over Redis with BullMQ: the server's side (RedisQueue: puts jobs on the queue, follows
 * their progress and results through QueueEvents) and the workers' side (startWorker: takes jobs one
 * at a time and runs them). Results and progress travel through BullMQ itself (job progress events
 * and return values), so any number of workers on any machine can serve one or more servers.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import {
  DEFAULT_QUEUE_NAME,
  QueueFullError,
  ShuttingDownError,
  retryAfterSeconds,
  type JobEvent,
  type JobProgress,
  type JobQueue,
  type JobResult,
  type JobSpec,
  type JobState,
  type JobView,
} from './jobs.js';
import type { JobRunner } from './runner.js';

/** A Redis connection for BullMQ (which needs maxRetriesPerRequest: null), checked to answer within `timeoutMs`. */
export async function connectRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`--queue must be a redis:// URL, got '${url}'`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new UserError(`--queue must be a redis:// or rediss:// URL, got '${url}'`);
  const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: (n) => Math.min(n * 200, 2000) });
  client.on('error', () => {}); // reconnects on its own; a failed first connection is reported below
  try {
    await Promise.race([client.connect().then(() => client.ping()), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs))]);
  } catch (err) {
    client.disconnect();
    throw new UserError(`cannot reach Redis at ${parsed.host} (${(err as Error).message})`);
  }
  return client;
}

const STATES: Record<string, JobState> = { completed: 'done', failed: 'failed', active: 'running' };

export interface RedisQueueOptions {
  name?: string;
  /** Jobs that may wait before submit answers 429 (default 64). */
  maxQueue?: number;
}

/** The server's side of the BullMQ queue. */
export class RedisQueue implements JobQueue {
  readonly mode = 'redis' as const;
  private readonly emitter = new EventEmitter();
  private readonly finishedListeners: ((job: JobView) => void)[] = [];
  private closing = false;
  private recent: number[] = [];

  private constructor(
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly clients: Redis[],
    private readonly maxQueue: number,
  ) {
    this.emitter.setMaxListeners(0);
    events.on('active', ({ jobId }) => this.emitter.emit(jobId, { type: 'running' } satisfies JobEvent));
    events.on('progress', ({ jobId, data }) => this.emitter.emit(jobId, { type: 'progress', progress: data as JobProgress } satisfies JobEvent));
    events.on('completed', ({ jobId, returnvalue }) => {
      const seconds = (returnvalue as unknown as JobResult | undefined)?.seconds;
      if (typeof seconds === 'number') this.recent = [...this.recent.slice(-19), seconds];
      this.emitter.emit(jobId, { type: 'done' } satisfies JobEvent);
      void this.finished(jobId);
    });
    events.on('failed', ({ jobId, failedReason }) => {
      this.emitter.emit(jobId, { type: 'failed', error: failedReason } satisfies JobEvent);
      void this.finished(jobId);
    });
  }

  static async open(url: string, opts: RedisQueueOptions = {}): Promise<RedisQueue> {
    const name = opts.name ?? DEFAULT_QUEUE_NAME;
    const a = await connectRedis(url);
    const b = await connectRedis(url).catch((err) => {
      a.disconnect();
      throw err;
    });
    const queue = new Queue(name, { connection: a });
    const events = new QueueEvents(name, { connection: b });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new RedisQueue(queue, events, [a, b], opts.maxQueue ?? 64);
  }

  async submit(spec: JobSpec): Promise<string> {
    if (this.closing) throw new ShuttingDownError();
    const { waiting } = await this.counts();
    if (waiting >= this.maxQueue) {
      const mean = this.recent.length ? this.recent.reduce((a, b) => a + b, 0) / this.recent.length : 1;
      const workers = (await this.queue.getWorkersCount().catch(() => 1)) || 1;
      throw new QueueFullError(retryAfterSeconds(waiting + 1, mean, workers));
    }
    const id = randomUUID();
    await this.queue.add(spec.kind, spec, { jobId: id, attempts: 1, removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 86_400, count: 1000 } });
    return id;
  }

  async get(id: string): Promise<JobView | undefined> {
    // The state first, then the job: a job read before it finished and its state read after would
    // look done without its result. BullMQ stores the result and moves the job to completed in one
    // step, so a job whose state was read as completed has its result when it is read after.
    const state = STATES[await this.queue.getJobState(id)] ?? 'queued';
    const job = await Job.fromId<JobSpec, JobResult>(this.queue, id);
    if (!job) return undefined;
    const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as JobProgress) : undefined;
    const { previews: _p, ...rest } = progress ?? ({} as JobProgress);
    return {
      id,
      kind: job.data.kind,
      state,
      ...(progress ? { progress: rest } : {}),
      createdAt: job.timestamp,
      ...(job.processedOn ? { startedAt: job.processedOn } : {}),
      ...(state === 'done' || state === 'failed' ? { finishedAt: job.finishedOn } : {}),
      ...(state === 'failed' ? { error: job.failedReason } : {}),
      ...(state === 'done' ? { result: job.returnvalue } : {}),
    };
  }

  subscribe(id: string, listener: (e: JobEvent) => void): () => void {
    this.emitter.on(id, listener);
    return () => this.emitter.off(id, listener);
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0), active: c.active ?? 0 };
  }

  onFinished(listener: (job: JobView) => void): void {
    this.finishedListeners.push(listener);
  }

  /** Takes no new jobs and closes its connections; queued jobs stay in Redis for the workers. */
  async close(): Promise<void> {
    this.closing = true;
    await this.events.close();
    await this.queue.close();
    for (const c of this.clients) c.disconnect();
  }

  private async finished(id: string): Promise<void> {
    if (this.finishedListeners.length === 0) return;
    const view = await this.get(id).catch(() => undefined);
    if (view) for (const l of this.finishedListeners) l(view);
  }
}

export interface WorkerOptions {
  url: string;
  runner: JobRunner;
  name?: string;
  /** A job fails after this long (ms). */
  timeoutMs?: number;
  /** BullMQ's lock on a running job (ms): a worker that dies loses its job to another after about this long. */
  lockDuration?: number;
  /** How often workers look for stalled jobs (ms). */
  stalledInterval?: number;
  /** Each job taken and finished (for logs and metrics). */
  onJob?: (e: { id: string; event: 'active' | 'completed' | 'failed'; job: Pick<JobView, 'kind' | 'state' | 'createdAt' | 'finishedAt'>; error?: string; seconds?: number }) => void;
}

/** A BullMQ worker that runs jobs one at a time on `runner`. `close()` finishes the job in hand first. */
export async function startWorker(o: WorkerOptions): Promise<{ worker: Worker; close: () => Promise<void> }> {
  const connection = await connectRedis(o.url);
  const worker = new Worker<JobSpec, JobResult>(
    o.name ?? DEFAULT_QUEUE_NAME,
    async (job) => {
      o.onJob?.({ id: job.id!, event: 'active', job: { kind: job.data.kind, state: 'running', createdAt: job.timestamp } });
      return o.runner.run(job.data, { timeoutMs: o.timeoutMs, onProgress: (p) => job.updateProgress(p) });
    },
    {
      connection,
      concurrency: 1,
      ...(o.lockDuration !== undefined ? { lockDuration: o.lockDuration } : {}),
      ...(o.stalledInterval !== undefined ? { stalledInterval: o.stalledInterval } : {}),
      maxStalledCount: 1,
    },
  );
  const view = (job: Job<JobSpec>, state: JobState) => ({ kind: job.data.kind, state, createdAt: job.timestamp, finishedAt: job.finishedOn ?? Date.now() });
  worker.on('completed', (job, result) => o.onJob?.({ id: job.id!, event: 'completed', job: view(job, 'done'), seconds: result.seconds }));
  worker.on('failed', (job, err) => job && o.onJob?.({ id: job.id!, event: 'failed', job: view(job, 'failed'), error: err.message }));
  worker.on('error', () => {}); // connection hiccups: BullMQ reconnects
  await worker.waitUntilReady();
  return {
    worker,
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}

