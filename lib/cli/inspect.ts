/** `paddle-image-feature inspect`: what a Paddle inference model holds. */
import type { Command } from 'commander';

import { formatModelInfo, inspectModel } from '../inspect.js';
import { dumpModel } from '../model.js';
import type { CliContext } from './context.js';

/** Adds `inspect` to the program. */
export function registerInspect(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .description('format, inputs, outputs, op census and parameters of a Paddle inference model')
    .argument('<model_dir>', 'a PaddleX model directory or a program file')
    .option('--json', 'machine-readable JSON', false)
    .option('--ir', 'also print the canonical IR text', false)
    .option('--require-params', 'fail when the parameters file is missing', false)
    .action(
      async (modelPath: string, o: { json: boolean; ir: boolean; requireParams: boolean }) => {
        const opts = { requireParams: o.requireParams };
        const info = await inspectModel(modelPath, opts);
        const ir = o.ir ? await dumpModel(modelPath, opts) : undefined;
        ctx.io.stdout(
          formatModelInfo(info, { json: o.json, modelPath, ...(ir === undefined ? {} : { ir }) }),
        );
      },
    );
}
