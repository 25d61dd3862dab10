/**
 * The HTTP API and the web page (Fastify). Jobs go to a JobQueue (in-process or BullMQ); this file
 * validates requests, presents jobs as JSON with image URLs, streams their steps as server-sent
 * events and serves the images, the metrics and the page.
 *
 *   POST /v1/generate            JSON → 202 {id, url, events}  (?wait=true: 200 with the finished job, no previews)
 *   POST /v1/edit                multipart: image, mode, prompt, mask | box | extend, … → 202 {id, …}
 *   GET  /v1/jobs/:id            state, progress, result image URLs with their settings
 *   GET  /v1/jobs/:id/events     server-sent events: state, running, step (with previews), refine, done | failed
 *   GET  /v1/jobs/:id/images/F   F = 0.png, 0-base.png, before.png …
 *   GET  /healthz, GET /metrics, GET / (the page)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { boxToPixelMask } from '../decoding/index.js';
import { UserError } from '../errors.js';
import { packageRoot } from '../io/config.js';
import {
  EditFieldsSchema,
  GenerateRequestSchema,
  LIMITS,
  QueueFullError,
  ShuttingDownError,
  firstIssue,
  type EditJob,
  type JobEvent,
  type JobQueue,
  type JobSpec,
  type JobView,
} from './jobs.js';
import type { Metrics } from './metrics.js';

export interface ServerOptions {
  queue: JobQueue;
  metrics: Metrics;
  /** Requests to /v1/* and /metrics must carry it (Authorization: Bearer K, or X-API-Key: K). */
  apiKey?: string;
  /** Shown by /healthz. */
  info?: Record<string, unknown>;
  logger?: boolean;
}

export interface MaskgenServer {
  app: FastifyInstance;
  /** Stops taking jobs, lets those accepted finish (embedded), ends the event streams, closes. */
  shutdown(): Promise<void>;
}

/** An HTTP error with a JSON body naming the field at fault. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const STATIC_DIR = path.join(packageRoot(), 'src', 'serve', 'static');

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares a presented key with the expected one in constant time (both hashed to 32 bytes first). */
export function keyMatches(presented: string | undefined, expected: string): boolean {
  return timingSafeEqual(digest(presented ?? ''), digest(expected)) && presented !== undefined;
}

const finished = (v: JobView | undefined) => v !== undefined && (v.state === 'done' || v.state === 'failed');

/** A job as the API shows it: the result's PNGs replaced by their URLs. */
export function presentJob(view: JobView): Record<string, unknown> {
  const base = `/v1/jobs/${view.id}`;
  const { result, ...rest } = view;
  return {
    ...rest,
    url: base,
    events: `${base}/events`,
    ...(result
      ? {
          result: {
            kind: result.kind,
            seconds: result.seconds,
            worker: result.worker,
            backend: result.backend,
            ...(result.before ? { before: `${base}/images/before.png` } : {}),
            images: result.images.map((im, i) => ({
              url: `${base}/images/${i}.png`,
              ...(im.base ? { base: `${base}/images/${i}-base.png` } : {}),
              settings: im.settings,
            })),
          },
        }
      : {}),
  };
}

/** Resolves once the job has finished (or at once if it has). */
function waitForJob(queue: JobQueue, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const unsubscribe = queue.subscribe(id, (e) => {
      if (e.type === 'done' || e.type === 'failed') {
        unsubscribe();
        resolve();
      }
    });
    queue.get(id).then((v) => {
      if (finished(v)) {
        unsubscribe();
        resolve();
      }
    }, reject);
  });
}

/** An uploaded image's size, or a 400 naming the field. */
async function uploadedSize(bytes: Buffer, field: string): Promise<{ width: number; height: number }> {
  const meta = await sharp(bytes)
    .metadata()
    .catch(() => undefined);
  if (!meta?.width || !meta.height) throw new HttpError(400, `${field}: not an image (PNG, JPEG, WebP, …)`, field);
  if (meta.width > LIMITS.imageSide || meta.height > LIMITS.imageSide) {
    throw new HttpError(400, `${field}: ${meta.width}×${meta.height} is larger than ${LIMITS.imageSide}×${LIMITS.imageSide}`, field);
  }
  return { width: meta.width, height: meta.height };
}

/** The edit's multipart body → an EditJob, every part checked. */
async function readEdit(req: FastifyRequest): Promise<EditJob> {
  const fields: Record<string, string> = {};
  const files: Record<string, Buffer> = {};
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image' && part.fieldname !== 'mask') {
        part.file.resume();
        throw new HttpError(400, `unknown file field '${part.fieldname}' (image, mask)`, part.fieldname);
      }
      files[part.fieldname] = await part.toBuffer();
    } else if (typeof part.value === 'string' && part.value.trim() !== '') {
      fields[part.fieldname] = part.value;
    }
  }
  const parsed = EditFieldsSchema.safeParse(fields);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw new HttpError(400, message, field);
  }
  const f = parsed.data;
  if (!files.image) throw new HttpError(400, 'image: attach the image to edit as the file field "image"', 'image');
  const imageSize = await uploadedSize(files.image, 'image');
  const only = (field: 'box' | 'extend' | 'mask' | 'strength' | 'iterations', modes: string[]) => {
    const given = field === 'mask' ? files.mask !== undefined : f[field] !== undefined;
    if (given && !modes.includes(f.mode)) throw new HttpError(400, `${field}: not used by mode ${f.mode}`, field);
  };
  only('box', ['inpaint']);
  only('mask', ['inpaint']);
  only('extend', ['outpaint']);
  only('strength', ['mask-free']);
  only('iterations', ['mask-free']);
  if (f.mode === 'inpaint' && (files.mask === undefined) === (f.box === undefined)) throw new HttpError(400, 'mask: inpainting needs exactly one of a mask file or a box', 'mask');
  if (f.mode === 'outpaint' && f.extend === undefined) throw new HttpError(400, 'extend: outpainting needs extend=left,top,right,bottom', 'extend');
  if (f.box) {
    try {
      boxToPixelMask(f.box, imageSize.width, imageSize.height);
    } catch (err) {
      throw new HttpError(400, `box: ${(err as Error).message}`, 'box');
    }
  }
  if (files.mask) {
    const m = await uploadedSize(files.mask, 'mask');
    if (m.width !== imageSize.width || m.height !== imageSize.height) {
      throw new HttpError(400, `mask: ${m.width}×${m.height}, the image is ${imageSize.width}×${imageSize.height}: they must match`, 'mask');
    }
  }
  return { kind: 'edit', ...f, image: files.image.toString('base64'), imageSize, ...(files.mask ? { mask: files.mask.toString('base64') } : {}) };
}

export async function buildServer(o: ServerOptions): Promise<MaskgenServer> {
  const { queue, metrics } = o;
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: LIMITS.jsonBody, forceCloseConnections: 'idle' });
  let closing = false;
  const streams = new Set<ServerResponse>();
  queue.onFinished((job) => metrics.finished(job));

  await app.register(fastifyMultipart, {
    limits: { fileSize: LIMITS.uploadBytes, files: 2, fields: 20, fieldSize: 4096, parts: 24 },
  });
  await app.register(fastifyStatic, { root: STATIC_DIR, prefix: '/', index: 'index.html' });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.message, ...(err.field ? { field: err.field } : {}) });
    if (err instanceof QueueFullError) return reply.code(429).header('retry-after', String(err.retryAfter)).send({ error: err.message, retryAfter: err.retryAfter });
    if (err instanceof ShuttingDownError) return reply.code(503).send({ error: err.message });
    if (err instanceof UserError) return reply.code(400).send({ error: err.message });
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const field = err.code === 'FST_REQ_FILE_TOO_LARGE' ? 'image' : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.code?.startsWith('FST_ERR_CTP') ? 'body' : undefined;
      const message = err.code === 'FST_REQ_FILE_TOO_LARGE' ? `a file is larger than ${LIMITS.uploadBytes} bytes` : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `the body is larger than ${LIMITS.jsonBody} bytes` : err.message;
      return reply.code(status).send({ error: message, ...(field ? { field } : {}) });
    }
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error' });
  });

  if (o.apiKey !== undefined) {
    const key = o.apiKey;
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/v1/') && !req.url.startsWith('/metrics')) return;
      const auth = req.headers.authorization;
      const presented = auth?.startsWith('Bearer ') ? auth.slice(7) : (req.headers['x-api-key'] as string | undefined);
      if (!keyMatches(presented, key)) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)' });
    });
  }

  const accept = async (spec: JobSpec, req: FastifyRequest, reply: FastifyReply) => {
    if (closing) throw new ShuttingDownError();
    const wait = (req.query as { wait?: string }).wait === 'true';
    // Nobody follows a waited-for job's events, so it skips the previews (a decoder pass a step).
    const id = await queue.submit(wait ? { ...spec, preview: false } : spec);
    if (wait) {
      await waitForJob(queue, id);
      const view = (await queue.get(id))!;
      return reply.code(view.state === 'done' ? 200 : 500).send(presentJob(view));
    }
    return reply.code(202).header('location', `/v1/jobs/${id}`).send({ id, url: `/v1/jobs/${id}`, events: `/v1/jobs/${id}/events` });
  };

  app.post('/v1/generate', async (req, reply) => {
    const parsed = GenerateRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const { field, message } = firstIssue(parsed.error);
      throw new HttpError(400, message, field);
    }
    return accept({ kind: 'generate', ...parsed.data }, req, reply);
  });

  app.post('/v1/edit', async (req, reply) => {
    if (!req.isMultipart()) throw new HttpError(415, 'send the edit as multipart/form-data (the image as the file field "image")', 'body');
    return accept(await readEdit(req), req, reply);
  });

  const job = async (id: string) => {
    const view = await queue.get(id);
    if (!view) throw new HttpError(404, `no job ${id} (unknown, or finished long ago)`, 'id');
    return view;
  };

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => presentJob(await job(req.params.id)));

  app.get<{ Params: { id: string; file: string } }>('/v1/jobs/:id/images/:file', async (req, reply) => {
    const view = await job(req.params.id);
    const m = /^(?:(\d+)(-base)?|(before))\.png$/.exec(req.params.file);
    const result = view.result;
    const im = m && m[1] !== undefined ? result?.images[Number(m[1])] : undefined;
    const b64 = m?.[3] ? result?.before : m?.[2] ? im?.base : im?.png;
    if (!b64) throw new HttpError(404, `job ${view.id} has no image ${req.params.file}${result ? '' : ' (it has not finished)'}`, 'file');
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(Buffer.from(b64, 'base64'));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (req, reply) => {
    const id = req.params.id;
    const pending: JobEvent[] = [];
    let write: ((e: JobEvent) => void) | undefined;
    const unsubscribe = queue.subscribe(id, (e) => (write ? write(e) : pending.push(e)));
    let view: JobView;
    try {
      view = await job(id);
    } catch (err) {
      unsubscribe();
      throw err;
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    streams.add(res);
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const end = () => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(res);
      res.end();
    };
    res.on('close', end);
    let ended = false;
    const finish = async () => {
      if (ended) return;
      ended = true;
      const last = await queue.get(id).catch(() => undefined);
      if (last) send(last.state === 'done' ? 'done' : 'failed', presentJob(last));
      end();
    };
    send('state', presentJob(view));
    if (finished(view)) return void (await finish());
    write = (e) => {
      if (ended) return;
      if (e.type === 'progress') {
        const { previews, ...p } = e.progress;
        send(p.phase === 'decode' ? 'step' : 'refine', previews ? { ...p, previews: previews.map((b) => `data:image/png;base64,${b}`) } : p);
      } else if (e.type === 'running') {
        send('running', { id });
      } else {
        void finish();
      }
    };
    pending.splice(0).forEach(write);
  });

  app.get('/healthz', async (_req, reply) => {
    const counts = await queue.counts().catch(() => undefined);
    return reply.code(closing || !counts ? 503 : 200).send({ status: closing ? 'shutting-down' : counts ? 'ok' : 'queue-unreachable', mode: queue.mode, queue: counts, ...o.info });
  });

  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(await metrics.text()));

  return {
    app,
    async shutdown() {
      closing = true;
      await queue.close();
      // Let the last done events reach their streams, then end the streams and close.
      await new Promise((r) => setTimeout(r, 50));
      for (const res of streams) res.end();
      await app.close();
    },
  };
}
