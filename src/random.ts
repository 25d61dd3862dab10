/**
 * Seeded randomness. Everything random in maskgen (shuffling, masking, sampling, initialisation)
 * draws from an Rng made from a seed, so that the same seed gives the same result.
 */

/** mulberry32: a small, fast 32-bit generator with good statistical quality for our uses. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator's position, for a checkpoint: `restore(save())` continues the same sequence. */
  save(): number {
    return this.state;
  }

  /** Continues from a position `save()` returned. */
  restore(state: number): void {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) throw new Error(`Rng.restore: not a saved state: ${state}`);
    this.state = state;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal sample (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Fills `out` with standard normal samples, `scale` times, added to what is there when `add`.
   * Box–Muller keeping both values of each pair (cos and sin): half the logarithms, roots and
   * uniform draws of `normal()` per sample, for a training step's noise. Its sequence is not
   * `normal()`'s.
   */
  fillNormal(out: Float32Array, scale = 1, add = false): Float32Array {
    const n = out.length;
    for (let i = 0; i < n; i += 2) {
      let u = 0;
      while (u === 0) u = this.next();
      const r = Math.sqrt(-2 * Math.log(u)) * scale;
      const a = 2 * Math.PI * this.next();
      const z0 = r * Math.cos(a);
      out[i] = add ? out[i]! + z0 : z0;
      if (i + 1 < n) {
        const z1 = r * Math.sin(a);
        out[i + 1] = add ? out[i + 1]! + z1 : z1;
      }
    }
    return out;
  }

  /** A 31-bit seed for another generator or for a tfjs random op. */
  seed(): number {
    return Math.floor(this.next() * 2147483647);
  }

  /** Shuffles an array in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

/** The positions of named generators, for a checkpoint (`restoreRngs` continues them). */
export function saveRngs(rngs: Record<string, Rng>): Record<string, number> {
  return Object.fromEntries(Object.entries(rngs).map(([name, r]) => [name, r.save()]));
}

/**
 * Continues named generators from positions `saveRngs` gave. A name `saved` lacks (a checkpoint
 * from before random state was kept) keeps its seeded start.
 */
export function restoreRngs(rngs: Record<string, Rng>, saved: unknown): void {
  if (typeof saved !== 'object' || saved === null) return;
  for (const [name, r] of Object.entries(rngs)) {
    const s = (saved as Record<string, unknown>)[name];
    if (typeof s === 'number') r.restore(s);
  }
}
