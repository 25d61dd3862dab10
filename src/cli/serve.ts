/** `maskgen serve`: the HTTP API and the web page, running jobs in-process or on a BullMQ queue. */
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { DEFAULT_QUEUE_NAME, type JobQueue } from '../serve/jobs.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  bundle: string;
  port: number;
  host: string;
  queue?: string;
  queueName: string;
  maxQueue: number;
  timeout: number;
  apiKey?: string;
  log: boolean;
}

const log = (line: string) => process.stderr.write(`maskgen: ${line}\n`);

export const serveCommand: CommandModule<GlobalArgs, Args> = {
  command: 'serve',
  describe: 'serve the HTTP API and the web page (jobs run in this process, or on workers through --queue redis://…)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage(
        '$0 serve [--bundle B] [--port 8080] [--host 127.0.0.1] [--queue redis://HOST:6379] [--api-key K]\n\n' +
          'API: POST /v1/generate, POST /v1/edit, GET /v1/jobs/:id, GET /v1/jobs/:id/events (server-sent events), GET /healthz, GET /metrics; the page at /. ' +
          'Without --queue, jobs run here one at a time and wait in a bounded queue; with it, they go to `maskgen worker`s. ' +
          'SIGTERM stops taking jobs and finishes those accepted.',
      )
      .option('bundle', { type: 'string', default: defaultBundle(), describe: 'model bundle (default: the shipped model; unused with --queue, the workers load theirs)' })
      .option('port', { type: 'number', default: 8080, describe: 'TCP port (0: any free one)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind; 0.0.0.0 to serve other machines' })
      .option('queue', { type: 'string', describe: 'a redis:// URL: put jobs on a BullMQ queue for `maskgen worker`s instead of running them here' })
      .option('queue-name', { type: 'string', default: DEFAULT_QUEUE_NAME, describe: 'BullMQ queue name (with --queue)' })
      .option('max-queue', { type: 'number', default: 64, describe: 'jobs that may wait; beyond it requests get 429 with Retry-After' })
      .option('timeout', { type: 'number', default: 120, describe: 'seconds a job may run before it fails (embedded; workers have their own)' })
      .option('api-key', { type: 'string', describe: 'require this key on /v1/* and /metrics (Authorization: Bearer K or X-API-Key: K); default $MASKGEN_API_KEY' })
      .option('log', { type: 'boolean', default: false, describe: 'log every request (JSON lines on stdout)' }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const port = args.port === 0 ? 0 : positiveInt(args.port, '--port');
    if (port > 65535) throw new UserError(`--port must be ≤ 65535, got ${port}`);
    const maxQueue = positiveInt(args.maxQueue, '--max-queue');
    const timeout = positiveInt(args.timeout, '--timeout');
    const apiKey = args.apiKey ?? (process.env.MASKGEN_API_KEY || undefined);
    if (apiKey !== undefined && apiKey.length < 8) throw new UserError('--api-key must be at least 8 characters');
    // The server's libraries load here, not with every maskgen command.
    const [{ LocalQueue }, { loadRunner, stopOnSignal }, { createMetrics }, { RedisQueue }, { buildServer }] = await Promise.all([
      import('../serve/local-queue.js'),
      import('../serve/lifecycle.js'),
      import('../serve/metrics.js'),
      import('../serve/redis.js'),
      import('../serve/server.js'),
    ]);
    let queue: JobQueue;
    let info: Record<string, unknown>;
    let dispose = () => {};
    if (args.queue !== undefined) {
      queue = await RedisQueue.open(args.queue, { name: args.queueName, maxQueue });
      info = { queueName: args.queueName };
    } else {
      const backend = await startBackend(args);
      const { pipe, runner } = await loadRunner(args.bundle, backend);
      queue = new LocalQueue((spec, ctx) => runner.run(spec, ctx), { maxQueue, timeoutMs: timeout * 1000 });
      info = { bundle: args.bundle, backend, refiner: pipe.refiner !== undefined, imageSize: pipe.tokenizer.config.imageSize };
      dispose = () => pipe.dispose();
    }
    const metrics = createMetrics({ counts: () => queue.counts() });
    const server = await buildServer({ queue, metrics, apiKey, info, logger: args.log });
    const address = await server.app.listen({ port, host: args.host });
    const url = address.replace('[::1]', 'localhost');
    log(`serving on ${url} (${queue.mode === 'redis' ? `jobs on the BullMQ queue '${args.queueName}'` : 'jobs run here'}${apiKey ? ', API key required' : ''})`);
    stopOnSignal(async () => {
      await server.shutdown();
      dispose();
    }, log);
    printJson(args, { url, mode: queue.mode, ...info });
  }),
};
