/**
 * How sure a measured share is: the Wilson score interval of `hits` successes in `n` trials (Wilson
 * 1927), which stays inside [0, 1] and behaves at 0 and n hits, unlike p ± z·√(p(1−p)/n). With 200
 * prompts a share near 65 % is known to about ±6.5 points at 95 %: differences smaller than that
 * between two models are not shown by one evaluation.
 */
export function wilsonInterval(hits: number, n: number, z = 1.959963984540054): { low: number; high: number } {
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(hits) || hits < 0 || hits > n) throw new Error(`hits must be an integer in 0..${n}, got ${hits}`);
  const p = hits / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt(p * (1 - p) / n + z2n / (4 * n))) / (1 + z2n);
  // At no hits and at all hits the bound is exactly 0 or 1 (rounding would leave 1e-16 off).
  return { low: hits === 0 ? 0 : centre - half, high: hits === n ? 1 : centre + half };
}
