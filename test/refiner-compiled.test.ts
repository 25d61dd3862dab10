import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { RefinerConfigSchema } from '../src/diffusion-refiner/config.js';
import { Denoiser } from '../src/diffusion-refiner/denoiser.js';
import { compiledDenoiser, velocityFunction } from '../src/diffusion-refiner/inference.js';
import { expectCloseRelative, scrambleWeights } from './helpers/weights.js';

/** The refiner's denoiser compiled to one ONNX Runtime session, against the tfjs model. */
describe('compiled denoiser (one ONNX Runtime session)', () => {
  // 16 px images at factor 2: latents 4×4×3 in 2×2 patches (4 tokens), each with a 4×4 low-res block
  const config = RefinerConfigSchema.parse({
    size: 16,
    factor: 2,
    channels: 3,
    autoencoder: { channels: [4, 4, 4], latentChannels: 3 },
    denoiser: { patch: 2, width: 24, depth: 2, heads: 3, mlpRatio: 2 },
    textDim: 10,
  });
  const batch = 2;
  const length = 4;

  function model(seed: number): Denoiser {
    const m = new Denoiser(config, seed);
    scrambleWeights(m.variables(), seed); // far from the initial values (the output layer starts at zero)
    return m;
  }

  const condition = () => ({
    low: tf.randomUniform([batch, 8, 8, 3], -1, 1, 'float32', 5) as tf.Tensor4D,
    augment: [0.05, 0.2],
    text: {
      embeddings: tf.randomNormal([batch * length, config.textDim], 0, 1, 'float32', 6) as tf.Tensor2D,
      keyBias: tf.tensor2d([0, 0, 0, -1e9, 0, 0, 0, 0], [batch, length]),
    },
  });
  const latents = Float32Array.from({ length: batch * 4 * 4 * 3 }, (_, i) => Math.sin(i * 0.7));

  it('gives the tfjs model’s v-prediction at every timestep', () => {
    const m = model(1);
    const cond = condition();
    const reference = velocityFunction(m, cond, { compiled: false });
    const compiled = velocityFunction(m, cond, { compiled: true });
    for (const t of [999, 500, 3]) {
      const got = compiled(latents, t);
      expect(got.length).toBe(latents.length);
      expectCloseRelative(got, reference(latents, t));
    }
    // the timestep matters (it is an input, not baked in)
    expect(Array.from(compiled(latents, 999))).not.toEqual(Array.from(compiled(latents, 3)));
    m.dispose();
  });

  it('keeps its session while the weights stay, and refuses mismatched inputs', () => {
    const m = model(2);
    const s = compiledDenoiser(m, batch, length);
    expect(compiledDenoiser(m, batch, length)).toBe(s);
    const out = m.variables()['out.b']!;
    out.assign(tf.add(out, 1));
    expect(compiledDenoiser(m, batch, length)).not.toBe(s);
    const cond = condition();
    expect(() => velocityFunction(m, cond, { compiled: true })(latents.subarray(3), 10)).toThrow(/expected 96 latent values/);
    expect(() => velocityFunction(m, { ...cond, augment: [0.1] }, { compiled: true })).toThrow(/2 low-resolution images/);
    m.dispose();
  });
});
