/**
 * Reconstruction quality of a tokenizer over a set of images: encode → decode, then PSNR, SSIM,
 * codebook usage and perplexity.
 */
import * as tf from '@tensorflow/tfjs';
import { codeHistogram, codebookUsage, perplexity, psnr, ssim } from './metrics.js';
import type { VitVqgan } from './model.js';

export interface ReconstructionReport {
  psnr: number;
  ssim: number;
  codebookUsage: number;
  perplexity: number;
  n: number;
}

export interface EvaluateOptions {
  batchSize?: number;
  /** Called after each batch with the originals and reconstructions ([B·H·W·C] in [0, 1]) and the first index. */
  onBatch?: (start: number, originals: Float32Array, recons: Float32Array, done: number) => void | Promise<void>;
}

/**
 * `images(start, count)` gives a batch [count, H, W, C] in [0, 1] (the caller owns and we dispose it).
 */
export async function evaluateReconstruction(
  model: VitVqgan,
  total: number,
  images: (start: number, count: number) => tf.Tensor4D,
  opts: EvaluateOptions = {},
): Promise<ReconstructionReport> {
  const { imageSize: size, channels, codebookSize } = model.config;
  const bs = opts.batchSize ?? 64;
  const counts = new Float64Array(codebookSize);
  let psnrSum = 0;
  let ssimSum = 0;
  const per = size * size * channels;
  for (let start = 0; start < total; start += bs) {
    const count = Math.min(bs, total - start);
    const x = images(start, count);
    const tokens = model.encode(x);
    const recon = model.decode(tokens);
    const [orig, rec, ids] = await Promise.all([x.data(), recon.data(), tokens.data()]);
    tf.dispose([x, tokens, recon]);
    const hist = codeHistogram(ids, codebookSize);
    for (let k = 0; k < codebookSize; k++) counts[k]! += hist[k]!;
    for (let i = 0; i < count; i++) {
      const a = orig.subarray(i * per, (i + 1) * per);
      const b = rec.subarray(i * per, (i + 1) * per);
      psnrSum += Math.min(psnr(a, b), 100);
      ssimSum += ssim(a, b, size, size, channels);
    }
    await opts.onBatch?.(start, orig as Float32Array, rec as Float32Array, start + count);
  }
  return {
    psnr: psnrSum / total,
    ssim: ssimSum / total,
    codebookUsage: codebookUsage(counts),
    perplexity: perplexity(counts),
    n: total,
  };
}
