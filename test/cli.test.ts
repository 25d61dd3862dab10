/**
 * The maskgen binary as a user runs it: help, one-line errors with a non-zero exit, and the
 * tokenizer commands end to end on real emoji with --json.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLine, lastJson, runMaskgen } from './helpers/cli.js';

let tmp: string;

const maskgen = (...args: string[]) => runMaskgen(tmp, args);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-cli-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('maskgen CLI', () => {
  it('documents every command in --help', async () => {
    const { code, stdout } = await maskgen('--help');
    expect(code).toBe(0);
    for (const c of ['data', 'train-tokenizer', 'reconstruct', 'train-transformer', 'generate', 'bench']) expect(stdout).toContain(c);
  });

  it('bench generate and train-transformer on onnx run compiled sessions by default and tfjs kernels with --no-compiled', async () => {
    const small = ['--backend', 'onnx', '--width', '32', '--depth', '1', '--heads', '2', '--grid', '4', '--codebook', '16', '--text-tokens', '4', '--runs', '1'];
    for (const [bench, extra, field] of [['generate', ['--steps', '2'], 'msPerImage'], ['train-transformer', ['--batch-size', '4'], 'tokensPerSec']] as const) {
      for (const [flags, compiled] of [[[], true], [['--no-compiled'], false]] as const) {
        const r = await maskgen('bench', bench, ...small, ...extra, ...flags);
        expect(r.code, r.stderr).toBe(0);
        const j = lastJson(r.stdout);
        expect([j.bench, j.backend, j.compiled]).toEqual([bench, 'onnx', compiled]);
        expect(j[field]).toBeGreaterThan(0);
        if (bench === 'train-transformer') {
          // the machine's sgemm limit, measured in the same run, and the step's share of it (one run:
          // the median of per-run shares is that run's share)
          expect(j.sgemmGflops).toBeGreaterThan(1);
          expect(j.sgemmBestGflops).toBeGreaterThanOrEqual(j.sgemmGflops as number);
          expect(j.ofSgemm).toBeCloseTo((j.gflops as number) / (j.sgemmGflops as number), 6);
          expect(j.ofSgemmBest).toBeCloseTo((j.gflops as number) / (j.sgemmBestGflops as number), 6);
        }
      }
    }
  });

  it('rejects an unknown flag and an unknown command with one line and exit 1', async () => {
    const flag = await maskgen('reconstruct', '--data', 'x', '--bogus-flag', '1');
    expect(flag.code).toBe(1);
    expect(errorLine(flag.stderr)).toMatch(/^maskgen: error: .*bogus-flag/);
    const cmd = await maskgen('frobnicate');
    expect(cmd.code).toBe(1);
    expect(errorLine(cmd.stderr)).toMatch(/^maskgen: error: /);
  });

  it('names the file and field of a bad config', async () => {
    const bad = path.join(tmp, 'bad.json');
    await writeFile(bad, JSON.stringify({ vqgan: { imageSize: 16, patchsize: 4 }, vqganTrain: {} }));
    const r = await maskgen('train-tokenizer', '--config', bad, '--data', tmp, '--out', path.join(tmp, 'r'), '--backend', 'cpu');
    expect(r.code).toBe(1);
    expect(errorLine(r.stderr)).toMatch(/bad\.json: vqgan: unknown field 'patchsize'/);
  });

  it('says so when the data folder holds no usable image', async () => {
    const empty = path.join(tmp, 'empty');
    await mkdir(empty, { recursive: true });
    await writeFile(path.join(empty, 'metadata.jsonl'), '');
    const r = await maskgen('train-tokenizer', '--config', 'tiny', '--data', empty, '--out', path.join(tmp, 'r2'), '--backend', 'cpu');
    expect(r.code).toBe(1);
    expect(errorLine(r.stderr)).toMatch(/^maskgen: error: .*empty/);
  });

  it('imports emoji, trains a tokenizer, reconstructs, all with --json', async () => {
    const data = path.join(tmp, 'emoji');
    const imp = await maskgen('data', 'import-emoji', '--vendors', 'google', '--out', data, '--size', '16', '--limit', '64', '--json');
    expect(imp.code).toBe(0);
    expect(JSON.parse(imp.stdout.trim().split('\n').at(-1)!).count).toBe(64);

    const out = path.join(tmp, 'run');
    const train = await maskgen('train-tokenizer', '--config', 'tiny', '--data', data, '--out', out, '--steps', '30', '--json', '--backend', 'wasm');
    expect(train.code).toBe(0);
    expect(train.stderr).toContain('backend wasm');
    const t = JSON.parse(train.stdout.trim().split('\n').at(-1)!);
    expect(t.steps).toBe(30);
    expect(await readdir(out)).toEqual(expect.arrayContaining(['model_index.json', 'vqgan', 'checkpoints', 'logs']));

    const recon = path.join(tmp, 'recon');
    const r = await maskgen('reconstruct', '--bundle', out, '--data', data, '--out', recon, '--json', '--backend', 'wasm');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['psnr', 'ssim', 'codebookUsage', 'perplexity', 'n']));
    expect(report.n).toBe(64);
    expect(report.psnr).toBeGreaterThan(5);
    expect(await readdir(recon)).toContain('grid.png');

    // the transformer on top of that tokenizer, then generate from the resulting bundle
    const bundle = path.join(tmp, 'bundle');
    const tt = await maskgen('train-transformer', '--config', 'tiny', '--data', data, '--tokenizer', out, '--out', bundle, '--steps', '10', '--json', '--backend', 'wasm');
    expect(tt.code).toBe(0);
    expect(JSON.parse(tt.stdout.trim().split('\n').at(-1)!).steps).toBe(10);
    const images = path.join(tmp, 'images');
    const g = await maskgen('generate', '--bundle', bundle, '--prompt', 'grinning face', '--prompt', 'red heart', '--n', '2', '--steps', '4', '--seed', '3', '--out', images, '--json', '--backend', 'wasm');
    expect(g.code).toBe(0);
    expect(JSON.parse(g.stdout.trim().split('\n').at(-1)!).images).toBe(4);
    const written = await readdir(images);
    expect(written).toEqual(expect.arrayContaining(['grid.png', 'grinning-face-0.png', 'grinning-face-1.json', 'red-heart-1.png']));
    const sidecar = JSON.parse(await readFile(path.join(images, 'red-heart-0.json'), 'utf8'));
    expect(sidecar).toMatchObject({ prompt: 'red heart', seed: 3, steps: 4, guidance: 3 });

    const empty = await maskgen('generate', '--bundle', bundle, '--prompt', ' ', '--backend', 'cpu');
    expect(empty.code).toBe(1);
    expect(errorLine(empty.stderr)).toMatch(/^maskgen: error: .*empty/);
    const notBundle = await maskgen('generate', '--bundle', data, '--prompt', 'x', '--backend', 'cpu');
    expect(notBundle.code).toBe(1);
    expect(errorLine(notBundle.stderr)).toMatch(/not a maskgen model bundle/);
  });
});
