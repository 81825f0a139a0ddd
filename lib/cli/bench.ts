/** `paddle-image-feature bench`: the benchmark (lib/bench), which parses its own options. */
import type { Command } from 'commander';

import type { CliContext } from './context.js';

/** Adds `bench` to the program; the benchmark code loads only when it runs. */
export function registerBench(program: Command, ctx: CliContext): void {
  program
    .command('bench')
    .description('benchmark normal mode, hpi and ONNX Runtime (bench --help for options)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { benchMain } = await import('../bench/index.js');
      ctx.state.code = await benchMain(args, ctx.io);
    });
}
