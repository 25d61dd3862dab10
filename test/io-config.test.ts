import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UserError } from '../src/errors.js';
import {
  configDiff,
  listPresets,
  loadConfig,
  packageRoot,
  packageVersion,
  parseConfig,
  readJsonFile,
  resolvePreset,
} from '../src/io/config.js';

const Vq = z.strictObject({
  patchSize: z.number().int().positive().default(4),
  dim: z.number(),
  kind: z.enum(['vit', 'conv']).default('vit'),
  heads: z.array(z.number()).default([2, 2]),
  codebook: z.strictObject({ size: z.number(), dim: z.number().default(8) }).default({ size: 512, dim: 8 }),
});

/** Runs f, returns the UserError's message (failing the test if it does not throw one). */
async function userError(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'maskgen-config-'));
  await writeFile(path.join(dir, 'tiny.json'), JSON.stringify({ vqgan: { dim: 16 }, transformer: { layers: 2 } }));
  await writeFile(path.join(dir, 'small.json'), JSON.stringify({ vqgan: { dim: 64, patchSize: 8 } }));
  await writeFile(path.join(dir, 'bad-type.json'), JSON.stringify({ vqgan: { dim: 16, patchSize: '4' } }));
  await writeFile(path.join(dir, 'bad-key.json'), JSON.stringify({ vqgan: { dim: 16, patchsize: 4 } }));
  await writeFile(path.join(dir, 'bad-many.json'), JSON.stringify({ vqgan: { patchSize: -1, kind: 'mlp', heads: [1, 'x'] } }));
  await writeFile(path.join(dir, 'broken.json'), '{\n  "vqgan": {\n    "dim": 16,\n  }\n}\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseConfig', () => {
  it('applies defaults', () => {
    expect(parseConfig(Vq, { dim: 3 }, 'x')).toEqual({ patchSize: 4, dim: 3, kind: 'vit', heads: [2, 2], codebook: { size: 512, dim: 8 } });
  });

  it('names the field: wrong type, unknown field, missing field, bad value', async () => {
    expect(await userError(() => parseConfig(Vq, { dim: 3, patchSize: 'big' }, 'config c.json'))).toBe(
      'config c.json: patchSize: expected number, received string',
    );
    expect(await userError(() => parseConfig(Vq, { dim: 3, patchsize: 4 }, 'config c.json'))).toBe(
      "config c.json: unknown field 'patchsize' (did you mean 'patchSize'?)",
    );
    expect(await userError(() => parseConfig(Vq, { dim: 3, codebook: { size: 2, dims: 4, x: 1 } }, 'w'))).toBe(
      "w: codebook: unknown fields 'dims', 'x'",
    );
    expect(await userError(() => parseConfig(Vq, {}, 'w'))).toBe("w: missing field 'dim' (expected number)");
    expect(await userError(() => parseConfig(Vq, { dim: 1, codebook: {} }, 'w'))).toBe(
      "w: codebook: missing field 'size' (expected number)",
    );
    expect(await userError(() => parseConfig(Vq, { dim: 1, kind: 'mlp' }, 'w'))).toMatch(/^w: kind: invalid option: expected one of .*vit.*conv.*, got "mlp"$/);
    expect(await userError(() => parseConfig(Vq, { dim: 1, heads: [1, 'x'] }, 'w'))).toBe('w: heads[1]: expected number, received string');
    expect(await userError(() => parseConfig(Vq, 7, 'w'))).toBe('w: expected object, received number');
  });

  it('puts a misspelt field before the missing one it causes, and suggests the right name', async () => {
    expect(await userError(() => parseConfig(Vq, { dimm: 3 }, 'w'))).toBe("w: unknown field 'dimm' (did you mean 'dim'?) (and 1 more problem)");
    expect(await userError(() => parseConfig(Vq, { dim: 3, codebook: { size: 1, dimension: 2 } }, 'w'))).toBe(
      "w: codebook: unknown field 'dimension'",
    );
    expect(await userError(() => parseConfig(Vq, { dim: 3, codebook: { sise: 1 } }, 'w'))).toBe(
      "w: codebook: unknown field 'sise' (did you mean 'size'?) (and 1 more problem)",
    );
  });

  it('names the first of several problems and counts the rest', async () => {
    const msg = await userError(() => parseConfig(Vq, { patchSize: 1.5, kind: 'mlp' }, 'w'));
    expect(msg).toMatch(/^w: patchSize: .* \(and 2 more problems\)$/);
  });
});

describe('readJsonFile', () => {
  it('reads JSON', async () => {
    expect(await readJsonFile(path.join(dir, 'small.json'))).toEqual({ vqgan: { dim: 64, patchSize: 8 } });
  });
  it('a missing file is a UserError naming it', async () => {
    const f = path.join(dir, 'none.json');
    expect(await userError(() => readJsonFile(f))).toBe(`${f}: no such file`);
  });
  it('invalid JSON is a UserError naming the file and the line', async () => {
    const f = path.join(dir, 'broken.json');
    const msg = await userError(() => readJsonFile(f));
    expect(msg.startsWith(`${f}: invalid JSON at line 4, column 3: `)).toBe(true);
    expect(msg).not.toContain('\n');
  });
  it('a folder is a UserError', async () => {
    await userError(() => readJsonFile(dir));
  });
});

describe('presets', () => {
  it('finds the package root from this module', () => {
    const root = packageRoot();
    expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('maskgen');
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('resolves bare names in the configs folder, passes paths through', () => {
    expect(resolvePreset('tiny', { configsDir: dir })).toBe(path.join(dir, 'tiny.json'));
    expect(resolvePreset('small', { configsDir: dir })).toBe(path.join(dir, 'small.json'));
    expect(resolvePreset('some/dir/c.json', { configsDir: dir })).toBe('some/dir/c.json');
    expect(resolvePreset('c.json', { configsDir: dir })).toBe('c.json');
    expect(resolvePreset('./tiny', { configsDir: dir })).toBe('./tiny');
    expect(listPresets(dir)).toEqual(['bad-key', 'bad-many', 'bad-type', 'broken', 'small', 'tiny']);
  });

  it('an unknown preset is a UserError listing the presets', async () => {
    const msg = await userError(() => resolvePreset('huge', { configsDir: dir }));
    expect(msg).toContain("unknown preset 'huge'");
    expect(msg).toContain('small, tiny');
  });

  it.skipIf(!existsSync(path.join(packageRoot(), 'configs', 'tiny.json')))('resolves the shipped tiny preset', () => {
    expect(resolvePreset('tiny')).toBe(path.join(packageRoot(), 'configs', 'tiny.json'));
    expect(listPresets()).toContain('tiny');
  });
});

describe('loadConfig', () => {
  it('loads a section with defaults, by preset name and by path', async () => {
    expect(await loadConfig(Vq, 'tiny', 'vqgan', { configsDir: dir })).toMatchObject({ dim: 16, patchSize: 4 });
    expect(await loadConfig(Vq, path.join(dir, 'small.json'), 'vqgan')).toMatchObject({ dim: 64, patchSize: 8 });
  });

  it('errors name the file and the field path including the section', async () => {
    const f = (n: string) => path.join(dir, n);
    expect(await userError(() => loadConfig(Vq, f('bad-type.json'), 'vqgan'))).toBe(
      `config ${f('bad-type.json')}: vqgan.patchSize: expected number, received string`,
    );
    expect(await userError(() => loadConfig(Vq, f('bad-key.json'), 'vqgan'))).toBe(
      `config ${f('bad-key.json')}: vqgan: unknown field 'patchsize' (did you mean 'patchSize'?)`,
    );
    expect(await userError(() => loadConfig(Vq, f('bad-many.json'), 'vqgan'))).toMatch(
      /^config .*bad-many\.json: vqgan\.patchSize: .* \(and 3 more problems\)$/,
    );
    expect(await userError(() => loadConfig(Vq, f('small.json'), 'refiner'))).toBe(`config ${f('small.json')}: no 'refiner' section (it has 'vqgan')`);
    expect(await userError(() => loadConfig(Vq, f('small.json')))).toBe(
      `config ${f('small.json')}: unknown field 'vqgan' (and 1 more problem)`,
    );
  });
});

describe('configDiff', () => {
  it('is null for equal configs, whatever the key order', () => {
    expect(configDiff({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 })).toBeNull();
    expect(configDiff({ a: 1, u: undefined }, { a: 1 })).toBeNull();
    expect(configDiff(3, 3)).toBeNull();
  });
  it('names the first differing field with both values', () => {
    expect(configDiff({ vqgan: { dim: 64, heads: [2, 4] } }, { vqgan: { dim: 128, heads: [2, 4] } })).toBe('vqgan.dim: 64 vs 128');
    expect(configDiff({ v: { heads: [2, 4] } }, { v: { heads: [2, 8] } })).toBe('v.heads[1]: 4 vs 8');
    expect(configDiff({ v: { heads: [2] } }, { v: { heads: [2, 8] } })).toBe('v.heads: [2] vs [2,8]');
    expect(configDiff({ a: 1 }, { a: 1, b: 'x' })).toBe('b: (missing) vs "x"');
    expect(configDiff({ a: { b: 1 } }, { a: 5 })).toBe('a: {"b":1} vs 5');
    expect(configDiff(1, 2)).toBe('(whole config): 1 vs 2');
  });
});
