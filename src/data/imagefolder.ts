/**
 * The data folder (the Hugging Face imagefolder convention): images plus `metadata.jsonl`, one
 * `{"file_name": "...", "text": "...", ...}` per line. Extra fields are kept; an integer `"label"`
 * becomes `labels`. Images are decoded concurrently into one uint8 array.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { UserError } from '../errors.js';
import { ImageReadError, readImage, type Background, type Channels, type Fit } from './images.js';
import { pool } from './pool.js';

export const METADATA_FILE = 'metadata.jsonl';

/** A loaded data set: `count` images of `height`×`width`×`channels`, in metadata order. */
export interface ImageSet {
  count: number;
  width: number;
  height: number;
  channels: Channels;
  /** count*height*width*channels bytes, image after image, each HWC row-major. */
  pixels: Uint8Array;
  captions: string[];
  /** File names as written in metadata.jsonl (relative to the folder). */
  files: string[];
  /** Integer labels from a `"label"` field, when any line has one. */
  labels?: (number | undefined)[];
  /** Each line's other fields (everything but file_name and text), in the same order. */
  extras?: Record<string, unknown>[];
  /** Lines whose image was missing or unreadable, and so left out. */
  skipped: number;
}

/** One line of metadata.jsonl. */
export interface MetadataEntry {
  file_name: string;
  text: string;
  label?: number;
  [field: string]: unknown;
}

export interface LoadImageFolderOptions {
  /** Output size: a number for a square, or width and height. */
  size: number | { width: number; height: number };
  channels: Channels;
  /** Default 'fill'. */
  fit?: Fit;
  /** Alpha is flattened onto it and 'contain' pads with it. Default white. */
  background?: Background;
  /** Load at most this many images (the first usable ones in metadata order). */
  limit?: number;
  /** How many images to decode at once. Default 32. */
  concurrency?: number;
  /** Called for each skipped image with a message naming the file. Default: a line on stderr (the first 20). */
  onWarning?: (message: string) => void;
  /** Called as images are decoded: done so far, of total to try. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Reads and validates `dir/metadata.jsonl`. A missing folder or file, a line that is not JSON, or a
 * line without a string `file_name` and `text` is a UserError naming the file and line.
 */
export async function readMetadata(dir: string): Promise<MetadataEntry[]> {
  return (await readMetadataLines(dir)).map((l) => l.entry);
}

async function readMetadataLines(dir: string): Promise<{ line: number; entry: MetadataEntry }[]> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new UserError(`data folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UserError(`data folder ${dir} is not a folder`);
  const path = join(dir, METADATA_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new UserError(
      `${path} is missing: a data folder needs ${METADATA_FILE} with one {"file_name": "...", "text": "..."} per line`,
    );
  }
  const entries: { line: number; entry: MetadataEntry }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${path} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new UserError(`${where}: invalid JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new UserError(`${where}: expected a JSON object like {"file_name": "...", "text": "..."}`);
    }
    const obj = value as Record<string, unknown>;
    if (typeof obj.file_name !== 'string' || obj.file_name === '') {
      throw new UserError(`${where}: "file_name" must be a non-empty string`);
    }
    if (typeof obj.text !== 'string') {
      throw new UserError(`${where}: "text" must be a string`);
    }
    entries.push({ line: i + 1, entry: obj as MetadataEntry });
  }
  return entries;
}

function defaultWarning(): (message: string) => void {
  let shown = 0;
  return (message) => {
    shown++;
    if (shown <= 20) process.stderr.write(`maskgen: warning: ${message}\n`);
    else if (shown === 21) process.stderr.write('maskgen: warning: (more images skipped; not listing them all)\n');
  };
}

/**
 * Loads a data folder into memory at one size and channel count. Images that are missing or
 * unreadable are skipped with a warning and counted in `skipped`; a folder with no usable image is
 * a UserError.
 */
export async function loadImageFolder(dir: string, opts: LoadImageFolderOptions): Promise<ImageSet> {
  const lines = await readMetadataLines(dir);
  const entries = lines.map((l) => l.entry);
  const metaPath = join(dir, METADATA_FILE);
  if (entries.length === 0) throw new UserError(`${metaPath} lists no images`);
  const size = typeof opts.size === 'number' ? { width: opts.size, height: opts.size } : opts.size;
  const { width, height } = size;
  const channels = opts.channels;
  const limit = opts.limit === undefined ? Infinity : opts.limit;
  if (!(limit >= 1)) throw new UserError(`limit must be at least 1, got ${opts.limit}`);
  const warn = opts.onWarning ?? defaultWarning();
  const imageBytes = width * height * channels;

  // Decode into slots by metadata index, then close the gaps left by skipped lines.
  const slots = Math.min(entries.length, limit);
  let pixels = new Uint8Array(slots * imageBytes);
  const ok = new Uint8Array(entries.length); // 1 = decoded, 2 = skipped
  let good = 0;
  let done = 0;
  const total = Math.min(entries.length, limit);
  // With a limit, slot i holds the i-th entry; entries beyond the slots (tried only to replace
  // skipped ones) get buffers of their own.
  const overflow = new Map<number, Uint8Array>();
  await pool(
    entries.length,
    opts.concurrency ?? 32,
    async (i) => {
      const entry = entries[i]!;
      const file = join(dir, entry.file_name);
      try {
        const img = await readImage(file, { size, channels, fit: opts.fit, background: opts.background });
        if (i < slots) pixels.set(img.data, i * imageBytes);
        else overflow.set(i, img.data);
        ok[i] = 1;
        good++;
      } catch (err) {
        if (!(err instanceof ImageReadError)) throw err;
        ok[i] = 2;
        warn(`skipping ${entry.file_name} (${metaPath} line ${lines[i]!.line}): ${err.reason}`);
      }
      done++;
      opts.onProgress?.(Math.min(done, total), total);
    },
    () => good >= limit,
  );

  const keep: number[] = [];
  for (let i = 0; i < entries.length && keep.length < limit; i++) if (ok[i] === 1) keep.push(i);
  // Lines after the last kept image count as skipped only if the limit was not reached (they were all tried).
  const tried = keep.length >= limit ? keep[keep.length - 1]! + 1 : entries.length;
  let skipped = 0;
  for (let i = 0; i < tried; i++) if (ok[i] === 2) skipped++;
  if (keep.length === 0) {
    throw new UserError(`no usable image in ${dir}: all ${entries.length} listed in ${METADATA_FILE} were missing or unreadable`);
  }

  const count = keep.length;
  if (count !== slots || keep[count - 1] !== count - 1) {
    const packed = new Uint8Array(count * imageBytes);
    keep.forEach((i, k) => {
      const src = i < slots ? pixels.subarray(i * imageBytes, (i + 1) * imageBytes) : overflow.get(i)!;
      packed.set(src, k * imageBytes);
    });
    pixels = packed;
  }

  const kept = keep.map((i) => entries[i]!);
  const hasLabels = kept.some((e) => e.label !== undefined);
  return {
    count,
    width,
    height,
    channels,
    pixels,
    captions: kept.map((e) => e.text),
    files: kept.map((e) => e.file_name),
    labels: hasLabels ? kept.map((e) => (Number.isInteger(e.label) ? (e.label as number) : undefined)) : undefined,
    extras: kept.map(({ file_name: _f, text: _t, ...rest }) => rest),
    skipped,
  };
}

/** The images at `indices` as a set of their own (pixels copied; captions, files, labels and extras follow). */
export function selectImages(set: ImageSet, indices: readonly number[]): ImageSet {
  const per = set.width * set.height * set.channels;
  const pixels = new Uint8Array(indices.length * per);
  indices.forEach((idx, i) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= set.count) throw new Error(`image index ${idx} out of range 0..${set.count - 1}`);
    pixels.set(set.pixels.subarray(idx * per, (idx + 1) * per), i * per);
  });
  return {
    ...set,
    count: indices.length,
    pixels,
    captions: indices.map((i) => set.captions[i]!),
    files: indices.map((i) => set.files[i]!),
    labels: set.labels && indices.map((i) => set.labels![i]),
    extras: set.extras && indices.map((i) => set.extras![i]!),
    skipped: 0,
  };
}

/**
 * The caption of an image file from the `metadata.jsonl` of its folder (matched by file name), or
 * undefined when the folder has no metadata.jsonl or it does not list the file.
 */
export async function captionFor(file: string): Promise<string | undefined> {
  const dir = dirname(file);
  try {
    await stat(join(dir, METADATA_FILE));
  } catch {
    return undefined;
  }
  const name = relative(dir, file);
  return (await readMetadata(dir)).find((e) => e.file_name === name)?.text;
}
