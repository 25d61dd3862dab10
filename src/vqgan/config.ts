/** The ViT-VQGAN's configuration: the model (saved with every checkpoint) and its training. */
import { z } from 'zod';

const int = () => z.number().int().positive();

export const VqganConfigSchema = z
  .strictObject({
    imageSize: int().default(32),
    channels: z.union([z.literal(1), z.literal(3)]).default(3),
    patchSize: int().default(4),
    width: int().default(128),
    depth: int().default(4),
    heads: int().default(4),
    mlpRatio: int().default(4),
    /** Decoder width and depth (ViT-VQGAN makes the decoder at least as big as the encoder). */
    decoderWidth: int().optional(),
    decoderDepth: int().optional(),
    /** Number of codes, and the dimension of the factorized lookup space they live in. */
    codebookSize: int().default(512),
    codeDim: int().default(16),
  })
  .refine((c) => c.imageSize % c.patchSize === 0, { message: 'imageSize must be a multiple of patchSize', path: ['patchSize'] })
  .refine((c) => c.width % c.heads === 0, { message: 'width must be a multiple of heads', path: ['heads'] })
  .refine((c) => (c.decoderWidth ?? c.width) % c.heads === 0, { message: 'decoderWidth must be a multiple of heads', path: ['decoderWidth'] });

export type VqganConfig = z.infer<typeof VqganConfigSchema>;

export const VqganTrainSchema = z.strictObject({
  batchSize: int().default(32),
  steps: int().default(10000),
  lr: z.number().positive().default(1e-3),
  warmup: z.number().int().nonnegative().default(200),
  minLrRatio: z.number().min(0).max(1).default(0.1),
  weightDecay: z.number().min(0).default(1e-4),
  clip: z.number().min(0).default(1.0),
  /** Pixel losses on images scaled to [-1, 1]. */
  l2: z.number().min(0).default(1.0),
  l1: z.number().min(0).default(0.1),
  /** Codebook loss weight and commitment weight β (ViT-VQGAN: 0.25). */
  codebook: z.number().min(0).default(1.0),
  beta: z.number().min(0).default(0.25),
  /** Every this many steps, codes unused since the last restart are re-seeded from encoder outputs (0: off). */
  restartEvery: z.number().int().nonnegative().default(100),
  adversarial: z
    .strictObject({
      /** Generator's adversarial weight once on; 0 turns the discriminator off. */
      weight: z.number().min(0).default(0.1),
      /** Step at which the discriminator starts (its warm-up). */
      start: z.number().int().nonnegative().default(2000),
      width: int().default(32),
      lr: z.number().positive().default(2e-4),
    })
    .prefault({}),
  augmentFlip: z.boolean().default(false),
  fit: z.enum(['fill', 'contain']).default('fill'),
  checkpointEvery: int().default(500),
  seed: z.number().int().nonnegative().default(0),
});

export type VqganTrainConfig = z.infer<typeof VqganTrainSchema>;

export function tokensPerSide(c: VqganConfig): number {
  return c.imageSize / c.patchSize;
}
