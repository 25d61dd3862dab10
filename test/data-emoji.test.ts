/**
 * The emoji importer on the real installed emoji-datasource-twitter and -google packages, and the
 * `maskgen data` commands as a user runs them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { emojiCaption, importEmoji, listEmoji, type EmojiEntry } from '../src/data/emoji.js';
import { loadImageFolder } from '../src/data/imagefolder.js';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname, '..');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'maskgen-emoji-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('emojiCaption', () => {
  it('lower-cases the name, else uses the short name with spaces', () => {
    expect(emojiCaption({ name: 'GRINNING FACE', short_name: 'grinning', unified: '1F600' })).toBe('grinning face');
    expect(emojiCaption({ name: null, short_name: 'smiling_imp', unified: '1F608' })).toBe('smiling imp');
  });
});

describe('listEmoji', () => {
  it('lists the real emoji with images, without skin-tone variants or swatches', async () => {
    const { entries } = await listEmoji('twitter');
    expect(entries.length).toBeGreaterThan(1500);
    expect(entries.some((e) => e.unified === '1F3FB')).toBe(false);
    expect(entries.every((e) => !/-1F3F[B-F]/.test(e.unified))).toBe(true);
    const grinning = entries.find((e) => e.unified === '1F600')!;
    expect(emojiCaption(grinning)).toBe('grinning face');
    expect(grinning.category).toBe('Smileys & Emotion');
  });

  it('says how to install a vendor that is missing, and rejects an unknown one', async () => {
    let apple = true;
    try {
      require.resolve('emoji-datasource-apple/package.json');
    } catch {
      apple = false;
    }
    if (!apple) await expect(listEmoji('apple')).rejects.toThrow(/run npm install emoji-datasource-apple/);
    await expect(listEmoji('myspace')).rejects.toThrow(UserError);
    await expect(importEmoji({ vendors: ['twitter', 'myspace'], out: path.join(tmp, 'never') })).rejects.toThrow(/unknown emoji vendor "myspace"/);
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });
});

describe('importEmoji', () => {
  it('writes real images and names from both vendors', async () => {
    const out = path.join(tmp, 'both');
    const r = await importEmoji({ vendors: ['twitter', 'google'], out, size: 32, limit: 12 });
    expect(r.perVendor).toEqual({ twitter: 12, google: 12 });
    expect(r.count).toBe(24);
    const lines = (await readFile(path.join(out, 'metadata.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(24);
    const json = require('emoji-datasource-twitter/emoji.json') as EmojiEntry[];
    const names = new Map(json.map((e) => [e.unified.toLowerCase(), (e.name ?? '').toLowerCase()]));
    for (const l of lines) {
      expect(l.file_name).toMatch(/^(twitter|google)_[0-9a-f-]+\.png$/);
      expect(existsSync(path.join(out, l.file_name))).toBe(true);
      expect(l.text).toBe(names.get(l.file_name.replace(/^\w+_|\.png$/g, '')));
      expect(typeof l.category).toBe('string');
    }
    expect(lines[0]).toMatchObject({ file_name: 'twitter_0023-fe0f-20e3.png', text: 'hash key', vendor: 'twitter', category: 'Symbols' });
    expect(lines.filter((l) => l.vendor === 'google')).toHaveLength(12);

    const set = await loadImageFolder(out, { size: 32, channels: 3 });
    expect(set.count).toBe(24);
    expect(set.skipped).toBe(0);
    // RGB on white: transparent corners are white, and the art itself is coloured.
    const per = 32 * 32 * 3;
    for (let i = 0; i < set.count; i++) {
      const img = set.pixels.subarray(i * per, (i + 1) * per);
      expect(Array.from(img.subarray(0, 3))).toEqual([255, 255, 255]);
      expect(img.some((v) => v < 200)).toBe(true);
    }
  });
});

describe('maskgen data', () => {
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  const run = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(tsx, [path.join(root, 'src/cli/main.ts'), 'data', ...args], { cwd: tmp });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('import-emoji prints a summary and a JSON line with the counts', async () => {
    const out = path.join(tmp, 'cli');
    const r = await run('import-emoji', '--vendors', 'twitter,google', '--out', out, '--size', '16', '--limit', '3', '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^wrote 6 emoji images \(twitter 3, google 3\) at 16×16/);
    const json = JSON.parse(lines.at(-1)!);
    expect(json).toMatchObject({ count: 6, perVendor: { twitter: 3, google: 3 }, size: 16 });
    expect(existsSync(path.join(out, 'metadata.jsonl'))).toBe(true);
  });

  it('fails with one line for a bad vendor or a missing Fashion-MNIST source', async () => {
    const bad = await run('import-emoji', '--vendors', 'myspace', '--out', path.join(tmp, 'x'));
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(/^maskgen: error: unknown emoji vendor "myspace"/);
    const fm = await run('import-fashion-mnist', '--out', path.join(tmp, 'y'), '--source', path.join(tmp, 'nowhere'));
    expect(fm.code).toBe(1);
    expect(fm.stderr.trim().split('\n').at(-1)).toMatch(/^maskgen: error: Fashion-MNIST file train-images-idx3-ubyte\[\.gz\] not found/);
  });
});
