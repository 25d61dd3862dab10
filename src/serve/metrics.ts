/**
 * Prometheus metrics (prom-client), one registry per server or worker: queue depth, jobs done and
 * failed, job latency, live tfjs tensors and bytes, and prom-client's process metrics (resident
 * memory, heap, event loop lag, …).
 */
import * as tf from '@tensorflow/tfjs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobView } from './jobs.js';

export interface Metrics {
  registry: Registry;
  /** Counts a finished job and its latency (queued → finished). */
  finished(job: Pick<JobView, 'kind' | 'state' | 'createdAt' | 'finishedAt'>): void;
  /** The Prometheus text. */
  text(): Promise<string>;
}

export function createMetrics(o: { counts?: () => Promise<{ waiting: number; active: number }> } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counts = o.counts;
  if (counts) {
    new Gauge({
      name: 'maskgen_queue_jobs',
      help: 'Jobs in the queue by state (waiting, active)',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const c = await counts().catch(() => undefined);
        if (!c) return;
        this.set({ state: 'waiting' }, c.waiting);
        this.set({ state: 'active' }, c.active);
      },
    });
  }
  const jobs = new Counter({ name: 'maskgen_jobs_total', help: 'Finished jobs by kind and outcome (done, failed)', labelNames: ['kind', 'outcome'], registers: [registry] });
  const latency = new Histogram({
    name: 'maskgen_job_seconds',
    help: 'Seconds from a job being queued to its end',
    labelNames: ['kind'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  new Gauge({
    name: 'maskgen_tfjs_tensors',
    help: 'Live tfjs tensors in this process',
    registers: [registry],
    collect() {
      this.set(tf.memory().numTensors);
    },
  });
  new Gauge({
    name: 'maskgen_tfjs_bytes',
    help: 'Bytes held by live tfjs tensors in this process',
    registers: [registry],
    collect() {
      this.set(tf.memory().numBytes);
    },
  });
  return {
    registry,
    finished(job) {
      jobs.inc({ kind: job.kind, outcome: job.state === 'done' ? 'done' : 'failed' });
      if (job.finishedAt !== undefined) latency.observe({ kind: job.kind }, (job.finishedAt - job.createdAt) / 1000);
    },
    text: () => registry.metrics(),
  };
}

/** One sample's value from Prometheus text (no labels), or undefined. */
export function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
