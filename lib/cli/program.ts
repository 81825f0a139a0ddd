/** The commander program of the CLI: the PaddleX root and one module per command. */
import { Command } from 'commander';

import { registerBench } from './bench.js';
import { registerBuildModel } from './build-model.js';
import { registerCheckDataset } from './check-dataset.js';
import type { CliContext } from './context.js';
import { registerConvert } from './convert.js';
import { registerEvaluate } from './evaluate.js';
import { registerExport } from './export.js';
import { registerIndexCommands } from './index-commands.js';
import { registerInspect } from './inspect.js';
import { registerPaddlexRoot } from './paddlex.js';
import { registerPredict } from './predict.js';
import { registerQuantize } from './quantize.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerSplit } from './split.js';
import { registerTrain } from './train.js';

export function buildProgram(ctx: CliContext, version: string): Command {
  const { io } = ctx;
  const program = new Command('paddle-image-feature');
  program
    .description(
      'Image features with PaddlePaddle PP-ShiTuV2 recognition models: predict, dataset tools, training, evaluation, export',
    )
    .version(version, '-v, --version', 'show the version')
    .helpOption('-h, --help', 'show this help');
  registerPaddlexRoot(program, ctx);
  program
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showSuggestionAfterError(true);

  registerPredict(program, ctx);
  registerCheckDataset(program, ctx);
  registerConvert(program, ctx);
  registerSplit(program, ctx);
  registerTrain(program, ctx);
  registerEvaluate(program, ctx);
  registerInspect(program, ctx);
  registerExport(program, ctx);
  registerQuantize(program, ctx);
  registerBuildModel(program, ctx);
  registerRun(program, ctx);
  registerBench(program, ctx);
  registerIndexCommands(program, ctx);
  registerServe(program, ctx);

  // Set last: subcommands copy the root's settings when created, and they must reject extras.
  // The root takes them so that an unknown command gets a clear message (see its action).
  program.allowExcessArguments(true);
  return program;
}
