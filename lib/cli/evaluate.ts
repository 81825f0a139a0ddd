/** `paddle-image-feature evaluate`: PaddleX's evaluate mode with friendly options. */
import type { Command } from 'commander';

import type { ConfigMap } from '../config.js';
import {
  HPI_OPTION_HELP,
  hpiBackendOption,
  intArg,
  MODEL_OPTION_HELP,
  modelNameFor,
} from './args.js';
import { runMode, type CliContext } from './context.js';

interface EvaluateOptions {
  model?: string;
  modelDir?: string;
  batchSize: number;
  hpi: boolean;
  hpiBackend?: string;
  output: string;
}

/** Adds `evaluate` to the program. */
export function registerEvaluate(program: Command, ctx: CliContext): void {
  program
    .command('evaluate')
    .description('recall@1, recall@5 and mAP of a model on a dataset (gallery.txt vs query.txt)')
    .argument('<dataset_dir>', 'a ShiTuRecDataset')
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--batch-size <n>', 'images per inference call', intArg(1, 4096), 32)
    .option('--hpi', HPI_OPTION_HELP, false)
    .addOption(hpiBackendOption())
    .option('--output <dir>', 'where evaluate_result.json goes', 'output')
    .action(async (dir: string, o: EvaluateOptions) => {
      const name = await modelNameFor(o.model, o.modelDir);
      const config: ConfigMap = {
        Global: {
          mode: 'evaluate',
          model: name,
          dataset_dir: dir,
          output: o.output,
          device: 'cpu',
        },
        Evaluate: { model_dir: o.modelDir ?? name, batch_size: o.batchSize },
        Predict: {
          kernel_option: { run_mode: 'paddle' },
          use_hpip: o.hpi || o.hpiBackend !== undefined,
          hpi_config: o.hpiBackend === undefined ? null : { backend: o.hpiBackend },
        },
      };
      ctx.state.code = await runMode(config, { ...ctx.io, progress: ctx.tty });
    });
}
