/** `maskgen export`: a trained bundle (+ a refiner) → a clean bundle to ship, optionally in float16. */
import type { Argv, CommandModule } from 'yargs';
import { REFINER_PART, refinerDir } from '../diffusion-refiner/io.js';
import { SamplingDefaultsSchema } from '../io/bundle.js';
import { parseConfig } from '../io/config.js';
import { exportBundle } from '../io/export.js';
import { UserError } from '../errors.js';
import { handle, printJson, type GlobalArgs } from './common.js';

interface Args extends GlobalArgs {
  bundle: string;
  refiner?: string;
  out: string;
  float16: boolean;
  credit?: string[];
  sampling?: string;
}

export const exportCommand: CommandModule<GlobalArgs, Args> = {
  command: 'export',
  describe: 'copy a trained bundle (and a refiner from another run) into a clean bundle to ship: parts only, float16 weights if asked, credits in model_index.json',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 export --bundle RUN [--refiner RUN2] --out DIR [--float16] [--credit TEXT …]')
      .option('bundle', { type: 'string', demandOption: true, describe: 'the trained bundle (a train-transformer run)' })
      .option('refiner', { type: 'string', describe: 'add the refiner of this run or bundle' })
      .option('out', { type: 'string', demandOption: true, describe: 'the folder to write (replaced)' })
      .option('float16', { type: 'boolean', default: false, describe: 'store the weights as float16 (half the size)' })
      .option('credit', { type: 'string', array: true, describe: 'a credit line for model_index.json (repeat for several)' })
      .option('sampling', {
        type: 'string',
        describe: 'the decoding settings generate uses with this bundle unless told otherwise, as JSON: {"steps", "guidance", "temperature", "choiceTemperature", "plausibility", "polish": {"rounds", "share"}} (each optional)',
      }) as unknown as Argv<Args>,
  handler: handle(async (args: Args) => {
    const extraParts = args.refiner ? { [REFINER_PART]: await refinerDir(args.refiner) } : undefined;
    let sampling;
    if (args.sampling !== undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(args.sampling);
      } catch {
        throw new UserError(`--sampling is not JSON: ${args.sampling}`);
      }
      sampling = parseConfig(SamplingDefaultsSchema, raw, '--sampling');
    }
    const r = await exportBundle({ from: args.bundle, extraParts, out: args.out, float16: args.float16, credits: args.credit, sampling });
    process.stderr.write(`maskgen: bundle ${args.out}: parts ${Object.keys(r.parts).join(', ')}, ${(r.bytes / 1e6).toFixed(1)} MB\n`);
    printJson(args, { out: args.out, bytes: r.bytes, parts: r.parts, float16: args.float16 });
  }),
};
