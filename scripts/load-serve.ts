/**
 * Load test of `maskgen serve`: N generations (default 1,000) from C concurrent clients (default 16)
 * with autocannon, each request POST /v1/generate?wait=true (answered when its image is done, so
 * latency is queueing plus generating), first against the embedded server, then against a server
 * on a BullMQ queue with W workers (default 2) on a throwaway redis-server. Prints JSON: throughput,
 * p50/p99 latency, 429 and 5xx counts, and the RSS and live tfjs tensors of the processes that run
 * the model before and after (after a short warm-up, so first-call allocations are not counted).
 *
 *   nice -n 15 npx tsx scripts/load-serve.ts --backend onnx --steps 8 --out runs/load-serve.json
 */
import { writeFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { metricValue } from '../src/serve/metrics.js';
import { startMaskgen, startRedis, which, type MaskgenProcess } from '../test/helpers/serve.js';

const args = await yargs(hideBin(process.argv))
  .option('mode', { choices: ['embedded', 'redis', 'both'] as const, default: 'both' as const })
  .option('requests', { type: 'number', default: 1000 })
  .option('connections', { type: 'number', default: 16 })
  .option('workers', { type: 'number', default: 2 })
  .option('steps', { type: 'number', default: 8, describe: 'decoding steps per generation' })
  .option('refine', { type: 'boolean', default: false, describe: 'run the refiner on each image' })
  .option('backend', { type: 'string', default: 'onnx' })
  .option('threads', { type: 'number', describe: 'onnx threads per model process (default: all cores embedded, 1 per worker)' })
  .option('max-queue', { type: 'number', default: 64 })
  .option('warmup', { type: 'number', default: 8, describe: 'generations before measuring' })
  .option('out', { type: 'string', describe: 'also write the JSON here' })
  .strict()
  .parse();

const body = { prompts: ['green heart'], n: 1, steps: args.steps, refine: args.refine, guidance: 3 };

/** RSS (MB) and live tfjs tensors from a /metrics URL. */
async function memory(url: string): Promise<{ rssMB: number; tensors: number | undefined }> {
  const text = await (await fetch(url)).text();
  return { rssMB: Math.round((metricValue(text, 'process_resident_memory_bytes') ?? NaN) / 2 ** 20), tensors: metricValue(text, 'maskgen_tfjs_tensors') };
}

async function generateOnce(base: string, seed: number): Promise<void> {
  const res = await fetch(`${base}/v1/generate?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, seed }) });
  if (res.status !== 200) throw new Error(`warm-up generation: HTTP ${res.status} ${await res.text()}`);
}

/** Warms up, measures memory, fires the load, measures again. */
async function measure(base: string, models: Record<string, string>) {
  for (let i = 0; i < args.warmup; i++) await generateOnce(base, 1_000_000 + i);
  const before = Object.fromEntries(await Promise.all(Object.entries(models).map(async ([k, u]) => [k, await memory(u)] as const)));
  let seed = 0;
  const t0 = Date.now();
  const r = await autocannon({
    url: base,
    connections: args.connections,
    amount: args.requests,
    timeout: 300,
    requests: [
      {
        method: 'POST',
        path: '/v1/generate?wait=true',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ ...body, seed: seed++ }) }),
      },
    ],
  });
  const seconds = (Date.now() - t0) / 1000;
  const after = Object.fromEntries(await Promise.all(Object.entries(models).map(async ([k, u]) => [k, await memory(u)] as const)));
  const ok = r.statusCodeStats['200']?.count ?? 0;
  return {
    requests: args.requests,
    connections: args.connections,
    seconds,
    generationsPerSecond: Number((ok / seconds).toFixed(2)),
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: Math.round(r.latency.mean) },
    status: Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count])),
    count429: r.statusCodeStats['429']?.count ?? 0,
    count5xx: r['5xx'],
    errors: r.errors,
    timeouts: r.timeouts,
    memoryBefore: before,
    memoryAfter: after,
  };
}

async function stop(p: MaskgenProcess): Promise<void> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
  await p.exited;
}

const threadsFlag = (n: number | undefined) => (n === undefined ? [] : ['--threads', String(n)]);
const results: Record<string, unknown> = {
  settings: { ...body, backend: args.backend, requests: args.requests, connections: args.connections, warmup: args.warmup, maxQueue: args.maxQueue },
};

if (args.mode !== 'redis') {
  process.stderr.write('load-serve: embedded server\n');
  const server = startMaskgen(['serve', '--port', '0', '--backend', args.backend, '--max-queue', String(args.maxQueue), ...threadsFlag(args.threads)]);
  try {
    const { url } = (await server.ready) as { url: string };
    results.embedded = await measure(url, { server: `${url}/metrics` });
  } finally {
    await stop(server);
  }
}

if (args.mode !== 'embedded') {
  if (!which('redis-server')) throw new Error('load-serve: redis-server is not installed (apt-get install redis-server)');
  process.stderr.write(`load-serve: server on BullMQ with ${args.workers} workers\n`);
  const redis = await startRedis();
  const procs: MaskgenProcess[] = [];
  try {
    const workers = Array.from({ length: args.workers }, () =>
      startMaskgen(['worker', '--queue', redis.url, '--backend', args.backend, '--metrics-port', '0', ...threadsFlag(args.threads ?? 1)]),
    );
    procs.push(...workers);
    const server = startMaskgen(['serve', '--port', '0', '--queue', redis.url, '--max-queue', String(args.maxQueue)]);
    procs.push(server);
    const { url } = (await server.ready) as { url: string };
    const models: Record<string, string> = { server: `${url}/metrics` };
    for (const [i, w] of workers.entries()) models[`worker${i + 1}`] = String((await w.ready).metrics);
    results.redis = { workers: args.workers, ...(await measure(url, models)) };
  } finally {
    for (const p of procs.reverse()) await stop(p);
    await redis.stop();
  }
}

const json = JSON.stringify(results);
if (args.out) await writeFile(args.out, JSON.stringify(results, null, 2) + '\n');
process.stdout.write(json + '\n');
