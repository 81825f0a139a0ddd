/** `paddle-image-feature train`: PaddleX's train mode with friendly options (lib/train/train.ts). */
import type { Command } from 'commander';

import type { ConfigMap } from '../config.js';
import { intArg, MODEL_OPTION_HELP, modelNameFor, numberArg } from './args.js';
import { runMode, type CliContext } from './context.js';

interface TrainCliOptions {
  model?: string;
  modelDir?: string;
  output: string;
  tier: string;
  epochs: number;
  batchSize?: number;
  lr?: number;
  warmup: number;
  numClasses?: number;
  views: number;
  seed: number;
  threads: number;
  evalInterval: number;
  saveInterval: number;
  resume?: string;
}

/** Adds `train` to the program. */
export function registerTrain(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .description(
      'fine-tune a model on a ShiTuRecDataset on the CPU (tier head: the backbone frozen; ' +
        'tier last-stage: stage 4 trained too); ' +
        'PaddleX outputs (best_model/, latest/, epoch_N/, train.log, train_results.json)',
    )
    .argument(
      '<dataset_dir>',
      'a ShiTuRecDataset (train.txt; gallery.txt and query.txt for evaluation)',
    )
    .option('--model <name>', MODEL_OPTION_HELP)
    .option(
      '--model-dir <dir>',
      'start from this inference model directory (default: the official model)',
    )
    .option('--output <dir>', 'where the outputs go', 'output')
    .option(
      '--tier <tier>',
      'head (backbone frozen, cached features) or last-stage (PP-ShiTuV2_rec: stage 4 + tail on every batch)',
      'head',
    )
    .option('--epochs <n>', 'epochs', intArg(1, 100000), 20)
    .option(
      '--batch-size <n>',
      "batch size (default: the recipe's, 128 for PP-ShiTuV2_rec (a multiple of 4), 32 for CLIP)",
      intArg(2, 65536),
    )
    .option(
      '--lr <x>',
      "learning rate (default: the recipe's, 0.01 / 0.001 for CLIP)",
      numberArg(0, 100),
    )
    .option('--warmup <n>', 'warmup epochs', intArg(0, 100000), 5)
    .option(
      '--num-classes <n>',
      'classes of the new head (default: the labels of train.txt)',
      intArg(1, 1 << 24),
    )
    .option(
      '--views <n>',
      'seeded augmented views per training image (tier head; last-stage draws a new one per epoch)',
      intArg(1, 1024),
      4,
    )
    .option('--seed <n>', 'seed of the views, the sampler and the head', intArg(0), 0)
    .option('--threads <n>', 'CPU threads', intArg(1, 1024), 1)
    .option('--eval-interval <n>', 'evaluate every n epochs', intArg(1), 1)
    .option('--save-interval <n>', 'write epoch_N/ every n epochs', intArg(1), 1)
    .option('--resume <checkpoint>', 'continue a run from its checkpoint (e.g. output/latest)')
    .action(async (dir: string, o: TrainCliOptions) => {
      const name = await modelNameFor(o.model, o.modelDir);
      const config: ConfigMap = {
        Global: {
          mode: 'train',
          model: name,
          dataset_dir: dir,
          output: o.output,
          device: 'cpu',
          seed: o.seed,
        },
        Train: {
          tier: o.tier,
          epochs_iters: o.epochs,
          ...(o.batchSize === undefined ? {} : { batch_size: o.batchSize }),
          ...(o.lr === undefined ? {} : { learning_rate: o.lr }),
          warmup_steps: o.warmup,
          views: o.views,
          cpu_threads: o.threads,
          eval_interval: o.evalInterval,
          save_interval: o.saveInterval,
          pretrain_weight_path: o.modelDir ?? name,
          ...(o.numClasses === undefined ? {} : { num_classes: o.numClasses }),
          ...(o.resume === undefined ? {} : { resume_path: o.resume }),
        },
      };
      ctx.state.code = await runMode(config, { ...ctx.io, progress: ctx.tty });
    });
}
