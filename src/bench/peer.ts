/**
 * The PyTorch peer (scripts/bench-pytorch-peer.py), run as a child process in the same run as a
 * maskgen bench so that the two figures can be set side by side (`bench … --peer`). It runs at its
 * best setting on this kind of machine: one PyTorch intra-op thread over a two-thread OpenBLAS.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.js';
import { packageRoot } from '../io/config.js';

/** Debian's python3 with python3-torch (not a pyenv or venv interpreter that lacks torch). */
export const PEER_PYTHON = process.env.MASKGEN_PEER_PYTHON ?? '/usr/bin/python3';

/** Runs the peer for `model` and returns its JSON (the last line it prints). */
export async function runPeer(
  model: 'transformer' | 'tokenizer',
  runs: number,
  o: { batchSize?: number; images?: number; steps?: number; generateOnly?: boolean } = {},
): Promise<Record<string, unknown>> {
  const script = path.join(packageRoot(), 'scripts', 'bench-pytorch-peer.py');
  const flags = Object.entries({ '--batch-size': o.batchSize, '--images': o.images, '--steps': o.steps }).flatMap(([flag, v]) => (v === undefined ? [] : [flag, String(v)]));
  const argv = [script, '--model', model, '--threads', '1', '--runs', String(runs), ...flags, ...(o.generateOnly ? ['--no-train'] : [])];
  try {
    const { stdout } = await promisify(execFile)(PEER_PYTHON, argv, { env: { ...process.env, OPENBLAS_NUM_THREADS: '2' }, maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  } catch (err) {
    const why = (err as { stderr?: string }).stderr?.trim().split('\n').at(-1) || (err as Error).message;
    throw new UserError(`--peer: the PyTorch peer did not run (${PEER_PYTHON} ${path.relative(process.cwd(), script)}: ${why}); it needs Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread)`);
  }
}
