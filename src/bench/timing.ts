/** Timing helpers for `maskgen bench`: warm-up runs, then the median of measured runs. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `fn` `warmup` times unmeasured, then `runs` times; returns the median milliseconds. */
export async function timeMedian(fn: () => void | Promise<void>, runs: number, warmup = 1): Promise<number> {
  return (await timeInterleaved({ fn }, runs, warmup)).fn;
}

/**
 * Runs each of `fns` in turn, `warmup` rounds unmeasured then `runs` rounds; returns each one's
 * median milliseconds. Interleaved, so that a load that comes and goes (other work on the machine)
 * weighs on each alike and their ratio means something. With `settle` > 0, each measured run comes
 * after that many unmeasured runs of the same function, so that what the previous one left behind
 * (ONNX Runtime's thread pools spin for a while after a run, and take a core from whatever runs
 * next) weighs on none of them.
 */
export async function timeInterleaved<K extends string>(fns: Record<K, () => void | Promise<void>>, runs: number, warmup = 1, settle = 0): Promise<Record<K, number>> {
  const stats = await timeInterleavedStats(fns, runs, warmup, settle);
  return Object.fromEntries(Object.entries<{ median: number }>(stats).map(([k, v]) => [k, v.median])) as Record<K, number>;
}

/** As `timeInterleaved`, with each one's fastest run beside its median, and every run's milliseconds in order. */
export async function timeInterleavedStats<K extends string>(
  fns: Record<K, () => void | Promise<void>>,
  runs: number,
  warmup = 1,
  settle = 0,
): Promise<Record<K, { median: number; min: number; times: number[] }>> {
  const names = Object.keys(fns) as K[];
  for (let i = 0; i < warmup; i++) for (const k of names) await fns[k]();
  const times = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < runs; i++) {
    for (const k of names) {
      for (let j = 0; j < settle; j++) await fns[k]();
      const t0 = performance.now();
      await fns[k]();
      times[k].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(names.map((k) => [k, { median: median(times[k]), min: Math.min(...times[k]), times: times[k] }])) as Record<K, { median: number; min: number; times: number[] }>;
}

/** The median over runs of `a`'s milliseconds over `b`'s in the same round (how many times slower `a` is), from `timeInterleavedStats`. */
export function pairedRatio(a: { times: number[] }, b: { times: number[] }): number {
  return median(a.times.map((t, i) => t / b.times[i]!));
}
