/**
 * The root of the program: PaddleX's module interface (`-c <module yaml> -o Global.mode=...
 * -o key=value`), and the full help with its section.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import type { Command } from 'commander';

import { applyOverride, CONFIG_DIR, loadModuleConfig } from '../config.js';
import { OFFICIAL_MODELS } from '../image-feature.js';
import { collect } from './args.js';
import { runMode, type CliContext } from './context.js';

const PADDLEX_HELP = `
PaddleX module interface:
  paddle-image-feature -c configs/modules/image_feature/PP-ShiTuV2_rec.yaml \\
      -o Global.mode=check_dataset -o Global.dataset_dir=./dataset/Inshop_examples
  Modes: check_dataset, train, evaluate, predict, export. Results go to <Global.output>/<mode>_result.json.
  -c also takes a shipped config by model name (${OFFICIAL_MODELS.join(', ')}).`;

/** What `--help` prints: commander's help plus the PaddleX section. */
export function fullHelp(program: Command): string {
  return `${program.helpInformation()}${PADDLEX_HELP}\n`; // commander adds the newline too
}

/**
 * `-c` accepts a file path, or the name of a shipped module config
 * (`PP-ShiTuV2_rec`, `configs/modules/image_feature/PP-ShiTuV2_rec.yaml` from any directory).
 */
function resolveConfigPath(arg: string): string {
  if (existsSync(arg)) return arg;
  const base = path.basename(arg).replace(/\.ya?ml$/, '');
  const shipped = path.join(CONFIG_DIR, `${base}.yaml`);
  if (existsSync(shipped)) return shipped;
  return arg; // loadModuleConfig reports the missing file
}

/**
 * The root's `-c/-o` options, its help section and its action: run the config's Global.mode;
 * without -c, the help (exit 2); an unknown command word, a message and the help (exit 2).
 */
export function registerPaddlexRoot(program: Command, ctx: CliContext): void {
  const { io, state } = ctx;
  program
    .option('-c, --config <yaml>', 'PaddleX module config (runs Global.mode)')
    .option('-o, --override <key=value>', 'override a config key (repeatable)', collect, [])
    .addHelpText('after', PADDLEX_HELP);
  program.action(async (opts: { config?: string; override: string[] }) => {
    const [word] = program.args;
    if (word !== undefined) {
      const known = program.commands.map((c) => c.name());
      io.stderr(
        `paddle-image-feature: unknown command '${word}' (commands: ${known.join(', ')})\n\n` +
          fullHelp(program),
      );
      state.code = 2;
      return;
    }
    if (opts.config === undefined) {
      if (opts.override.length > 0)
        io.stderr('paddle-image-feature: -o needs -c <module yaml>\n\n');
      io.stderr(fullHelp(program));
      state.code = 2;
      return;
    }
    const config = await loadModuleConfig(resolveConfigPath(opts.config));
    for (const o of opts.override) {
      applyOverride(config, o, {
        warn: (m) => {
          io.stderr(`${m}\n`);
        },
      });
    }
    state.code = await runMode(config, { ...io, progress: ctx.tty });
  });
}
