/** Running the maskgen binary (through tsx, from the sources) as a user would, in a given folder. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `maskgen ...args` in `cwd`; a failing command resolves with its exit code instead of throwing. */
export async function runMaskgen(cwd: string, args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await exec(tsx, [path.join(root, 'src/cli/main.ts'), ...args], { cwd, maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The error line a failing command printed (the last non-empty stderr line). */
export const errorLine = (stderr: string) => stderr.trim().split('\n').at(-1)!;

/** The JSON object `--json` printed on the last stdout line. */
export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
