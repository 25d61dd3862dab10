import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetadata } from '../src/data/imagefolder.js';
import { holdOutSplit, splitDataFolder } from '../src/data/split.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('holdOutSplit', () => {
  it('holds out round(fraction · count) items, seeded, disjoint from the rest and together all of them', () => {
    const a = holdOutSplit(50, 0.1, 0);
    expect(a.held).toHaveLength(5);
    expect(a.train).toHaveLength(45);
    expect([...a.train, ...a.held].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(holdOutSplit(50, 0.1, 0)).toEqual(a);
    expect(holdOutSplit(50, 0.1, 1).held).not.toEqual(a.held);
    expect(holdOutSplit(50, 0, 0).held).toEqual([]);
    expect(() => holdOutSplit(50, 1, 0)).toThrow(/hold-out fraction must be in \[0, 1\)/);
  });
});

describe('splitDataFolder', () => {
  it('writes the two sides as data folders with their images and metadata lines', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'maskgen-split-'));
    dirs.push(dir);
    const src = path.join(dir, 'all');
    await import('node:fs/promises').then((f) => f.mkdir(src));
    const lines = Array.from({ length: 20 }, (_, i) => ({ file_name: `img${i}.png`, text: `caption ${i}`, label: i % 3 }));
    for (const l of lines) await writeFile(path.join(src, l.file_name), `fake ${l.file_name}`);
    await writeFile(path.join(src, 'metadata.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const r = await splitDataFolder(src, 0.25, 0, path.join(dir, 'train'), path.join(dir, 'held'));
    expect(r).toEqual({ train: 15, held: 5 });
    const train = await readMetadata(path.join(dir, 'train'));
    const held = await readMetadata(path.join(dir, 'held'));
    expect(held.map((e) => e.file_name)).toEqual(holdOutSplit(20, 0.25, 0).held.map((i) => `img${i}.png`));
    expect([...train, ...held].map((e) => e.text).sort()).toEqual(lines.map((l) => l.text).sort());
    expect(held[0]).toEqual(lines[holdOutSplit(20, 0.25, 0).held[0]!]);
    expect((await readdir(path.join(dir, 'held'))).filter((f) => f.endsWith('.png')).sort()).toEqual(held.map((e) => e.file_name).sort());
  });
});
