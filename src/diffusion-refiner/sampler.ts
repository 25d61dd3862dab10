/**
 * The deterministic DDIM sampler (η = 0) as a loop over plain arrays: the caller supplies the model
 * (x_t, t) → v already combined with guidance; the sampler holds no tensors, so nothing grows across
 * steps.
 */
import { ddimStep, ddimTimesteps } from './schedule.js';

export interface DdimOptions {
  /** ᾱ_t of the training schedule, t = 0 … T−1. */
  alphasCumprod: ArrayLike<number>;
  steps: number;
  /** x_T: standard normal noise, the shape of the latents. */
  noise: Float32Array;
  /** The model's v-prediction for x_t at timestep t. */
  predict: (xt: Float32Array, t: number) => Float32Array;
  onStep?: (done: number, total: number) => void;
}

/** Runs DDIM from x_T = noise down to x_0 and returns x_0. */
export function ddimSample(o: DdimOptions): Float32Array {
  const ts = ddimTimesteps(o.alphasCumprod.length, o.steps);
  let x = o.noise;
  ts.forEach((t, i) => {
    const v = o.predict(x, t);
    if (v.length !== x.length) throw new Error(`denoiser returned ${v.length} values for ${x.length} latents`);
    const prev = i + 1 < ts.length ? o.alphasCumprod[ts[i + 1]!]! : 1;
    x = ddimStep(x, v, o.alphasCumprod[t]!, prev);
    o.onStep?.(i + 1, ts.length);
  });
  return x;
}
