/**
 * What every subcommand shares: the global flags (`--backend`, `--threads`, `--json`), starting the
 * backend, and turning errors into one clear line and a non-zero exit.
 */
import path from 'node:path';
import type { Argv } from 'yargs';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../backend/index.js';
import { UserError } from '../errors.js';
import { SHIPPED_BUNDLES } from '../io/bundle.js';
import type { ResumeFrom } from '../io/checkpoint.js';
import { packageRoot } from '../io/config.js';

export interface GlobalArgs {
  backend: BackendChoice;
  threads?: number;
  json: boolean;
}

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('backend', {
      choices: BACKEND_CHOICES,
      default: 'auto' as BackendChoice,
      describe: 'compute engine: auto takes the fastest installed (tensorflow, onnx, wasm, cpu)',
    })
    .option('threads', { type: 'number', describe: 'intra-op threads for the onnx backend (default: all cores)' })
    .option('json', { type: 'boolean', default: false, describe: 'print one machine-readable JSON object on the last line' });
}

/** Starts the backend a command asked for and says which one it got (on stderr, so --json stays clean). */
export async function startBackend(args: GlobalArgs): Promise<string> {
  const name = await initBackend(args.backend, { threads: args.threads });
  process.stderr.write(`maskgen: backend ${name}\n`);
  return name;
}

/** Runs a command body; a UserError becomes one line on stderr and exit code 1. */
export function handle<A>(body: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await body(args);
    } catch (err) {
      reportAndExit(err);
    }
  };
}

export function reportAndExit(err: unknown): never {
  if (err instanceof UserError) {
    process.stderr.write(`maskgen: error: ${err.message}\n`);
  } else {
    process.stderr.write(`maskgen: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
}

/** Prints the JSON result line when --json is on. */
export function printJson(args: { json: boolean }, value: unknown): void {
  if (args.json) process.stdout.write(JSON.stringify(value) + '\n');
}

/**
 * Ctrl-C / SIGTERM during long work: the first asks the work to stop at the next safe point (it
 * saves a checkpoint); a second one exits at once.
 */
export function stopOnSignal(): { requested: () => boolean; dispose: () => void } {
  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\nmaskgen: stopping after this step (saving a checkpoint); press Ctrl-C again to quit at once\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => stop,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The shipped model bundle, the default of every --bundle flag. */
export function defaultBundle(): string {
  return path.join(packageRoot(), 'models', SHIPPED_BUNDLES.emoji!);
}

/** What `--resume [value]` asks for: alone it means 'latest'; the other value is 'latest-good'; anything else is a UserError. */
export function resumeChoice(v: unknown): ResumeFrom | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === '' || v === true || v === 'latest') return 'latest';
  if (v === 'latest-good') return 'latest-good';
  throw new UserError(`--resume takes no value, 'latest' or 'latest-good', got ${JSON.stringify(v)}`);
}

/** Prints a warning line on stderr. */
export function warn(message: string): void {
  process.stderr.write(`maskgen: warning: ${message}\n`);
}

/** The flags every `train-*` command takes, with the command's own descriptions where they differ. */
export function trainingOptions(
  y: Argv<GlobalArgs>,
  d: { sections: string; data: string; out: string; steps?: string; batchSize?: string },
): Argv<GlobalArgs> {
  return y
    .option('config', { type: 'string', default: 'small', describe: `preset name (tiny, small, base) or a config JSON file; uses its ${d.sections} sections` })
    .option('data', { type: 'string', demandOption: true, describe: d.data })
    .option('out', { type: 'string', demandOption: true, describe: d.out })
    .option('resume', {
      type: 'string',
      describe:
        'continue the run in --out from its newest checkpoint (weights, optimizer and random state, step); a damaged newest one is an error. ' +
        "'--resume latest-good' takes the newest undamaged one instead, skipping damaged ones with a warning",
    })

    .option('steps', { type: 'number', describe: d.steps ?? 'override the number of training steps' })
    .option('batch-size', { type: 'number', describe: d.batchSize ?? 'override the batch size' })
    .option('limit', { type: 'number', describe: 'use only the first N images of the data folder' }) as Argv<GlobalArgs>;
}
