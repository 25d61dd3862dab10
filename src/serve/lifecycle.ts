/** What `maskgen serve` and `maskgen worker` share: loading the model for jobs, and stopping on a signal. */
import { MaskgenPipeline } from '../pipeline.js';
import { createRunner, type JobRunner } from './runner.js';

/** Loads the bundle (with its refiner when it has one) and a runner for it. */
export async function loadRunner(bundle: string, backend: string): Promise<{ pipe: MaskgenPipeline; runner: JobRunner }> {
  const pipe = await MaskgenPipeline.load(bundle);
  return { pipe, runner: createRunner(pipe, { bundle, backend }) };
}

/**
 * SIGTERM or SIGINT: the first runs `stop` (stop taking jobs, finish those in flight) and exits 0
 * when it is done; a second one exits at once with 1.
 */
export function stopOnSignal(stop: () => Promise<void>, log: (line: string) => void): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again: quitting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: taking no new jobs, finishing those in flight (send it again to quit now)`);
    stop().then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log(`error while stopping: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
