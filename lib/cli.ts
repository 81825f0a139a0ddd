#!/usr/bin/env node
/** The `paddle-image-feature` command. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { PifError } from './errors.js';
import { formatModelInfo, inspectModel } from './inspect.js';
import { dumpModel } from './model.js';

export const USAGE = `Usage: paddle-image-feature <command> [options]

Commands:
  inspect <model_dir> [--json] [--ir]
      Format and version, inputs, outputs, op census, parameter count and bytes of a
      Paddle inference model (a PaddleX model directory or a program file).
      --json   machine-readable JSON
      --ir     also print the canonical IR text
      --require-params   fail when the parameters file is missing

Options:
  -h, --help      show this help
  -v, --version   show the version
`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { packageRoot } = await import('./native.js');
  const pkg = JSON.parse(await readFile(`${packageRoot}/package.json`, 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.stderr(USAGE);
    return 2;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    io.stdout(`${await packageVersion()}\n`);
    return 0;
  }
  try {
    switch (command) {
      case 'inspect':
        return await inspectCommand(rest, io);
      default:
        io.stderr(`paddle-image-feature: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof PifError) {
      io.stderr(`paddle-image-feature: error [${err.code}]: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function inspectCommand(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean', default: false },
        ir: { type: 'boolean', default: false },
        'require-params': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.stderr(`paddle-image-feature inspect: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    io.stderr(`paddle-image-feature inspect: expected exactly one <model_dir>\n\n${USAGE}`);
    return 2;
  }
  const modelPath = parsed.positionals[0] ?? '';
  const opts = { requireParams: parsed.values['require-params'] };
  const info = await inspectModel(modelPath, opts);
  const ir = parsed.values.ir ? await dumpModel(modelPath, opts) : undefined;
  io.stdout(
    formatModelInfo(info, {
      json: parsed.values.json,
      modelPath,
      ...(ir === undefined ? {} : { ir }),
    }),
  );
  return 0;
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
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
