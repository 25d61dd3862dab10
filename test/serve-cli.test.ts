/**
 * `maskgen serve` and `maskgen worker` as commands: their help, one-line errors for bad flags, and
 * SIGTERM: the server stops taking jobs (503), finishes the one in flight and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { errorLine, runMaskgen } from './helpers/cli.js';
import { readEvents, startMaskgen } from './helpers/serve.js';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

describe('maskgen serve / worker on the command line', () => {
  it('documents every flag', async () => {
    const serve = await runMaskgen(root, ['serve', '--help']);
    expect(serve.code).toBe(0);
    for (const flag of ['--bundle', '--port', '--host', '--queue', '--max-queue', '--timeout', '--api-key', '--json']) expect(serve.stdout).toContain(flag);
    const worker = await runMaskgen(root, ['worker', '--help']);
    expect(worker.code).toBe(0);
    for (const flag of ['--queue', '--bundle', '--timeout', '--lock-duration', '--stalled-interval', '--metrics-port']) expect(worker.stdout).toContain(flag);
  });

  it('bad flags give one error line and exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [['serve', '--port', '-3'], /--port must be a positive integer/],
      [['serve', '--max-queue', '0'], /--max-queue must be a positive integer/],
      [['serve', '--api-key', 'short'], /--api-key must be at least 8 characters/],
      [['serve', '--queue', 'http://127.0.0.1:1'], /--queue must be a redis:\/\/ or rediss:\/\/ URL/],
      [['worker'], /Missing required argument: queue/],
      [['worker', '--queue', 'redis://127.0.0.1:1', '--lock-duration', '0'], /--lock-duration must be a positive integer/],
    ];
    for (const [args, message] of cases) {
      const r = await runMaskgen(root, args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(errorLine(r.stderr)).toMatch(/^maskgen: error: /);
      expect(errorLine(r.stderr)).toMatch(message);
    }
  });

  it('SIGTERM: no new jobs (503), the job in flight finishes, exit 0', async () => {
    const server = startMaskgen(['serve', '--port', '0', '--backend', process.env.MASKGEN_TEST_BACKEND ?? 'wasm']);
    const { url } = (await server.ready) as { url: string };
    const post = () => fetch(`${url}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompts: ['fire'], steps: 48, refine: false }) });
    const job = (await (await post()).json()) as { events: string };
    let terminated = false;
    let afterTerm: Promise<Response> | undefined;
    const events = await readEvents(url + job.events, (e) => {
      if (e.event === 'step' && !terminated) {
        terminated = true;
        server.proc.kill('SIGTERM');
        afterTerm = new Promise((r) => setTimeout(r, 200)).then(post);
      }
    });
    expect(terminated).toBe(true);
    expect(events.at(-1)!.event).toBe('done');
    expect(events.at(-1)!.data.state).toBe('done');
    // sent 0.2 s after SIGTERM, while ~45 decoding steps were still to go
    const late = await afterTerm!;
    expect(late.status).toBe(503);
    expect(((await late.json()) as { error: string }).error).toMatch(/shutting down/);
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: taking no new jobs/);
  });
});
