/** The refiner's configuration (autoencoder + denoiser) and its training. */
import { z } from 'zod';

const int = () => z.number().int().positive();

export const AutoencoderConfigSchema = z.strictObject({
  /** Convolution widths at full, ½ and ¼ resolution; the latent is ¼ of the image side. */
  channels: z.array(int()).length(3).default([16, 32, 64]),
  /** Channels of the latent grid. */
  latentChannels: int().default(8),
});

export const DenoiserConfigSchema = z
  .strictObject({
    /** Latent cells per token side. */
    patch: int().default(2),
    width: int().default(192),
    depth: int().default(4),
    heads: int().default(4),
    mlpRatio: int().default(4),
  })
  .refine((c) => c.width % c.heads === 0, { message: 'width must be a multiple of heads', path: ['heads'] });

export const RefinerConfigSchema = z
  .strictObject({
    /** Side of the refined (high-resolution) image. */
    size: int().default(64),
    /** Upsampling factor: the low-resolution input is size / factor. */
    factor: int().default(2),
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    autoencoder: AutoencoderConfigSchema.default(AutoencoderConfigSchema.parse({})),
    denoiser: DenoiserConfigSchema.default(DenoiserConfigSchema.parse({})),
    /** Diffusion steps of the training schedule (cosine). */
    timesteps: int().default(1000),
    /** Width of the text embeddings the denoiser attends to. (Taken from its text encoder.) */
    textDim: int().default(128),
    /**
     * Scale that brings the autoencoder's latents to unit variance (measured on the data after the
     * autoencoder is trained, as Stable Diffusion's 0.18215).
     */
    latentScale: z.number().positive().default(1),
  })
  .refine((c) => c.size % 4 === 0 && c.size % c.factor === 0, { message: 'size must be a multiple of 4 and of factor', path: ['size'] })
  .refine((c) => (c.size / 4) % c.denoiser.patch === 0, { message: 'the latent side (size / 4) must be a multiple of denoiser.patch', path: ['denoiser', 'patch'] })
  .refine((c) => (c.size / c.factor) % ((c.size / 4 / c.denoiser.patch)) === 0, {
    message: 'the low-resolution side (size / factor) must be a multiple of the token grid side',
    path: ['factor'],
  });

export type RefinerConfig = z.infer<typeof RefinerConfigSchema>;

export const RefinerTrainSchema = z.strictObject({
  autoencoderSteps: int().default(1500),
  autoencoderBatchSize: int().default(16),
  autoencoderLr: z.number().positive().default(1e-3),
  steps: int().default(3000),
  batchSize: int().default(32),
  lr: z.number().positive().default(5e-4),
  warmup: z.number().int().nonnegative().default(200),
  minLrRatio: z.number().min(0).max(1).default(0.05),
  weightDecay: z.number().min(0).default(0.01),
  clip: z.number().min(0).default(1.0),
  /** Share of examples whose caption is replaced by the null condition (for classifier-free guidance). */
  condDropout: z.number().min(0).max(1).default(0.1),
  /** Conditioning augmentation: the low-resolution input gets Gaussian noise of std U(0, maxAugment) (pixels in [-1, 1]). */
  maxAugment: z.number().min(0).default(0.3),
  checkpointEvery: int().default(250),
  seed: z.number().int().nonnegative().default(0),
});

export type RefinerTrainConfig = z.infer<typeof RefinerTrainSchema>;

/** Sampling settings (the CLI's and pipeline's defaults). */
export const REFINE_DEFAULTS = { steps: 20, guidance: 1, augment: 0.05 } as const;
