/**
 * What every subcommand shares: the global flags (`--backend`, `--threads`, `--json`), starting the
 * backend, and turning errors into one clear line and a non-zero exit.
 */
import type { Argv } from 'yargs';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../backend/index.js';
import { UserError } from '../errors.js';

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
