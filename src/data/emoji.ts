/**
 * Emoji from the npm packages `emoji-datasource-<vendor>` (twitter, google, apple, facebook): each
 * package's emoji.json gives names and categories, its img/<vendor>/64/ folder the 64×64 PNGs. The
 * importer writes a data folder of RGB PNGs (alpha flattened onto white) with metadata.jsonl.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { fsError, writeFileAtomic } from '../io/atomic.js';
import { encodePng, ImageReadError, readImage, type Background } from './images.js';
import { METADATA_FILE } from './imagefolder.js';
import { pool } from './pool.js';

/** Vendors that emoji-data publishes image packages for. */
export const EMOJI_VENDORS = ['twitter', 'google', 'apple', 'facebook'] as const;
export type EmojiVendor = (typeof EMOJI_VENDORS)[number];

/** The fields of an emoji.json entry that we use. */
export interface EmojiEntry {
  name?: string | null;
  short_name?: string | null;
  unified: string;
  image: string;
  category?: string;
  subcategory?: string;
  skin_variations?: unknown;
  [field: string]: unknown;
}

/** The Fitzpatrick skin-tone modifiers; their swatches are listed as emoji of their own. */
const SKIN_TONE_MODIFIERS = new Set(['1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF']);

/** The caption of an emoji: its name lower-cased ("grinning face"), else its short name with spaces. */
export function emojiCaption(entry: Pick<EmojiEntry, 'name' | 'short_name' | 'unified'>): string {
  const name = entry.name?.trim();
  if (name) return name.toLowerCase();
  const short = entry.short_name?.trim();
  if (short) return short.replace(/_/g, ' ').toLowerCase();
  return `emoji ${entry.unified.toLowerCase()}`;
}

/** The folder of an installed `emoji-datasource-<vendor>` package; a UserError saying how to install it if absent. */
export function emojiPackageDir(vendor: string): string {
  if (!(EMOJI_VENDORS as readonly string[]).includes(vendor)) {
    throw new UserError(`unknown emoji vendor "${vendor}": choose from ${EMOJI_VENDORS.join(', ')}`);
  }
  const pkg = `emoji-datasource-${vendor}`;
  try {
    return dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new UserError(`the emoji images of ${vendor} are not installed: run npm install ${pkg}`);
  }
}

/** The entries of a vendor's emoji.json that have an image of that vendor, without skin-tone variants. */
export async function listEmoji(vendor: string): Promise<{ dir: string; entries: EmojiEntry[] }> {
  const dir = emojiPackageDir(vendor);
  const jsonPath = join(dir, 'emoji.json');
  let all: unknown;
  try {
    all = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (err) {
    throw new UserError(`cannot read ${jsonPath}: ${(err as Error).message}`);
  }
  if (!Array.isArray(all)) throw new UserError(`${jsonPath} is not a list of emoji`);
  const entries = (all as EmojiEntry[]).filter(
    (e) =>
      e &&
      typeof e.unified === 'string' &&
      typeof e.image === 'string' &&
      e[`has_img_${vendor}`] === true &&
      !SKIN_TONE_MODIFIERS.has(e.unified.toUpperCase()),
  );
  return { dir, entries };
}

export interface ImportEmojiOptions {
  vendors: string[];
  out: string;
  /** Output size in pixels (square). Default 64, the packages' own size. */
  size?: number;
  /** Import at most this many emoji per vendor (in emoji.json order). */
  limit?: number;
  /** Colour the transparent background is flattened onto. Default white. */
  background?: Background;
  concurrency?: number;
  /** Called for each emoji whose image is missing or unreadable (it is skipped). Default: stderr. */
  onWarning?: (message: string) => void;
  /** Progress over all vendors: done so far, of total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ImportEmojiResult {
  out: string;
  size: number;
  count: number;
  /** Images written per vendor. */
  perVendor: Record<string, number>;
  skipped: number;
}

/**
 * Writes `out/<vendor>_<unified>.png` (RGB, `size`×`size`) and `out/metadata.jsonl` with
 * `file_name`, `text` (the emoji's name), `vendor`, `category` (plus `subcategory`, `unified`).
 * metadata.jsonl is written last, atomically.
 */
export async function importEmoji(opts: ImportEmojiOptions): Promise<ImportEmojiResult> {
  const vendors = [...new Set(opts.vendors.map((v) => v.trim().toLowerCase()).filter((v) => v !== ''))];
  if (vendors.length === 0) throw new UserError(`name at least one emoji vendor (${EMOJI_VENDORS.join(', ')})`);
  const size = opts.size ?? 64;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new UserError(`size must be an integer 1–4096, got ${size}`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) {
    throw new UserError(`limit must be a positive integer, got ${opts.limit}`);
  }
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`maskgen: warning: ${m}\n`));

  // Resolve every vendor first, so a missing package fails before anything is written.
  const jobs: { vendor: string; dir: string; entry: EmojiEntry }[] = [];
  for (const vendor of vendors) {
    const { dir, entries } = await listEmoji(vendor);
    for (const entry of entries.slice(0, opts.limit ?? entries.length)) jobs.push({ vendor, dir, entry });
  }
  try {
    await mkdir(opts.out, { recursive: true });
  } catch (err) {
    throw fsError(err, 'create', opts.out);
  }

  const lines: (string | null)[] = new Array(jobs.length).fill(null);
  let done = 0;
  await pool(jobs.length, opts.concurrency ?? 8, async (i) => {
    const { vendor, dir, entry } = jobs[i]!;
    const src = join(dir, 'img', vendor, '64', entry.image);
    const fileName = `${vendor}_${entry.unified.toLowerCase()}.png`;
    try {
      const img = await readImage(src, { size, channels: 3, fit: 'contain', background: opts.background });
      const file = join(opts.out, fileName);
      await writeFile(file, await encodePng(img)).catch((e) => {
        throw fsError(e, 'write', file);
      });
      lines[i] = JSON.stringify({
        file_name: fileName,
        text: emojiCaption(entry),
        vendor,
        category: entry.category ?? null,
        subcategory: entry.subcategory ?? null,
        unified: entry.unified,
      });
    } catch (err) {
      if (!(err instanceof ImageReadError)) throw err;
      warn(`skipping ${vendor} emoji ${entry.unified}: ${err.reason} (${src})`);
    }
    done++;
    opts.onProgress?.(done, jobs.length);
  });

  const perVendor: Record<string, number> = Object.fromEntries(vendors.map((v) => [v, 0]));
  jobs.forEach((job, i) => {
    if (lines[i] !== null) perVendor[job.vendor]!++;
  });
  const kept = lines.filter((l): l is string => l !== null);
  if (kept.length === 0) throw new UserError(`no emoji image could be read for ${vendors.join(', ')}`);
  await writeFileAtomic(join(opts.out, METADATA_FILE), kept.join('\n') + '\n');
  return { out: opts.out, size, count: kept.length, perVendor, skipped: jobs.length - kept.length };
}
