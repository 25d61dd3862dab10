/**
 * `maskgen bench … --peer`: the PyTorch peer run in the same process tree, its figures beside
 * maskgen's. The peer needs Debian's python3-torch; without it the bench says so in one line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_PYTHON } from '../src/bench/peer.js';
import { maskgenChild } from './helpers/crash.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-peer-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function hasTorch(): boolean {
  try {
    execFileSync(PEER_PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const torch = hasTorch();
if (!torch) console.warn(`bench --peer: ${PEER_PYTHON} has no torch (apt-get install python3-torch): the peer run is skipped`);

describe('bench --peer', () => {
  it('without a working peer: one error line naming what it needs, exit code 1', async () => {
    const run = await maskgenChild(tmp, ['bench', 'tokenizer', '--config', 'tiny', '--runs', '1', '--peer'], { MASKGEN_PEER_PYTHON: path.join(tmp, 'no-python') });
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^maskgen: error: --peer: the PyTorch peer did not run .*python3-torch/);
    expect(lines.filter((l) => l.includes('error'))).toHaveLength(1);
  });

  it.skipIf(!torch)('with python3-torch: the peer tokenizer step beside maskgen\'s, and the ratio of the two', async () => {
    const run = await maskgenChild(tmp, ['bench', 'tokenizer', '--config', 'tiny', '--runs', '1', '--peer']);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    expect(out.peer.bench).toBe('pytorch-peer-tokenizer');
    expect(out.peer.threads).toBe(1);
    expect(out.peer.msPerTrainStep).toBeGreaterThan(0);
    expect(out.vsPeer.trainStep).toBeCloseTo(out.peer.msPerTrainStep / out.msPerTrainStep, 9);
  });

  it.skipIf(!torch)('bench generate --peer: the peer generates as many images together, and the ratio of the two', async () => {
    const run = await maskgenChild(tmp, ['bench', 'generate', '--width', '64', '--depth', '1', '--images', '2', '--steps', '2', '--runs', '1', '--peer']);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    expect(out.peer.images).toBe(2);
    expect(out.peer.steps).toBe(2);
    expect(out.peer.msPerImage).toBeGreaterThan(0);
    expect(out.vsPeer.imagesPerSec).toBeCloseTo(out.peer.msPerImage / out.msPerImage, 9);
  });

  it('bench generate --peer with --bundle: one error line (the peer has no bundle)', async () => {
    const run = await maskgenChild(tmp, ['bench', 'generate', '--bundle', 'fmnist', '--peer', '--runs', '1']);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^maskgen: error: --peer .*does not time a bundle/);
  });
});
