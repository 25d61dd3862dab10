/** `maskgen bench <what>`: speed figures as JSON. */
import type { Argv, CommandModule } from 'yargs';
import { benchRefine } from '../bench/refiner.js';
import { benchTokenizer } from '../bench/tokenizer.js';
import { RefinerConfigSchema, RefinerTrainSchema } from '../diffusion-refiner/config.js';
import { z } from 'zod';
import { PEER_CONFIG, benchGenerate, benchGenerateBundle, benchTrainTransformer } from '../bench/transformer.js';
import { UserError } from '../errors.js';
import { resolveBundle } from '../io/bundle.js';
import { MaskgenPipeline } from '../pipeline.js';
import { TransformerConfigSchema } from '../transformer/config.js';
import { loadConfig } from '../io/config.js';
import { VqganConfigSchema, VqganTrainSchema } from '../vqgan/config.js';
import { compiledByDefault } from '../backend/onnx/model-session.js';
import { handle, startBackend, type GlobalArgs } from './common.js';
import { positiveInt } from './train-tokenizer.js';
import { runPeer } from '../bench/peer.js';

interface TokenizerArgs extends GlobalArgs {
  config: string;
  batchSize?: number;
  runs: number;
  adversarial: boolean;
  compiled: boolean;
  peer: boolean;
}

const tokenizer: CommandModule<GlobalArgs, TokenizerArgs> = {
  command: 'tokenizer',
  describe: 'ViT-VQGAN: train images/s, encode and decode images/s, achieved GFLOP/s',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('config', { type: 'string', default: 'small', describe: 'preset name or config file (its vqgan and vqganTrain sections)' })
      .option('batch-size', { type: 'number', describe: 'override the batch size' })
      .option('runs', { type: 'number', default: 5, describe: 'measured runs (the median is reported)' })
      .option('adversarial', { type: 'boolean', default: true, describe: 'include the discriminator in the training step when the config has one' })
      .option('peer', { type: 'boolean', default: false, describe: "also run the PyTorch peer (scripts/bench-pytorch-peer.py, Debian's python3-torch) in this run and print its figures beside maskgen's, with the ratio" })
      .option('compiled', {
        type: 'boolean',
        default: true,
        describe:
          'on the onnx backend, train as one compiled ONNX Runtime session a step (generator and discriminator) and report the per-kernel step beside it ' +
          '(--no-compiled: tfjs autograd only, one ORT call a kernel); encoding and decoding run as tfjs kernels either way',
      }) as unknown as Argv<TokenizerArgs>,
  handler: handle(async (args: TokenizerArgs) => {
    const model = await loadConfig(VqganConfigSchema, args.config, 'vqgan');
    const train = await loadConfig(VqganTrainSchema, args.config, 'vqganTrain');
    if (args.batchSize !== undefined) train.batchSize = positiveInt(args.batchSize, '--batch-size');
    if (!args.adversarial) train.adversarial.weight = 0;
    await startBackend(args);
    const runs = positiveInt(args.runs, '--runs');
    const result = await benchTokenizer(model, train, runs, { compiled: args.compiled && compiledByDefault() });
    const peer = args.peer ? await runPeer('tokenizer', runs, { batchSize: train.batchSize }) : undefined;
    const vsPeer = peer && { trainStep: Number(peer.msPerTrainStep) / result.msPerTrainStep };
    process.stdout.write(JSON.stringify({ bench: 'tokenizer', config: args.config, ...result, ...(peer ? { peer, vsPeer } : {}) }) + '\n');
  }),
};

interface TransformerArgs extends GlobalArgs {
  width: number;
  depth: number;
  heads: number;
  grid: number;
  codebook: number;
  textTokens: number;
  batchSize: number;
  images: number;
  steps: number;
  runs: number;
  compiled: boolean;
  peer: boolean;
}

interface GenerateArgs extends TransformerArgs {
  bundle?: string;
  prompt: string;
  guidance: number;
}

function transformerOptions(y: Argv<GlobalArgs>, training: boolean): Argv<TransformerArgs> {
  return y
    .option('width', { type: 'number', default: PEER_CONFIG.width, describe: 'transformer width' })
    .option('depth', { type: 'number', default: PEER_CONFIG.depth, describe: 'layers' })
    .option('heads', { type: 'number', default: PEER_CONFIG.heads, describe: 'attention heads' })
    .option('grid', { type: 'number', default: PEER_CONFIG.grid, describe: 'token grid side (grid² image tokens)' })
    .option('codebook', { type: 'number', default: PEER_CONFIG.codebookSize, describe: 'codebook size' })
    .option('text-tokens', { type: 'number', default: 16, describe: 'text tokens cross-attended to' })
    .option('batch-size', { type: 'number', default: 32, describe: 'training batch size', hidden: !training })
    .option('images', { type: 'number', default: 1, describe: 'images generated together', hidden: training })
    .option('steps', { type: 'number', default: 12, describe: 'decoding steps', hidden: training })
    .option('runs', { type: 'number', default: 5, describe: 'measured runs (the median is reported)' })
    .option('peer', {
      type: 'boolean',
      default: false,
      describe: training
        ? "also run the PyTorch peer (scripts/bench-pytorch-peer.py, Debian's python3-torch) at its own configuration in this run and print its figures beside maskgen's, with the ratio"
        : "also run the PyTorch peer's generation (its own configuration, --images and --steps as given) in this run and print its figures beside maskgen's, with the ratio (not with --bundle)",
    })
    .option('compiled', {
      type: 'boolean',
      default: true,
      describe: training
        ? 'on the onnx backend, compute each step\'s gradients in one compiled ONNX Runtime session (--no-compiled: tfjs autograd, one ORT call a kernel)'
        : 'on the onnx backend, run the model as one compiled ONNX Runtime session a step (--no-compiled: as tfjs kernels, one ORT call each)',
    }) as unknown as Argv<TransformerArgs>;
}

function transformerConfig(a: TransformerArgs) {
  return TransformerConfigSchema.parse({
    width: positiveInt(a.width, '--width'),
    depth: positiveInt(a.depth, '--depth'),
    heads: positiveInt(a.heads, '--heads'),
    grid: positiveInt(a.grid, '--grid'),
    codebookSize: positiveInt(a.codebook, '--codebook'),
    textDim: positiveInt(a.width, '--width'),
    mlpRatio: 4,
  });
}

const trainTransformer: CommandModule<GlobalArgs, TransformerArgs> = {
  command: 'train-transformer',
  describe: "masked transformer training: tokens/s and GFLOP/s (defaults: the PyTorch peer's configuration)",
  builder: (y: Argv<GlobalArgs>) => transformerOptions(y, true),
  handler: handle(async (args: TransformerArgs) => {
    await startBackend(args);
    const runs = positiveInt(args.runs, '--runs');
    const batch = positiveInt(args.batchSize, '--batch-size');
    const r = await benchTrainTransformer(transformerConfig(args), batch, positiveInt(args.textTokens, '--text-tokens'), runs, args.compiled && compiledByDefault());
    // The peer is fixed at its own configuration (PEER_CONFIG): a ratio only means something there.
    const peer = args.peer ? await runPeer('transformer', runs, { batchSize: batch }) : undefined;
    const vsPeer = peer && { tokensPerSec: r.tokensPerSec / Number(peer.tokensPerSec) };
    process.stdout.write(JSON.stringify({ bench: 'train-transformer', ...r, ...(peer ? { peer, vsPeer } : {}) }) + '\n');
  }),
};

const generate: CommandModule<GlobalArgs, GenerateArgs> = {
  command: 'generate',
  describe: 'generation with classifier-free guidance: ms per image and per step, of a random model at a configuration or of a bundle (masked: parallel decoding; autoregressive: token by token)',
  builder: (y: Argv<GlobalArgs>) =>
    transformerOptions(y, false)
      .option('bundle', {
        type: 'string',
        coerce: resolveBundle,
        describe:
          "time this bundle's transformer and text encoder instead of a random model (the configuration flags are then unused): a masked bundle decodes in --steps parallel steps, an autoregressive one (transformer config objective: autoregressive) token by token, N steps, with the key/value cache on the onnx backend",
      })
      .option('prompt', { type: 'string', default: 'a picture', describe: 'with --bundle: the prompt of every image' })
      .option('guidance', { type: 'number', default: 3, describe: 'classifier-free guidance scale' })
      .example('$0 bench generate --images 16', "the peer's configuration, random weights, 16 images in 12 steps")
      .example('$0 bench generate --bundle runs/fmnist --images 16 --steps 8', 'a masked bundle in 8 parallel steps')
      .example('$0 bench generate --bundle runs/ar-fmnist --images 16', 'an autoregressive bundle, token by token') as unknown as Argv<GenerateArgs>,
  handler: handle(async (args: GenerateArgs) => {
    if (!Number.isFinite(args.guidance)) throw new UserError(`--guidance must be a number, got ${args.guidance}`);
    const images = positiveInt(args.images, '--images');
    const steps = positiveInt(args.steps, '--steps');
    const runs = positiveInt(args.runs, '--runs');
    if (args.bundle !== undefined) {
      if (args.peer) throw new UserError('--peer compares the random model at the peer\'s configuration; it does not time a bundle');
      if (!args.compiled) throw new UserError('--no-compiled times the random model only; a bundle runs as `maskgen generate` does (compiled on the onnx backend)');
      await startBackend(args);
      const pipe = await MaskgenPipeline.load(args.bundle, { refiner: false });
      try {
        const r = await benchGenerateBundle(pipe, { images, steps, guidance: args.guidance, prompt: args.prompt, runs });
        process.stdout.write(JSON.stringify({ bench: 'generate', bundle: args.bundle, ...r }) + '\n');
      } finally {
        pipe.dispose();
      }
      return;
    }
    await startBackend(args);
    const r = await benchGenerate(transformerConfig(args), images, steps, positiveInt(args.textTokens, '--text-tokens'), runs, args.compiled && compiledByDefault(), args.guidance);
    // The peer is fixed at its own configuration and guidance 3: a ratio only means something there.
    const peer = args.peer ? await runPeer('transformer', runs, { images, steps, generateOnly: true }) : undefined;
    const vsPeer = peer && { imagesPerSec: Number(peer.msPerImage) / r.msPerImage };
    process.stdout.write(JSON.stringify({ bench: 'generate', ...r, ...(peer ? { peer, vsPeer } : {}) }) + '\n');
  }),
};

interface RefineArgs extends GlobalArgs {
  config: string;
  images: number;
  steps: number;
  guidance: number;
  batchSize?: number;
  textTokens: number;
  runs: number;
  compiled: boolean;
}

const refine: CommandModule<GlobalArgs, RefineArgs> = {
  command: 'refine',
  describe: "latent-diffusion refiner: images/s and ms per DDIM step (with guidance), ms per training step of the autoencoder and the denoiser, at a preset's configuration",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('config', { type: 'string', default: 'small', describe: 'preset name or config file (its refiner and refinerTrain sections)' })
      .option('images', { type: 'number', default: 1, describe: 'images refined together' })
      .option('steps', { type: 'number', default: 20, describe: 'DDIM steps' })
      .option('guidance', { type: 'number', default: 3, describe: 'classifier-free guidance scale (1 or 0 runs one pass per step instead of two)' })
      .option('batch-size', { type: 'number', describe: "denoiser training batch size (default: the preset's)" })
      .option('text-tokens', { type: 'number', default: 12, describe: 'text tokens cross-attended to' })
      .option('runs', { type: 'number', default: 3, describe: 'measured runs (the median is reported)' })
      .option('compiled', { type: 'boolean', default: true, describe: "on the onnx backend, sample with the denoiser and train the autoencoder and the denoiser as one compiled ONNX Runtime session a step, and report each training step's per-kernel time beside it (--no-compiled: tfjs kernels only, one ORT call each)" }) as unknown as Argv<RefineArgs>,
  handler: handle(async (args: RefineArgs) => {
    const raw = await loadConfig(z.record(z.string(), z.unknown()), args.config, 'refiner');
    const text = await loadConfig(z.looseObject({ dim: z.number().optional() }), args.config, 'textEncoder');
    const config = RefinerConfigSchema.parse({ ...raw, textDim: text.dim ?? 128 });
    const train = await loadConfig(RefinerTrainSchema, args.config, 'refinerTrain');
    await startBackend(args);
    const result = await benchRefine(config, {
      images: positiveInt(args.images, '--images'),
      steps: positiveInt(args.steps, '--steps'),
      guidance: args.guidance,
      batchSize: args.batchSize === undefined ? train.batchSize : positiveInt(args.batchSize, '--batch-size'),
      autoencoderBatchSize: train.autoencoderBatchSize,
      textTokens: positiveInt(args.textTokens, '--text-tokens'),
      runs: positiveInt(args.runs, '--runs'),
      compiled: args.compiled && compiledByDefault(),
    });
    process.stdout.write(JSON.stringify({ bench: 'refine', configName: args.config, ...result }) + '\n');
  }),
};

export const benchCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'bench <what>',
  describe: 'benchmarks, printing one JSON object: tokenizer, train-transformer, generate, refine',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .command(tokenizer as never)
      .command(trainTransformer as never)
      .command(generate as never)
      .command(refine as never)
      .demandCommand(1, 'name a benchmark: tokenizer, train-transformer, generate or refine'),
  handler: () => {},

};
