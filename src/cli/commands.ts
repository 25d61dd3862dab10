/** The list of subcommands, one module each. */
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.js';
import { dataCommand } from './data.js';
import { editCommand } from './edit.js';
import { exportCommand } from './export.js';
import { generateCommand } from './generate.js';
import { reconstructCommand } from './reconstruct.js';
import { refineCommand } from './refine.js';
import { serveCommand } from './serve.js';
import { trainRefinerCommand } from './train-refiner.js';
import { trainTokenizerCommand } from './train-tokenizer.js';
import { trainTransformerCommand } from './train-transformer.js';
import { workerCommand } from './worker.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  dataCommand,
  trainTokenizerCommand,
  reconstructCommand,
  trainTransformerCommand,
  trainRefinerCommand,
  generateCommand,
  refineCommand,
  editCommand,
  exportCommand,
  benchCommand,
  serveCommand,
  workerCommand,
];
