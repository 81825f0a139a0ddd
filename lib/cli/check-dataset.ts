/** `paddle-image-feature check-dataset`: PaddleX's check_dataset mode with friendly options. */
import path from 'node:path';

import type { Command } from 'commander';

import type { ConfigMap } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import { intArg } from './args.js';
import { runMode, type CliContext } from './context.js';

interface CheckDatasetOptions {
  output: string;
  convert?: string;
  split?: string;
  seed: number;
}

/** Adds `check-dataset` to the program. */
export function registerCheckDataset(program: Command, ctx: CliContext): void {
  program
    .command('check-dataset')
    .description(
      'validate a ShiTuRecDataset (PaddleX check_dataset): samples, histogram, result JSON',
    )
    .argument('<dataset_dir>', 'the dataset (the parent of its images/ directory, or above)')
    .option('--output <dir>', 'where check_dataset_result.json and check_dataset/ go', 'output')
    .option('--convert <type>', 'first convert from this format (LabelMe)')
    .option(
      '--split <train,gallery,query>',
      'first re-split all lines by these percents (sum 100), e.g. 70,20,10',
    )
    .option('--seed <n>', 'shuffle seed of --split', intArg(0), 123)
    .action(async (dir: string, o: CheckDatasetOptions) => {
      const { io, state } = ctx;
      state.code = await runMode(checkDatasetConfig(dir, o), { ...io, progress: ctx.tty });
      if (state.code === 0)
        io.stdout(`result: ${path.join(o.output, 'check_dataset_result.json')}\n`);
    });
}

/** The PaddleX module config of the command line. */
function checkDatasetConfig(dir: string, o: CheckDatasetOptions): ConfigMap {
  const config: ConfigMap = {
    Global: {
      mode: 'check_dataset',
      model: 'PP-ShiTuV2_rec',
      dataset_dir: dir,
      output: o.output,
    },
    CheckDataset: {
      convert: { enable: o.convert !== undefined, src_dataset_type: o.convert ?? null },
      split: { enable: false, seed: o.seed },
    },
  };
  if (o.split !== undefined) {
    const [train, gallery, query, ...extra] = o.split.split(',').map(Number);
    if (
      train === undefined ||
      gallery === undefined ||
      query === undefined ||
      extra.length > 0 ||
      ![train, gallery, query].every((x) => Number.isFinite(x))
    ) {
      throw new InvalidArgumentError(
        `--split expects three percents like 70,20,10, got '${o.split}'`,
      );
    }
    config['CheckDataset'] = {
      ...(config['CheckDataset'] as ConfigMap),
      split: {
        enable: true,
        train_percent: train,
        gallery_percent: gallery,
        query_percent: query,
        seed: o.seed,
      },
    };
  }
  return config;
}
