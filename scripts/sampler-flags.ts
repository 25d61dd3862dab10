/**
 * The decoding flags the evaluation scripts share (each optional: unset falls to the bundle's
 * `sampling`, then the library's defaults), and the `generate` options they make.
 */
import type { Argv } from 'yargs';
import type { GenerateOptions } from '../src/pipeline.js';

export interface SamplerFlags {
  steps?: number;
  temperature?: number;
  choiceTemperature?: number;
  guidanceSchedule?: 'constant' | 'linear';
  plausibility?: number;
  polish?: string;
  topK?: number;
}

export function samplerFlags<T>(y: Argv<T>): Argv<T & SamplerFlags> {
  return y
    .option('steps', { type: 'number' })
    .option('temperature', { type: 'number' })
    .option('choice-temperature', { type: 'number' })
    .option('guidance-schedule', { choices: ['constant', 'linear'] as const })
    .option('plausibility', { type: 'number', describe: "guide only among tokens at least this share as probable as the prompt's most probable one (0 = off)" })
    .option('polish', { type: 'string', describe: 'ROUNDS,SHARE: re-mask and resample the least probable tokens after decoding' })
    .option('top-k', { type: 'number', describe: 'autoregressive bundles: sample among the k most likely tokens only (default: all)' }) as Argv<T & SamplerFlags>;
}

/** The flags as `generate` options (only those given). */
export function samplerOptions(a: SamplerFlags): Partial<GenerateOptions> {
  const [rounds, share] = (a.polish ?? '0,0').split(',').map(Number);
  const out: Partial<GenerateOptions> = {
    steps: a.steps,
    temperature: a.temperature,
    choiceTemperature: a.choiceTemperature,
    guidanceSchedule: a.guidanceSchedule,
    plausibility: a.plausibility,
    polish: rounds ? { rounds, share: share! } : undefined,
    topK: a.topK,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}
