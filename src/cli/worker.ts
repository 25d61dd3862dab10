/** `maskgen worker`: takes jobs from the BullMQ queue that `maskgen serve --queue` fills, one at a time. */
import { createServer } from 'node:http';
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { DEFAULT_QUEUE_NAME } from '../serve/jobs.js';
import { defaultBundle, handle, printJson, startBackend, type GlobalArgs } from './common.js';
import { positiveInt } from './train-tokenizer.js';

interface Args extends GlobalArgs {
  queue: string;
  queueName: string;
  bundle: string;
  timeout: number;
  lockDuration: number;
  stalledInterval: number;
  metricsPort?: number;
  metricsHost: string;
}

const log = (line: string) => process.stderr.write(`maskgen: ${line}\n`);

export const workerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'worker',
  describe: 'run jobs from a `maskgen serve --queue redis://…` queue (any number of workers, on any machine)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage(
        '$0 worker --queue redis://HOST:6379 [--bundle B] [--timeout S] [--metrics-port P]\n\n' +
          'Runs one job at a time. A worker that dies loses its job to another after --lock-duration (BullMQ stalled-job handling). ' +
          'SIGTERM stops taking jobs and finishes the one in hand.',
      )
      .option('queue', { type: 'string', demandOption: true, describe: 'the redis:// URL of the queue' })
      .option('queue-name', { type: 'string', default: DEFAULT_QUEUE_NAME, describe: 'BullMQ queue name' })
      .option('bundle', { type: 'string', default: defaultBundle(), describe: 'model bundle (default: the shipped model)' })
      .option('timeout', { type: 'number', default: 120, describe: 'seconds a job may run before it fails' })
      .option('lock-duration', { type: 'number', default: 30_000, describe: "ms a job's lock lasts without renewal: how soon another worker takes over a dead worker's job" })
      .option('stalled-interval', { type: 'number', default: 30_000, describe: 'ms between checks for stalled jobs' })
      .option('metrics-port', { type: 'number', describe: 'serve this worker\'s Prometheus metrics on this port (/metrics)' })
      .option('metrics-host', { type: 'string', default: '127.0.0.1', describe: 'address for --metrics-port' }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const timeout = positiveInt(args.timeout, '--timeout');
    const lockDuration = positiveInt(args.lockDuration, '--lock-duration');
    const stalledInterval = positiveInt(args.stalledInterval, '--stalled-interval');
    if (args.metricsPort !== undefined && (!Number.isInteger(args.metricsPort) || args.metricsPort < 0 || args.metricsPort > 65535)) {
      throw new UserError(`--metrics-port must be a port number, got ${args.metricsPort}`);
    }
    const [{ loadRunner, stopOnSignal }, { createMetrics }, { startWorker }] = await Promise.all([
      import('../serve/lifecycle.js'),
      import('../serve/metrics.js'),
      import('../serve/redis.js'),
    ]);
    const backend = await startBackend(args);
    const { pipe, runner } = await loadRunner(args.bundle, backend);
    const metrics = createMetrics();
    const { close } = await startWorker({
      url: args.queue,
      name: args.queueName,
      runner,
      timeoutMs: timeout * 1000,
      lockDuration,
      stalledInterval,
      onJob: (e) => {
        if (e.event !== 'active') metrics.finished(e.job);
        log(`job ${e.id} ${e.event}${e.seconds !== undefined ? ` in ${e.seconds.toFixed(2)} s` : ''}${e.error ? `: ${e.error}` : ''}`);
      },
    });
    let metricsUrl: string | undefined;
    const http = args.metricsPort === undefined ? undefined : createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      metrics.text().then((text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text), () => res.writeHead(500).end());
    });
    if (http) {
      await new Promise<void>((resolve) => http.listen(args.metricsPort, args.metricsHost, resolve));
      const a = http.address() as { port: number };
      metricsUrl = `http://${args.metricsHost}:${a.port}/metrics`;
    }
    log(`worker ${runner.worker} taking jobs from '${args.queueName}'${metricsUrl ? `; metrics on ${metricsUrl}` : ''}`);
    stopOnSignal(async () => {
      await close();
      http?.close();
      pipe.dispose();
    }, log);
    printJson(args, { worker: runner.worker, queue: args.queueName, backend, ...(metricsUrl ? { metrics: metricsUrl } : {}) });
  }),
};
