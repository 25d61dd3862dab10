/** Floating-point operations of the ViT-VQGAN's forward pass, for achieved-GFLOP/s figures. */
import { type VqganConfig, tokensPerSide } from './config.js';

/** FLOPs of one pre-LN block over n tokens of width d (matMuls and attention; elementwise ops ignored). */
export function blockFlops(n: number, d: number, mlpRatio: number): number {
  const proj = 2 * n * d * (4 * d); // q, k, v, output
  const attn = 2 * 2 * n * n * d; // scores and weighted sum
  const mlp = 2 * 2 * n * d * (mlpRatio * d);
  return proj + attn + mlp;
}

export function vqganFlops(c: VqganConfig): { encode: number; decode: number } {
  const n = tokensPerSide(c) ** 2;
  const patchDim = c.patchSize * c.patchSize * c.channels;
  const dw = c.decoderWidth ?? c.width;
  const dd = c.decoderDepth ?? c.depth;
  const encode = 2 * n * patchDim * c.width + c.depth * blockFlops(n, c.width, c.mlpRatio) + 2 * n * c.width * c.codeDim + 2 * n * c.codeDim * c.codebookSize;
  const decode = 2 * n * c.codeDim * dw + dd * blockFlops(n, dw, c.mlpRatio) + 2 * n * dw * patchDim;
  return { encode, decode };
}
