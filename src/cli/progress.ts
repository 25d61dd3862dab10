/**
 * Progress bars for long work (cli-progress on stderr). Silent when stderr is not a terminal and
 * `MASKGEN_PROGRESS` is unset, except for a line every ~10% so that logs still show progress.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advance to `value` (absolute), with optional named figures shown after the bar. */
  update(value: number, figures?: Record<string, string | number>): void;
  stop(): void;
}

function formatFigures(figures: Record<string, string | number>): string {
  return Object.entries(figures)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`)
    .join('  ');
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toPrecision(4);
}

export function progress(label: string, total: number, start = 0): Progress {
  const tty = process.stderr.isTTY || process.env.MASKGEN_PROGRESS === '1';
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {eta_formatted} left  {figures}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, start, { figures: '' });
    return {
      update: (value, figures) => bar.update(value, { figures: figures ? formatFigures(figures) : '' }),
      stop: () => bar.stop(),
    };
  }
  let lastDecile = Math.floor((start / Math.max(1, total)) * 10);
  const t0 = Date.now();
  return {
    update(value, figures) {
      const decile = Math.floor((value / Math.max(1, total)) * 10);
      if (decile > lastDecile || value === total) {
        lastDecile = decile;
        const secs = ((Date.now() - t0) / 1000).toFixed(0);
        process.stderr.write(`${label} ${value}/${total} (${secs}s)  ${figures ? formatFigures(figures) : ''}\n`);
      }
    },
    stop() {},
  };
}

/**
 * A training progress bar: `report(step, figures)` updates it every `every` steps with the steps/s
 * measured since the previous update (the first update after a resume only sets the start).
 */
export function trainingProgress(label: string, total: number, every = 5): { report: (step: number, figures: Record<string, number>) => void; stop: () => void } {
  const bar = progress(label, total);
  let last: { step: number; time: number } | undefined;
  return {
    report(step, figures) {
      if (step % every !== 0 && step !== total) return;
      const now = Date.now();
      const rate = last ? ((step - last.step) * 1000) / Math.max(1, now - last.time) : undefined;
      last = { step, time: now };
      bar.update(step, rate === undefined ? figures : { 'steps/s': rate, ...figures });
    },
    stop: () => bar.stop(),
  };
}
