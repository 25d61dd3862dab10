/**
 * `maskgen edit` end to end, as a user runs it: one run per edit mode on a tiny bundle trained in
 * the test (a few steps: only the plumbing is judged here; pipeline-edit.test.ts judges the edits),
 * and one-line errors for bad input.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePng } from '../src/data/images.js';
import { type CliRun, errorLine, lastJson as lastJsonOf, runMaskgen } from './helpers/cli.js';
import { makeShapes } from './helpers/shapes.js';
import { trainTinyPipeline } from './helpers/tiny-pipeline.js';

const backend = process.env.MASKGEN_TEST_BACKEND ?? 'wasm';
let tmp: string;
let bundle: string;

type Run = CliRun;
const maskgen = (...args: string[]) => runMaskgen(tmp, args);
const lastJson = (r: Run) => lastJsonOf(r.stdout) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
const size = async (file: string) => {
  const m = await sharp(path.join(tmp, file)).metadata();
  return [m.width, m.height];
};

/**
 * The CLI runs, started together once the bundle exists (each awaited by its test). About 1.5 s of
 * CPU each, but on a machine busy with training runs a process can wait minutes for a core: hence
 * the long timeouts, which cost nothing when the machine is idle.
 */
const WAIT = 900_000;
const runs: Record<string, Promise<Run>> = {};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-cli-edit-'));
  const data = makeShapes(64, 16, 1);
  bundle = path.join(tmp, 'run');
  (await trainTinyPipeline(tmp, { data, tokenizerSteps: 20, train: { steps: 10 } })).dispose();

  // A 32×24 image (the model takes 16×16: resized) with a red square, and a mask of its top-right corner.
  const W = 32;
  const H = 24;
  const img = new Uint8Array(W * H * 3).fill(255);
  for (let y = 6; y < 18; y++) for (let x = 8; x < 20; x++) img.set([220, 30, 30], (y * W + x) * 3);
  await writePng(path.join(tmp, 'red.png'), { data: img, width: W, height: H, channels: 3 });
  const mask = new Uint8Array(W * H);
  for (let y = 0; y < 8; y++) for (let x = 20; x < 32; x++) mask[y * W + x] = 255;
  await writePng(path.join(tmp, 'mask.png'), { data: mask, width: W, height: H, channels: 1 });

  const edit = (...args: string[]) => maskgen('edit', '--bundle', bundle, '--image', 'red.png', '--prompt', 'a blue square', '--backend', backend, ...args);
  runs.box = edit('--box', '8,6,12,12', '--steps', '4', '--seed', '3', '--out', 'box/edited.png', '--json');
  runs.mask = edit('--mask', 'mask.png', '--steps', '4', '--no-paste', '--out', 'mask/edited.png', '--json');
  runs.extend = edit('--extend', '8,0,16,6', '--steps', '3', '--out', 'extend/edited.png', '--json');
  runs.maskFree = edit('--mask-free', '--strength', '0.3', '--iterations', '3', '--revert', '0.25', '--n', '2', '--seed', '7', '--out', 'mask-free/edited.png', '--json');
  runs.noMode = edit();
  runs.twoModes = edit('--box', '0,0,4,4', '--mask-free');
  runs.outside = edit('--box', '24,0,16,8');
  runs.missing = maskgen('edit', '--bundle', bundle, '--image', 'nope.png', '--prompt', 'a blue square', '--box', '0,0,4,4', '--backend', backend);
  runs.strayFlag = edit('--box', '0,0,4,4', '--strength', '0.5');
  runs.badRevert = edit('--mask-free', '--revert', '-1');
}, WAIT);

afterAll(async () => {
  await Promise.allSettled(Object.values(runs));
  await rm(tmp, { recursive: true, force: true });
});

describe('maskgen edit', () => {
  it('inpaints a box given in the pixels of the image as given, writing PNG, before/after and sidecar', async () => {
    const r = await runs.box!;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/--image is 32×24, resized \(stretched\) to 16×16/);
    const out = lastJson(r);
    expect(out).toMatchObject({ mode: 'inpaint', files: ['box/edited.png'], beforeAfter: 'box/edited-before-after.png', grid: { cols: 4, rows: 4 } });
    // box 8,6,12,12 of 32×24 → 4,4,6,8 of 16×16 → token columns 1–2, rows 1–2
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'box/edited.json'), 'utf8'));
    expect(sidecar).toMatchObject({ mode: 'inpaint', prompt: 'a blue square', box: { x: 8, y: 6, w: 12, h: 12 }, boxScaled: { x: 4, y: 4, w: 6, h: 8 }, steps: 4, seed: 3, guidance: 3, paste: true, n: 1, resized: true });
    expect(sidecar.results[0].regenerated).toEqual([5, 6, 9, 10]);
    expect(sidecar.results[0].changed.every((i: number) => [5, 6, 9, 10].includes(i))).toBe(true);
    expect(await size('box/edited.png')).toEqual([16, 16]);
    expect(await size('box/edited-before-after.png')).toEqual([2 * 16 + 3 * 2, 16 + 2 * 2]);
  }, WAIT);

  it('inpaints a mask image (white = regenerate) with --no-paste', async () => {
    const r = await runs.mask!;
    expect(r.code, r.stderr).toBe(0);
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'mask/edited.json'), 'utf8'));
    // the mask's 12×8 top-right corner of 32×24 → columns 10–15, rows 0–5 of 16×16 → tokens (0–1, 2–3)
    expect(sidecar).toMatchObject({ mode: 'inpaint', mask: 'mask.png', paste: false });
    expect(sidecar.results[0].regenerated).toEqual([2, 3, 6, 7]);
  }, WAIT);

  it('outpaints: margins scaled to the model, rounded up to whole tokens', async () => {
    const r = await runs.extend!;
    expect(r.code, r.stderr).toBe(0);
    // 8,0,16,6 of 32×24 → 4,0,8,4 model pixels → 1,0,2,1 tokens → a 7×5 grid, 28×20 pixels
    expect(lastJson(r)).toMatchObject({ mode: 'outpaint', grid: { cols: 7, rows: 5 }, width: 28, height: 20 });
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'extend/edited.json'), 'utf8'));
    expect(sidecar).toMatchObject({ extend: { left: 8, top: 0, right: 16, bottom: 6 }, extendScaled: { left: 4, top: 0, right: 8, bottom: 4 }, extendTokens: { left: 1, top: 0, right: 2, bottom: 1 } });
    expect(sidecar.results[0].changed).toHaveLength(7 * 5 - 16);
    expect(await size('extend/edited.png')).toEqual([28, 20]);
    expect(await size('extend/edited-before-after.png')).toEqual([2 * 28 + 3 * 2, 20 + 2 * 2]);
  }, WAIT);

  it('edits mask-free, --n 2 writing one PNG each', async () => {
    const r = await runs.maskFree!;
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r);
    expect(out.mode).toBe('mask-free');
    expect(out.files).toEqual(['mask-free/edited-0.png', 'mask-free/edited-1.png']);
    expect(out.kept).toHaveLength(2);
    expect(await readdir(path.join(tmp, 'mask-free'))).toEqual(expect.arrayContaining(['edited-0.png', 'edited-1.png', 'edited-before-after.png', 'edited.json']));
    const sidecar = JSON.parse(await readFile(path.join(tmp, 'mask-free/edited.json'), 'utf8'));
    expect(sidecar).toMatchObject({ mode: 'mask-free', strength: 0.3, iterations: 3, revert: 0.25, steps: 1, seed: 7, n: 2, guidance: 6, temperature: 0.5, selection: 'least-likely', choiceTemperature: 4.5 });
    expect(sidecar).not.toHaveProperty('paste');
  }, WAIT);

  it('refuses bad input with one line and exit 1', async () => {
    const cases: [string, RegExp][] = [
      ['noMode', /^maskgen: error: choose an edit: --mask M\.png, --box x,y,w,h, --extend left,top,right,bottom or --mask-free$/],
      ['twoModes', /^maskgen: error: choose one edit, not --box and --mask-free$/],
      ['outside', /^maskgen: error: box 24,0,16,8 is not inside the 32×24 image/],
      ['missing', /^maskgen: error: cannot read image nope\.png: no such file$/],
      ['strayFlag', /^maskgen: error: --strength is for --mask-free, not --box$/],
      ['badRevert', /^maskgen: error: --revert must be a number ≥ 0, got -1$/],
    ];
    for (const [name, pattern] of cases) {
      const r = await runs[name]!;
      expect(r.code, name).toBe(1);
      expect(errorLine(r.stderr), name).toMatch(pattern);
    }
  }, WAIT);
});
