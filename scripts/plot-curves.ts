/**
 * Training curves as one PNG: each `--panel "title=RUN/logs/x.jsonl:field"` becomes a plot of the
 * field against the step (a light line for the logged values, a dark one for their moving
 * average). Drawn as SVG and rendered with sharp.
 *
 *   npx tsx scripts/plot-curves.ts --out docs/images/curves.png \
 *     --panel "tokenizer L1=runs/emoji-tok3/logs/vqgan.jsonl:l1" --panel "transformer=runs/emoji3/logs/transformer.jsonl:loss"
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

const args = await yargs(hideBin(process.argv))
  .option('panel', { type: 'string', array: true, demandOption: true, describe: 'title=file.jsonl:field' })
  .option('out', { type: 'string', demandOption: true })
  .option('smooth', { type: 'number', default: 15, describe: 'moving-average window (logged points)' })
  .option('log-y', { type: 'boolean', default: true, describe: 'logarithmic y axis' })
  .strict()
  .parse();

const W = 360;
const H = 240;
const M = { l: 52, r: 12, t: 28, b: 34 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

async function panel(spec: string, x0: number): Promise<string> {
  const m = /^(.*)=(.*):(\w+)$/.exec(spec);
  if (!m) throw new Error(`--panel ${spec}: expected title=file.jsonl:field`);
  const [, title, file, field] = m as unknown as [string, string, string, string];
  const rows = (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((r) => Number.isFinite(r[field]) && r[field]! > 0);
  // a resumed run appends: keep the last value logged for each step
  const byStep = new Map<number, number>();
  for (const r of rows) byStep.set(r.step!, r[field]!);
  const pts = [...byStep].sort((a, b) => a[0] - b[0]);
  const ys = pts.map(([, y]) => y);
  const smooth = ys.map((_, i) => {
    const from = Math.max(0, i - args.smooth + 1);
    const w = ys.slice(from, i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
  const f = (y: number) => (args.logY ? Math.log10(y) : y);
  const lo = Math.min(...smooth.map(f), ...ys.map(f).sort((a, b) => a - b).slice(Math.floor(ys.length * 0.02), Math.floor(ys.length * 0.02) + 1));
  const hi = Math.max(...smooth.map(f));
  const maxStep = pts.at(-1)![0];
  const px = (s: number) => x0 + M.l + (s / maxStep) * (W - M.l - M.r);
  const py = (y: number) => M.t + (1 - (Math.min(hi, Math.max(lo, f(y))) - lo) / (hi - lo || 1)) * (H - M.t - M.b);
  const line = (vals: number[]) => vals.map((y, i) => `${px(pts[i]![0]).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => {
    const y = args.logY ? 10 ** v : v;
    return `<text x="${x0 + M.l - 4}" y="${(M.t + (1 - (v - lo) / (hi - lo || 1)) * (H - M.t - M.b) + 4).toFixed(1)}" text-anchor="end">${y.toPrecision(2)}</text>`;
  });
  return [
    `<rect x="${x0 + M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#999"/>`,
    `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)} (${esc(field)})</text>`,
    ...ticks,
    `<text x="${x0 + M.l}" y="${H - 12}">0</text><text x="${x0 + W - M.r}" y="${H - 12}" text-anchor="end">${maxStep} steps</text>`,
    `<polyline fill="none" stroke="#9ecae1" stroke-width="1" points="${line(ys)}"/>`,
    `<polyline fill="none" stroke="#08519c" stroke-width="2" points="${line(smooth)}"/>`,
  ].join('\n');
}

const parts = await Promise.all(args.panel.map((p, i) => panel(p, i * W)));
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * parts.length}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${parts.join('\n')}
</svg>`;
await sharp(Buffer.from(svg)).png().toFile(path.resolve(args.out));
process.stdout.write(JSON.stringify({ out: args.out, panels: args.panel.length }) + '\n');
