/**
 * Kill-and-resume tests: a training command run as a child process, killed with SIGKILL at chosen
 * moments (the test hooks MASKGEN_TEST_KILL_AFTER_STEP and MASKGEN_TEST_FAULT), resumed, and its
 * final checkpoint compared with an uninterrupted run's, tensor by tensor.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { writePng } from '../../src/data/images.js';
import { listCheckpoints, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE } from '../../src/io/checkpoint.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { makeShapes } from './shapes.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const tsxLoader = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** The backend the children train on: the suite's (wasm unless MASKGEN_TEST_BACKEND says otherwise). */
export const BACKEND = process.env.MASKGEN_TEST_BACKEND ?? 'wasm';

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `maskgen ...args` in `cwd` with extra environment variables (the test hooks). */
export function maskgenChild(cwd: string, args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  const base = { ...process.env };
  delete base.MASKGEN_TEST_FAULT;
  delete base.MASKGEN_TEST_KILL_AFTER_STEP;
  return new Promise((resolve, reject) => {
    // node --import tsx rather than the tsx binary, which would run node as a child of its own
    // (and report the kill as an exit code).
    const child = spawn(process.execPath, ['--import', tsxLoader, path.join(root, 'src/cli/main.ts'), '--backend', BACKEND, ...args], { cwd, env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A folder of `count` 16 px PNGs of coloured squares with captions ("a red square", …). */
export async function shapesFolder(dir: string, count: number, size = 16): Promise<void> {
  const set = makeShapes(count, size, 5);
  await mkdir(dir, { recursive: true });
  const per = size * size * 3;
  const lines: string[] = [];
  for (let i = 0; i < set.count; i++) {
    await writePng(path.join(dir, set.files[i]!), { data: set.pixels.subarray(i * per, (i + 1) * per), width: size, height: size, channels: 3 });
    lines.push(JSON.stringify({ file_name: set.files[i], text: set.captions[i] }));
  }
  await writeFile(path.join(dir, 'metadata.jsonl'), lines.join('\n') + '\n');
}

/** configs/tiny.json with some sections' fields replaced, written to `file`. */
export async function tinyConfig(file: string, changes: Record<string, Record<string, unknown>>): Promise<string> {
  const config = JSON.parse(await readFile(path.join(root, 'configs', 'tiny.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  for (const [section, fields] of Object.entries(changes)) config[section] = { ...config[section], ...fields };
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

/** Bytes a checkpoint in the store takes (its files, the manifest included): to aim a fault inside the next one. */
export async function checkpointBytes(store: string): Promise<number> {
  const newest = (await listCheckpoints(store))[0];
  if (!newest) throw new Error(`no checkpoint in ${store}`);
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else bytes += (await stat(p)).size;
    }
  };
  await walk(newest.dir);
  return bytes;
}

/** The step of the newest committed checkpoint in a store, and whether a half-written one lies beside it. */
export async function storeState(store: string): Promise<{ newest: number | undefined; staging: boolean }> {
  const newest = (await listCheckpoints(store))[0]?.step;
  const staging = (await readdir(store)).some((n) => n.startsWith('.staging-'));
  return { newest, staging };
}

export interface KillPoint {
  /** What the test hooks get. */
  env: Record<string, string>;
  /** The step of the newest committed checkpoint the kill must leave. */
  newest: number;
  /** The store that `newest` and a leftover half-written checkpoint refer to. */
  store: string;
  /** The kill must have left a half-written checkpoint (a kill during a write). */
  torn?: boolean;
}

/**
 * Runs the command once per kill point, each killed by SIGKILL where the point says (the first run
 * fresh, the others with --resume), then once more with --resume to the end. After each kill the
 * store must hold what the point says. Returns the last run.
 */
export async function killAndResume(cwd: string, args: string[], kills: KillPoint[]): Promise<ChildRun> {
  for (const [i, k] of kills.entries()) {
    const run = await maskgenChild(cwd, i === 0 ? args : [...args, '--resume'], k.env);
    expect(run.signal, `kill ${i} (${JSON.stringify(k.env)}) did not kill: code ${run.code}\n${run.stderr}`).toBe('SIGKILL');
    const s = await storeState(path.join(cwd, k.store));
    expect(s.newest, `after kill ${i}`).toBe(k.newest);
    if (k.torn) expect(s.staging, `after kill ${i}: no half-written checkpoint left`).toBe(true);
  }
  const last = await maskgenChild(cwd, [...args, '--resume', '--json']);
  expect(last.code, last.stderr).toBe(0);
  return last;
}

/** Every tensor of the newest checkpoint in a store (model and optimizer), and its state.json. */
export async function readNewest(store: string): Promise<{ step: number; tensors: Map<string, Uint8Array>; state: Record<string, unknown> }> {
  const newest = (await listCheckpoints(store))[0];
  if (!newest) throw new Error(`no checkpoint in ${store}`);
  const tensors = new Map<string, Uint8Array>();
  for (const file of [MODEL_FILE, OPTIMIZER_FILE]) {
    const { tensors: ts } = decodeSafetensors(await readFile(path.join(newest.dir, file)), file);
    for (const [name, t] of Object.entries(ts)) tensors.set(`${file}:${name}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const state = JSON.parse(await readFile(path.join(newest.dir, STATE_FILE), 'utf8')) as Record<string, unknown>;
  return { step: newest.step, tensors, state };
}

/**
 * The newest checkpoints of two stores hold the same step, state (random state included) and
 * bit-identical weights and optimizer moments.
 */
export async function expectSameCheckpoint(store: string, reference: string): Promise<void> {
  const [a, b] = [await readNewest(store), await readNewest(reference)];
  expect(a.step).toBe(b.step);
  expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
  const differing = [...b.tensors].filter(([name, bytes]) => Buffer.compare(Buffer.from(bytes), Buffer.from(a.tensors.get(name)!)) !== 0).map(([n]) => n);
  expect(differing, 'tensors that differ from the uninterrupted run').toEqual([]);
  expect(a.state).toEqual(b.state);
}
