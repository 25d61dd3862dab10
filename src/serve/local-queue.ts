/**
 * The embedded queue: jobs run in this process, one at a time (the backend is not re-entrant),
 * the others wait in a bounded FIFO. Finished jobs are kept for a while so their results can be
 * fetched, then forgotten (the oldest first beyond `keep`).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { QueueFullError, ShuttingDownError, retryAfterSeconds, type JobEvent, type JobQueue, type JobResult, type JobSpec, type JobView } from './jobs.js';
import type { RunContext } from './runner.js';

export interface LocalQueueOptions {
  /** Jobs that may wait (not counting the one running); one more gets 429. Default 64. */
  maxQueue?: number;
  /** A job fails after this long (ms). Default 120 000. */
  timeoutMs?: number;
  /** Finished jobs kept for their results. Default 1000. */
  keep?: number;
  /** …and for at most this long (ms). Default one hour. */
  keepMs?: number;
}

type Run = (spec: JobSpec, ctx: RunContext) => Promise<JobResult>;

interface Entry {
  view: JobView;
  spec?: JobSpec;
}

export class LocalQueue implements JobQueue {
  readonly mode = 'embedded' as const;
  private readonly jobs = new Map<string, Entry>();
  private readonly waiting: string[] = [];
  private readonly finished: string[] = [];
  private readonly events = new EventEmitter();
  private readonly finishedListeners: ((job: JobView) => void)[] = [];
  private active: string | undefined;
  private closing = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};
  /** Recent job durations (s), for Retry-After. */
  private recent: number[] = [];
  private readonly opts: Required<LocalQueueOptions>;

  constructor(
    private readonly run: Run,
    opts: LocalQueueOptions = {},
  ) {
    this.opts = { maxQueue: 64, timeoutMs: 120_000, keep: 1000, keepMs: 3_600_000, ...opts };
    this.events.setMaxListeners(0);
  }

  async submit(spec: JobSpec): Promise<string> {
    if (this.closing) throw new ShuttingDownError();
    if (this.waiting.length >= this.opts.maxQueue) {
      const mean = this.recent.length ? this.recent.reduce((a, b) => a + b, 0) / this.recent.length : 1;
      throw new QueueFullError(retryAfterSeconds(this.waiting.length + 1, mean));
    }
    const id = randomUUID();
    this.jobs.set(id, { view: { id, kind: spec.kind, state: 'queued', createdAt: Date.now() }, spec });
    this.waiting.push(id);
    if (this.active === undefined) void this.pump();
    return id;
  }

  async get(id: string): Promise<JobView | undefined> {
    return this.jobs.get(id)?.view;
  }

  subscribe(id: string, listener: (e: JobEvent) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    return { waiting: this.waiting.length, active: this.active === undefined ? 0 : 1 };
  }

  onFinished(listener: (job: JobView) => void): void {
    this.finishedListeners.push(listener);
  }

  /** Takes no new jobs; resolves once every accepted job has finished. */
  async close(): Promise<void> {
    this.closing = true;
    await this.idle;
  }

  private async pump(): Promise<void> {
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    for (let id = this.waiting.shift(); id !== undefined; id = this.waiting.shift()) {
      const entry = this.jobs.get(id)!;
      const spec = entry.spec!;
      this.active = id;
      entry.view = { ...entry.view, state: 'running', startedAt: Date.now() };
      this.events.emit(id, { type: 'running' } satisfies JobEvent);
      try {
        const result = await this.run(spec, {
          timeoutMs: this.opts.timeoutMs,
          onProgress: (progress) => {
            const { previews: _p, ...rest } = progress;
            entry.view = { ...entry.view, progress: rest };
            this.events.emit(id, { type: 'progress', progress } satisfies JobEvent);
          },
        });
        entry.view = { ...entry.view, state: 'done', finishedAt: Date.now(), result };
        this.recent = [...this.recent.slice(-19), result.seconds];
        this.events.emit(id, { type: 'done' } satisfies JobEvent);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        entry.view = { ...entry.view, state: 'failed', finishedAt: Date.now(), error };
        this.events.emit(id, { type: 'failed', error } satisfies JobEvent);
      }
      entry.spec = undefined; // the uploaded image is not needed any more
      this.active = undefined;
      for (const l of this.finishedListeners) l(entry.view);
      this.finished.push(id);
      this.forget();
    }
    this.markIdle();
  }

  /** Drops finished jobs beyond `keep` or older than `keepMs`. */
  private forget(): void {
    const now = Date.now();
    while (this.finished.length > 0) {
      const oldest = this.jobs.get(this.finished[0]!)!;
      if (this.finished.length <= this.opts.keep && now - (oldest.view.finishedAt ?? now) <= this.opts.keepMs) break;
      this.jobs.delete(this.finished.shift()!);
    }
  }
}
