/**
 * What the server accepts and what a job is: the request schemas (zod, one per endpoint, every field
 * bounded), the job specs that travel to the runner (in-process or over BullMQ, so plain JSON), and
 * what a job reports while it runs and when it is done.
 */
import { z } from 'zod';

/** The BullMQ queue's name unless told otherwise. */
export const DEFAULT_QUEUE_NAME = 'maskgen';

/** The hard limits on a request; the server answers 400 naming the field when one is crossed. */
export const LIMITS = {
  promptChars: 200,
  prompts: 4,
  n: 4,
  /** prompts × n */
  imagesPerJob: 8,
  steps: 64,
  refineSteps: 50,
  guidance: 20,
  seed: 2 ** 31 - 1,
  iterations: 50,
  /** JSON bodies (bytes). */
  jsonBody: 64 * 1024,
  /** Each uploaded image or mask (bytes). */
  uploadBytes: 2 * 1024 * 1024,
  /** Width and height of an uploaded image or mask (pixels). */
  imageSide: 2048,
  /** Pixels an outpainting may add on one side. */
  extend: 512,
} as const;

const prompt = z.string().trim().min(1, 'is empty').max(LIMITS.promptChars, `is longer than ${LIMITS.promptChars} characters`);
const whole = (min: number, max: number) => z.int(`must be a whole number`).min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`);
const guidance = z.number().min(0, 'must be ≥ 0').max(LIMITS.guidance, `must be ≤ ${LIMITS.guidance}`);
const negativePrompt = z.string().trim().max(LIMITS.promptChars, `is longer than ${LIMITS.promptChars} characters`);

/** POST /v1/generate (JSON). */
export const GenerateRequestSchema = z
  .strictObject({
    prompts: z.array(prompt, 'must be a list of prompts').min(1, 'give at least one prompt').max(LIMITS.prompts, `at most ${LIMITS.prompts} prompts`),
    n: whole(1, LIMITS.n).default(1),
    guidance: guidance.default(3),
    negativePrompt: negativePrompt.optional(),
    steps: whole(1, LIMITS.steps).default(12),
    seed: whole(0, LIMITS.seed).default(0),
    refine: z.boolean().default(true),
    refineSteps: whole(1, LIMITS.refineSteps).optional(),
  })
  .refine((r) => r.prompts.length * r.n <= LIMITS.imagesPerJob, { path: ['n'], message: `prompts × n must be ≤ ${LIMITS.imagesPerJob} images a job` });
export type GenerateRequest = z.infer<typeof GenerateRequestSchema>;

/** Multipart text fields arrive as strings: numbers are coerced, empty fields dropped by the route. */
const num = (inner: z.ZodNumber) => z.coerce.number('must be a number').pipe(inner);
const quad = (what: string) =>
  z
    .string()
    .regex(/^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*$/, `must be ${what} in whole pixels, e.g. 8,8,16,16`)
    .transform((s) => s.split(',').map(Number) as [number, number, number, number]);

/** POST /v1/edit: the text fields of the multipart body (the files `image` and `mask` come apart). */
export const EditFieldsSchema = z.strictObject({
  mode: z.enum(['inpaint', 'outpaint', 'mask-free'], 'must be inpaint, outpaint or mask-free'),
  prompt,
  box: quad('x,y,w,h')
    .transform(([x, y, w, h]) => ({ x, y, w, h }))
    .optional(),
  extend: quad('left,top,right,bottom')
    .transform(([left, top, right, bottom]) => ({ left, top, right, bottom }))
    .refine((e) => Math.max(e.left, e.top, e.right, e.bottom) <= LIMITS.extend, `each side must be ≤ ${LIMITS.extend} pixels`)
    .refine((e) => e.left + e.top + e.right + e.bottom > 0, 'every side is 0: nothing to outpaint')
    .optional(),
  n: num(whole(1, LIMITS.n)).default(1),
  steps: num(whole(1, LIMITS.steps)).optional(),
  guidance: num(guidance).optional(),
  negativePrompt: negativePrompt.optional(),
  seed: num(whole(0, LIMITS.seed)).default(0),
  strength: num(z.number().gt(0, 'must be > 0').max(1, 'must be ≤ 1')).optional(),
  iterations: num(whole(1, LIMITS.iterations)).optional(),
});
export type EditFields = z.infer<typeof EditFieldsSchema>;

/** The first problem of a failed parse, as the field's dotted path and a message. */
export function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
  const unknown = issue.code === 'unrecognized_keys' ? issue.keys : undefined;
  if (unknown) return { field: unknown[0]!, message: `unknown field ${unknown.map((k) => `'${k}'`).join(', ')}` };
  return { field, message: `${field}: ${issue.message}` };
}

/** A generation, as queued. */
export interface GenerateJob extends GenerateRequest {
  kind: 'generate';
  /** Decode a preview at every step for the event stream (default true; `?wait=true` jobs skip them: they cost a decoder pass a step). */
  preview?: boolean;
}

/** An edit, as queued: the uploaded files travel as base64 so a job is plain JSON (BullMQ stores it). */
export interface EditJob extends EditFields {
  kind: 'edit';
  /** The image to edit (PNG, JPEG, WebP …), base64. */
  image: string;
  imageSize: { width: number; height: number };
  /** Inpainting's mask (white = regenerate), base64, the size of the image. */
  mask?: string;
  /** As GenerateJob.preview. */
  preview?: boolean;
}

export type JobSpec = GenerateJob | EditJob;

/** What a job reports at each step: decoding (with previews), then the refiner. */
export interface JobProgress {
  phase: 'decode' | 'refine';
  step: number;
  total: number;
  /** decode: the partly decoded images so far (PNG, base64), from image `first` on. */
  previews?: string[];
  first?: number;
  /** Who runs the job (host:pid). */
  worker: string;
}

/** One image of a finished job. */
export interface ResultImage {
  /** PNG, base64. */
  png: string;
  /** The base image before refinement (PNG, base64). */
  base?: string;
  /** Every setting that made it, as `maskgen generate`'s and `maskgen edit`'s sidecars. */
  settings: Record<string, unknown>;
}

export interface JobResult {
  kind: JobSpec['kind'];
  images: ResultImage[];
  /** Edits: the input as the model saw it, on the result's canvas (PNG, base64). */
  before?: string;
  seconds: number;
  worker: string;
  backend: string;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed';

/** A job as GET /v1/jobs/:id shows it (before URLs are added). */
export interface JobView {
  id: string;
  kind: JobSpec['kind'];
  state: JobState;
  progress?: Omit<JobProgress, 'previews'>;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
  result?: JobResult;
}

export type JobEvent = { type: 'progress'; progress: JobProgress } | { type: 'running' } | { type: 'done' } | { type: 'failed'; error: string };

/** The queue the server talks to: in-process (embedded) or BullMQ on Redis. */
export interface JobQueue {
  readonly mode: 'embedded' | 'redis';
  /** Queues a job and returns its id; throws QueueFullError when the queue is full, ShuttingDownError after close(). */
  submit(spec: JobSpec): Promise<string>;
  get(id: string): Promise<JobView | undefined>;
  /** Calls `listener` with the job's events from now on; returns the unsubscribe. */
  subscribe(id: string, listener: (e: JobEvent) => void): () => void;
  counts(): Promise<{ waiting: number; active: number }>;
  /** Called once per finished job (for the metrics). */
  onFinished(listener: (job: JobView) => void): void;
  /** Stops taking jobs and waits for those accepted (embedded) or for its connections (redis). */
  close(): Promise<void>;
}

/** The queue is full: the client should retry after `retryAfter` seconds. */
export class QueueFullError extends Error {
  constructor(readonly retryAfter: number) {
    super(`the job queue is full; retry in ${retryAfter} s`);
  }
}

export class ShuttingDownError extends Error {
  constructor() {
    super('the server is shutting down and takes no new jobs');
  }
}

/** A job ran longer than its timeout. */
export class JobTimeoutError extends Error {
  constructor(seconds: number) {
    super(`the job took longer than its ${seconds} s timeout`);
  }
}

/** Seconds to wait before retrying, from the queue's length and the recent seconds a job: in [1, 60]. */
export function retryAfterSeconds(waiting: number, secondsPerJob: number, workers = 1): number {
  return Math.min(60, Math.max(1, Math.ceil((waiting * secondsPerJob) / Math.max(1, workers))));
}
