/**
 * Fréchet distance between two sets of feature vectors summarised as Gaussians (mean and
 * covariance), as FID does with Inception features; here the features come from any network.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

export interface FeatureStats {
  /** [dim] */
  mean: Float64Array;
  /** [dim·dim] row-major, unbiased (divided by count − 1). */
  cov: Float64Array;
  count: number;
  dim: number;
}

/** Mean and unbiased covariance of `count` feature vectors of length `dim`, stored row after row. */
export function featureStats(features: Float32Array, count: number, dim: number): FeatureStats {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`feature dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(count) || count < 2) throw new Error(`feature statistics need at least 2 vectors, got ${count}`);
  if (features.length !== count * dim) throw new Error(`expected ${count}×${dim} = ${count * dim} feature values, got ${features.length}`);
  const mean = new Float64Array(dim);
  for (let n = 0; n < count; n++) for (let i = 0; i < dim; i++) mean[i]! += features[n * dim + i]!;
  for (let i = 0; i < dim; i++) mean[i]! /= count;
  const cov = new Float64Array(dim * dim);
  const d = new Float64Array(dim);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < dim; i++) d[i] = features[n * dim + i]! - mean[i]!;
    for (let i = 0; i < dim; i++) {
      const di = d[i]!;
      if (di === 0) continue;
      for (let j = i; j < dim; j++) cov[i * dim + j]! += di * d[j]!;
    }
  }
  for (let i = 0; i < dim; i++)
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j]! / (count - 1);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  return { mean, cov, count, dim };
}

function toMatrix(cov: Float64Array, dim: number): Matrix {
  return new Matrix(Array.from({ length: dim }, (_, i) => Array.from(cov.subarray(i * dim, (i + 1) * dim))));
}

/** Eigenvalues of a symmetric matrix (symmetrised first), tiny negative ones clamped to 0. */
function symEig(m: Matrix): { values: number[]; vectors: Matrix } {
  const sym = m.clone().add(m.transpose()).mul(0.5);
  const e = new EigenvalueDecomposition(sym, { assumeSymmetric: true });
  return { values: e.realEigenvalues.map((v) => Math.max(0, v)), vectors: e.eigenvectorMatrix };
}

/**
 * |μa − μb|² + Tr(Σa) + Tr(Σb) − 2·Tr((Σa^½ Σb Σa^½)^½), with Σa^½ and the outer root taken from
 * symmetric eigendecompositions (so no complex parts arise). Clamped at 0 against rounding.
 */
export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.dim !== b.dim) throw new Error(`feature dims differ: ${a.dim} vs ${b.dim}`);
  if (a.count < 2 || b.count < 2) throw new Error(`feature statistics need at least 2 vectors, got ${a.count} and ${b.count}`);
  const dim = a.dim;
  let meanTerm = 0;
  let traces = 0;
  for (let i = 0; i < dim; i++) {
    meanTerm += (a.mean[i]! - b.mean[i]!) ** 2;
    traces += a.cov[i * dim + i]! + b.cov[i * dim + i]!;
  }
  const ea = symEig(toMatrix(a.cov, dim));
  const rootA = ea.vectors.mmul(Matrix.diag(ea.values.map(Math.sqrt))).mmul(ea.vectors.transpose());
  const inner = rootA.mmul(toMatrix(b.cov, dim)).mmul(rootA);
  const traceRoot = symEig(inner).values.reduce((s, v) => s + Math.sqrt(v), 0);
  return Math.max(0, meanTerm + traces - 2 * traceRoot);
}
