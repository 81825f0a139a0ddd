/** `paddle-image-feature export`: a model as Paddle inference files or ONNX. */
import { Option, type Command } from 'commander';

import type { ConfigMap } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import { exportOnnx } from '../export.js';
import { intArg } from './args.js';
import { runMode, type CliContext } from './context.js';

interface ExportOptions {
  out: string;
  format: string;
  opset?: number;
  randomWeights?: number;
}

/** Adds `export` to the program. */
export function registerExport(program: Command, ctx: CliContext): void {
  program
    .command('export')
    .description('write a model as Paddle inference files (inference.json/.pdiparams/.yml) or ONNX')
    .argument('<model_dir>', 'the model to export')
    .requiredOption(
      '--out <path>',
      'output directory, created if missing (paddle: the inference files; onnx: inference.onnx), ' +
        'or a .onnx file (onnx)',
    )
    .addOption(
      new Option('--format <format>', 'output format').choices(['paddle', 'onnx']).default('onnx'),
    )
    .option('--opset <n>', 'ONNX opset (13-17, default 17)', intArg(13, 17))
    .option(
      '--random-weights <seed>',
      'ONNX: export a program without weights with seeded random ones',
      intArg(0),
    )
    .action(async (dir: string, o: ExportOptions) => {
      if (o.format === 'paddle') {
        // ONNX-only options with --format paddle are a mistake, not something to drop quietly.
        const onnxOnly = [
          ...(o.opset === undefined ? [] : ['--opset']),
          ...(o.randomWeights === undefined ? [] : ['--random-weights']),
        ];
        if (onnxOnly.length > 0) {
          throw new InvalidArgumentError(
            `${onnxOnly.join(' and ')} apply to --format onnx only (this export is --format paddle)`,
          );
        }
        const config: ConfigMap = {
          Global: { mode: 'export', model: 'any', output: o.out },
          Export: { model_dir: dir },
        };
        // Export resolves the model by directory; the model name is only used for official models.
        ctx.state.code = await runMode(config, ctx.io);
        return;
      }
      const res = await exportOnnx(dir, o.out, {
        ...(o.opset === undefined ? {} : { opset: o.opset }),
        ...(o.randomWeights === undefined
          ? {}
          : { randomWeights: o.randomWeights, requireParams: false }),
      });
      ctx.io.stdout(`wrote ${res.file} (${res.bytes} bytes)\n`);
    });
}
