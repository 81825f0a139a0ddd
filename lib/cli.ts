#!/usr/bin/env node
/**
 * The `paddle-image-feature` command: friendly subcommands (predict, check-dataset, convert,
 * split, evaluate, export, inspect, bench, ...) and PaddleX's module interface
 * (`-c <module yaml> -o Global.mode=... -o key=value`). One module per command in lib/cli/.
 */
import { CommanderError } from 'commander';

import { cliContext, defaultIo, type CliIo, type CliState } from './cli/context.js';
import { fullHelp } from './cli/paddlex.js';
import { buildProgram } from './cli/program.js';
import { PifError } from './errors.js';
import { isMainModule } from './main-module.js';
import { pyJsonDumps } from './pyjson.js';

export type { CliIo } from './cli/context.js';

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { packageRoot } = await import('./native.js');
  const pkg = JSON.parse(await readFile(`${packageRoot}/package.json`, 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

/** The top-level help text. */
export async function usage(): Promise<string> {
  return fullHelp(buildProgram(cliContext(defaultIo), await packageVersion()));
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const state: CliState = { code: 0 };
  const program = buildProgram(cliContext(io, state), await packageVersion());
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every usage error exits 2 (the message is already printed).
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return 0;
      }
      return 2;
    }
    if (err instanceof PifError) {
      io.stderr(`paddle-image-feature: error [${err.code}]: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** JSON of any value, for `--json` outputs that mirror Python's json.dumps. */
export const toPyJson = (v: Parameters<typeof pyJsonDumps>[0]): string =>
  pyJsonDumps(v, { indent: 2, ensureAscii: false });

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `paddle-image-feature: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 70;
    },
  );
}
