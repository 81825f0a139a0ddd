/** `paddle-image-feature build-model`: a target model's graph with seeded random weights. */
import { Option, type Command } from 'commander';

import { buildModel, BUILDABLE_MODELS } from '../builder.js';
import { intArg } from './args.js';
import type { CliContext } from './context.js';

interface BuildModelOptions {
  out: string;
  format: 'pir' | 'legacy';
  seed: number;
  clipActivation?: 'gelu' | 'quick_gelu';
}

/** Adds `build-model` to the program. */
export function registerBuildModel(program: Command, ctx: CliContext): void {
  program
    .command('build-model')
    .description('write the exported graph of a target model with seeded random weights')
    .argument('<name>', BUILDABLE_MODELS.join(' | '))
    .requiredOption('--out <dir>', 'output directory')
    .addOption(
      new Option('--format <format>', 'program format').choices(['pir', 'legacy']).default('pir'),
    )
    .option('--seed <n>', 'weight seed', intArg(0), 0)
    .addOption(
      new Option(
        '--clip-activation <act>',
        'CLIP MLP activation (default gelu, as PaddleClas)',
      ).choices(['gelu', 'quick_gelu']),
    )
    .action(async (name: string, o: BuildModelOptions) => {
      const started = Date.now();
      const res = await buildModel(name, o.out, {
        format: o.format,
        seed: o.seed,
        ...(o.clipActivation === undefined ? {} : { clipActivation: o.clipActivation }),
      });
      ctx.io.stdout(
        `built ${name} (${o.format}, seed ${o.seed}) in ${Date.now() - started} ms\n  ${res.programFile}\n  ${res.paramsFile}\n  ${res.configFile}\n`,
      );
    });
}
