/** The masked token transformer's configuration, and its training. */
import { z } from 'zod';

const int = () => z.number().int().positive();

export const TransformerConfigSchema = z
  .strictObject({
    /** Codebook size K of the tokenizer; the [MASK] token is id K. (Taken from the tokenizer.) */
    codebookSize: int().default(512),
    /** Token grid side (h = w); N = grid² tokens per image. (Taken from the tokenizer.) */
    grid: int().default(8),
    width: int().default(256),
    depth: int().default(6),
    heads: int().default(4),
    mlpRatio: int().default(4),
    /** Width of the text embeddings it cross-attends to. (Taken from the text encoder.) */
    textDim: int().default(256),
    /**
     * 'masked' (absent: the default) fills in [MASK]ed tokens, bidirectionally (Muse); 'autoregressive'
     * predicts each token from those before it in raster order, under a causal self-attention mask,
     * the [MASK] id doubling as the start token (Parti-style baseline, decoded token by token).
     */
    objective: z.enum(['masked', 'autoregressive']).optional(),
  })
  .refine((c) => c.width % c.heads === 0, { message: 'width must be a multiple of heads', path: ['heads'] });

export type TransformerConfig = z.infer<typeof TransformerConfigSchema>;

export const TransformerTrainSchema = z.strictObject({
  batchSize: int().default(32),
  steps: int().default(10000),
  lr: z.number().positive().default(1e-3),
  warmup: z.number().int().nonnegative().default(300),
  minLrRatio: z.number().min(0).max(1).default(0.05),
  weightDecay: z.number().min(0).default(0.01),
  clip: z.number().min(0).default(1.0),
  labelSmoothing: z.number().min(0).max(1).default(0.1),
  /** Share of examples whose caption is replaced by the null condition (for classifier-free guidance). */
  condDropout: z.number().min(0).max(1).default(0.1),
  checkpointEvery: int().default(500),
  seed: z.number().int().nonnegative().default(0),
  /**
   * Keep an exponential moving average of the weights (transformer and text encoder) with this decay,
   * and ship the average (0 = none). May be turned on when a run is resumed: it starts there.
   */
  ema: z.number().min(0).lt(1).default(0),
  /**
   * Train on every image and its left–right mirror, each drawn as often (twice the examples per
   * caption; the mirrors' tokens are computed once, like the images').
   */
  augmentFlip: z.boolean().default(false),
});

export type TransformerTrainConfig = z.infer<typeof TransformerTrainSchema>;
