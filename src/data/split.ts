/**
 * A seeded hold-out split of a data folder: the indices it keeps for training and those it holds
 * out, and writing the two halves as data folders of their own (so every stage can train on one
 * and be measured on the other).
 */
import { copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { Rng } from '../random.js';
import { METADATA_FILE, readMetadata, type MetadataEntry } from './imagefolder.js';

/** The indices a seeded `fraction` of `count` items leaves for training, and those it holds out (both sorted). */
export function holdOutSplit(count: number, fraction: number, seed: number): { train: number[]; held: number[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new UserError(`hold-out fraction must be in [0, 1), got ${fraction}`);
  const order = new Rng(seed + 7).permutation(count);
  const k = Math.round(count * fraction);
  const held = order.slice(0, k).sort((a, b) => a - b);
  const heldSet = new Set(held);
  return { train: Array.from({ length: count }, (_, i) => i).filter((i) => !heldSet.has(i)), held };
}

export interface SplitFolderResult {
  train: number;
  held: number;
}

/**
 * Writes `trainOut` and `heldOut` as data folders holding the two sides of `holdOutSplit` over the
 * lines of `dir`'s metadata.jsonl (images hard-linked where the file system allows, else copied).
 * The held-out side is the same as `train-refiner --hold-out` picks for the same seed and folder.
 */
export async function splitDataFolder(dir: string, fraction: number, seed: number, trainOut: string, heldOut: string): Promise<SplitFolderResult> {
  const entries = await readMetadata(dir);
  const { train, held } = holdOutSplit(entries.length, fraction, seed);
  await writeSubset(dir, entries, train, trainOut);
  await writeSubset(dir, entries, held, heldOut);
  return { train: train.length, held: held.length };
}

async function writeSubset(dir: string, entries: MetadataEntry[], indices: number[], out: string): Promise<void> {
  await mkdir(out, { recursive: true });
  for (const i of indices) {
    const name = entries[i]!.file_name;
    const from = join(dir, name);
    const to = join(out, name);
    await mkdir(join(to, '..'), { recursive: true });
    try {
      await link(from, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      await copyFile(from, to);
    }
  }
  await writeFile(join(out, METADATA_FILE), indices.map((i) => JSON.stringify(entries[i])).join('\n') + '\n');
}
