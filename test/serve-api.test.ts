/**
 * The HTTP API on the embedded queue with the shipped model (few, small generations: n = 1, 4
 * steps): jobs, server-sent events with previews that fill in, PNG results, edits, validation and
 * limits, 429, the API key, metrics, timeouts, and no tensor left behind.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, encodePngBytes } from '../src/data/png.js';
import { LocalQueue } from '../src/serve/local-queue.js';
import { loadRunner } from '../src/serve/lifecycle.js';
import { createMetrics, metricValue } from '../src/serve/metrics.js';
import { buildServer, type MaskgenServer } from '../src/serve/server.js';
import type { JobRunner } from '../src/serve/runner.js';
import type { MaskgenPipeline } from '../src/pipeline.js';
import { readEvents } from './helpers/serve.js';

const BUNDLE = path.resolve(import.meta.dirname, '..', 'models', 'maskgen-emoji-small');
let pipe: MaskgenPipeline;
let runner: JobRunner;
let server: MaskgenServer;
let base: string;
/** Jobs start only once this resolves: a test can open a job's event stream before it runs. */
let gate: Promise<void> = Promise.resolve();
function closeGate(): () => void {
  let open = () => {};
  gate = new Promise((resolve) => (open = resolve));
  return () => {
    open();
    gate = Promise.resolve();
  };
}

async function start(o: { maxQueue?: number; timeoutMs?: number; apiKey?: string } = {}) {
  const queue = new LocalQueue(async (spec, ctx) => (await gate, runner.run(spec, ctx)), { maxQueue: o.maxQueue, timeoutMs: o.timeoutMs });
  const s = await buildServer({ queue, metrics: createMetrics({ counts: () => queue.counts() }), apiKey: o.apiKey, info: { bundle: BUNDLE } });
  const url = await s.app.listen({ port: 0, host: '127.0.0.1' });
  return { server: s, url };
}

beforeAll(async () => {
  ({ pipe, runner } = await loadRunner(BUNDLE, tf.getBackend()));
  ({ server, url: base } = await start());
});

afterAll(async () => {
  await server?.shutdown();
  pipe?.dispose();
});

const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const png = async (url: string) => decodePng(new Uint8Array(await (await fetch(base + url)).arrayBuffer()))!;
const dataUrlPng = (u: string) => decodePng(Buffer.from(u.replace(/^data:image\/png;base64,/, ''), 'base64'))!;
/** Patches (4 × 4 pixels, the model's) that are flat grey 128: still masked in a preview. */
function greyPatches(im: { data: Uint8Array; width: number }): number {
  let count = 0;
  const g = im.width / 4;
  for (let i = 0; i < g * g; i++) {
    let grey = true;
    for (let y = 0; y < 4 && grey; y++) for (let x = 0; x < 4 && grey; x++) for (let c = 0; c < 3; c++) grey &&= im.data[((Math.floor(i / g) * 4 + y) * im.width + (i % g) * 4 + x) * 3 + c] === 128;
    if (grey) count++;
  }
  return count;
}

describe('POST /v1/generate and the job', () => {
  it('streams a preview per decoding step that fills in, then the result; its PNG is the last preview', async () => {
    const open = closeGate();
    const res = await post('/v1/generate', { prompts: ['green heart'], steps: 4, seed: 3, refine: false });
    expect(res.status).toBe(202);
    const job = (await res.json()) as { id: string; events: string };
    const events = await readEvents(base + job.events, (e) => e.event === 'state' && open());
    const steps = events.filter((e) => e.event === 'step');
    // (the job was taken, so 'running', before the gate let it start)
    expect(events.map((e) => e.event)).toEqual(['state', 'step', 'step', 'step', 'step', 'done']);
    expect(events[0]!.data.state).toBe('running');
    expect(steps.at(-1)!.data).toMatchObject({ step: 4, total: 4 });
    const previews = steps.map((e) => dataUrlPng((e.data.previews as string[])[0]!));
    expect(previews[0]!.width).toBe(32);
    const grey = previews.map(greyPatches);
    expect(grey.at(-1)).toBe(0);
    expect(grey[0]!).toBeGreaterThan(0);
    for (let i = 1; i < grey.length; i++) expect(grey[i]!).toBeLessThanOrEqual(grey[i - 1]!);

    const done = events.at(-1)!.data as { state: string; result: { images: { url: string; settings: Record<string, unknown> }[] } };
    expect(done.state).toBe('done');
    expect(done.result.images[0]!.settings).toMatchObject({ prompt: 'green heart', seed: 3, steps: 4, guidance: 3, refine: false });
    const image = await png(done.result.images[0]!.url);
    expect([image.width, image.height, image.channels]).toEqual([32, 32, 3]);
    expect(Buffer.from(image.data).equals(Buffer.from(previews.at(-1)!.data))).toBe(true);
    // GET /v1/jobs/:id says the same
    const view = (await (await fetch(`${base}/v1/jobs/${job.id}`)).json()) as Record<string, unknown>;
    expect(view).toMatchObject({ id: job.id, state: 'done', kind: 'generate' });
  });

  it('?wait=true answers with the finished job; the same seed gives the same PNG, the refiner 64 px', async () => {
    const body = { prompts: ['fire'], steps: 3, seed: 7, refine: true, refineSteps: 2 };
    const [a, b] = [await post('/v1/generate?wait=true', body), await post('/v1/generate?wait=true', body)];
    expect([a.status, b.status]).toEqual([200, 200]);
    const [ja, jb] = (await Promise.all([a.json(), b.json()])) as { result: { images: { url: string; base: string }[] } }[];
    const bytes = async (u: string) => Buffer.from(await (await fetch(base + u)).arrayBuffer());
    expect((await bytes(ja!.result.images[0]!.url)).equals(await bytes(jb!.result.images[0]!.url))).toBe(true);
    expect((await png(ja!.result.images[0]!.url)).width).toBe(64);
    expect((await png(ja!.result.images[0]!.base)).width).toBe(32);
  });

  it('rejects bad input with 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{}, 'prompts'],
      [{ prompts: 'fire' }, 'prompts'],
      [{ prompts: ['  '] }, 'prompts.0'],
      [{ prompts: ['x'.repeat(201)] }, 'prompts.0'],
      [{ prompts: ['a', 'b', 'c', 'd', 'e'] }, 'prompts'],
      [{ prompts: ['a'], n: 5 }, 'n'],
      [{ prompts: ['a', 'b', 'c'], n: 3 }, 'n'],
      [{ prompts: ['a'], steps: 65 }, 'steps'],
      [{ prompts: ['a'], steps: 1.5 }, 'steps'],
      [{ prompts: ['a'], guidance: -1 }, 'guidance'],
      [{ prompts: ['a'], seed: -1 }, 'seed'],
      [{ prompts: ['a'], refine: 'yes' }, 'refine'],
      [{ prompts: ['a'], negativePrompt: 'x'.repeat(201) }, 'negativePrompt'],
      [{ prompts: ['a'], sneaky: 1 }, 'sneaky'],
      ['{not json', 'body'],
    ];
    for (const [body, field] of cases) {
      const res = await post('/v1/generate', body);
      const json = (await res.json()) as { error: string; field: string };
      expect([res.status, json.field], JSON.stringify(body)).toEqual([400, field]);
      expect(json.error.length).toBeGreaterThan(5);
    }
    const big = await post('/v1/generate', { prompts: ['a'], pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { field: string }).field).toBe('body');
  });

  it('404s an unknown job', async () => {
    const res = await fetch(`${base}/v1/jobs/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { field: string }).field).toBe('id');
  });
});

/** A 32 × 32 RGB test picture: left half red, right half blue. */
function testImage(size = 32): Buffer {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data.set(x < size / 2 ? [220, 30, 30] : [30, 60, 220], (y * size + x) * 3);
  return encodePngBytes(data, size, size, 3);
}

const edit = (fields: Record<string, string>, files: Record<string, Buffer> = {}) => {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const [k, v] of Object.entries(files)) form.append(k, new Blob([new Uint8Array(v)], { type: 'image/png' }), `${k}.png`);
  return fetch(`${base}/v1/edit?wait=true`, { method: 'POST', body: form });
};

describe('POST /v1/edit', () => {
  it('inpaints a box: only its tokens are regenerated and the pixels outside it are the original', async () => {
    const res = await edit({ mode: 'inpaint', prompt: 'fire', box: '0,16,32,16', steps: '3', seed: '1' }, { image: testImage() });
    expect(res.status).toBe(200);
    const job = (await res.json()) as { result: { before: string; images: { url: string; settings: { regenerated: number[]; kept: number } }[] } };
    const { regenerated, kept } = job.result.images[0]!.settings;
    expect(regenerated.length).toBe(32); // the lower 4 of 8 token rows
    expect(regenerated.every((i) => Math.floor(i / 8) >= 4)).toBe(true);
    expect(kept).toBeGreaterThanOrEqual(0.5);
    const before = await png(job.result.before);
    const after = await png(job.result.images[0]!.url);
    const rowsAbove = 32 * 12 * 3; // well above the box and its feathered edge
    expect(Buffer.from(after.data.subarray(0, rowsAbove)).equals(Buffer.from(before.data.subarray(0, rowsAbove)))).toBe(true);
  });

  it('inpaints through a mask PNG, and outpaints with extend', async () => {
    const mask = new Uint8Array(32 * 32);
    mask.fill(255, 0, 32 * 8); // the top 8 rows: token rows 0 and 1
    const res = await edit({ mode: 'inpaint', prompt: 'sun', steps: '2' }, { image: testImage(), mask: encodePngBytes(mask, 32, 32, 1) });
    const job = (await res.json()) as { result: { images: { settings: { regenerated: number[] } }[] } };
    expect(job.result.images[0]!.settings.regenerated).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const out = await edit({ mode: 'outpaint', prompt: 'two hearts', extend: '0,0,16,0', steps: '2' }, { image: testImage() });
    const outJob = (await out.json()) as { result: { images: { url: string }[] } };
    expect((await png(outJob.result.images[0]!.url)).width).toBe(48);
  });

  it('rejects bad edits with 400 (413 for a file too large) naming the field', async () => {
    const img = testImage();
    const cases: [Record<string, string>, Record<string, Buffer>, string][] = [
      [{ mode: 'inpaint', prompt: 'x', box: '0,0,8,8' }, {}, 'image'],
      [{ mode: 'paint', prompt: 'x' }, { image: img }, 'mode'],
      [{ mode: 'inpaint', prompt: '', box: '0,0,8,8' }, { image: img }, 'prompt'],
      [{ mode: 'inpaint', prompt: 'x' }, { image: img }, 'mask'],
      [{ mode: 'inpaint', prompt: 'x', box: '0,0,40,8' }, { image: img }, 'box'],
      [{ mode: 'inpaint', prompt: 'x', box: '0,0,8' }, { image: img }, 'box'],
      [{ mode: 'inpaint', prompt: 'x' }, { image: img, mask: testImage(16) }, 'mask'],
      [{ mode: 'outpaint', prompt: 'x' }, { image: img }, 'extend'],
      [{ mode: 'outpaint', prompt: 'x', extend: '0,0,0,0' }, { image: img }, 'extend'],
      [{ mode: 'outpaint', prompt: 'x', extend: '0,0,9999,0' }, { image: img }, 'extend'],
      [{ mode: 'mask-free', prompt: 'x', box: '0,0,8,8' }, { image: img }, 'box'],
      [{ mode: 'mask-free', prompt: 'x', strength: '2' }, { image: img }, 'strength'],
      [{ mode: 'mask-free', prompt: 'x', steps: 'many' }, { image: img }, 'steps'],
      [{ mode: 'mask-free', prompt: 'x', colour: 'red' }, { image: img }, 'colour'],
      [{ mode: 'mask-free', prompt: 'x' }, { image: Buffer.from('not a picture') }, 'image'],
    ];
    for (const [fields, files, field] of cases) {
      const res = await edit(fields, files);
      const json = (await res.json()) as { field: string };
      expect([res.status, json.field], JSON.stringify(fields)).toEqual([400, field]);
    }
    const huge = await edit({ mode: 'mask-free', prompt: 'x' }, { image: Buffer.alloc(3 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { field: string }).field).toBe('image');
  });
});

describe('limits, keys, metrics', () => {
  it('answers 429 with Retry-After when the queue is full', async () => {
    const { server: s, url } = await start({ maxQueue: 1 });
    try {
      const send = () => fetch(`${url}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompts: ['fire'], steps: 2, refine: false }) });
      const open = closeGate(); // the first job is taken but does not finish before the third request
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push(await send());
      open();
      expect(statuses.map((r) => r.status)).toEqual([202, 202, 429]);
      expect(Number(statuses[2]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      await s.shutdown();
    }
  });

  it('fails a job that outlives its timeout, and the next job still runs', async () => {
    const { server: s, url } = await start({ timeoutMs: 1 });
    try {
      const res = await fetch(`${url}/v1/generate?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompts: ['fire'], steps: 4, refine: false }) });
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: string }).error).toMatch(/timeout/);
    } finally {
      await s.shutdown();
    }
    const ok = await post('/v1/generate?wait=true', { prompts: ['fire'], steps: 2, refine: false });
    expect(ok.status).toBe(200);
  });

  it('checks the API key on /v1 and /metrics, not on the page or /healthz', async () => {
    const key = 'k3y-for-the-test';
    const { server: s, url } = await start({ apiKey: key });
    try {
      const body = JSON.stringify({ prompts: ['fire'], steps: 1, refine: false });
      const gen = (headers: Record<string, string>) => fetch(`${url}/v1/generate?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect((await gen({})).status).toBe(401);
      expect((await gen({ authorization: 'Bearer wrong-key-000' })).status).toBe(401);
      expect((await gen({ authorization: `Bearer ${key}` })).status).toBe(200);
      expect((await gen({ 'x-api-key': key })).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>maskgen</title>');
    } finally {
      await s.shutdown();
    }
  });

  it('exports Prometheus metrics; generations leave no tensor behind', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) expect((await post('/v1/generate?wait=true', { prompts: ['fire'], steps: 2, seed: i, refine: true, refineSteps: 1 })).status).toBe(200);
    expect(tf.memory().numTensors).toBe(before);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(text, 'maskgen_tfjs_tensors')).toBe(before);
    expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(text).toMatch(/maskgen_jobs_total\{kind="generate",outcome="done"\} \d+/);
    expect(text).toMatch(/maskgen_job_seconds_count\{kind="edit"\} [1-9]/);
    expect(text).toContain('maskgen_queue_jobs{state="waiting"} 0');
  });
});
