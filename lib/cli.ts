#!/usr/bin/env node
/** The `paddle-image-feature` command. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { benchMain } from './bench.js';
import { InvalidArgumentError, PifError } from './errors.js';
import { formatModelInfo, inspectModel } from './inspect.js';
import { buildModel, BUILDABLE_MODELS } from './builder.js';
import { exportOnnx } from './export.js';
import { dumpModel } from './model.js';
import { loadPredictor } from './predictor.js';

export const USAGE = `Usage: paddle-image-feature <command> [options]

Commands:
  inspect <model_dir> [--json] [--ir]
      Format and version, inputs, outputs, op census, parameter count and bytes of a
      Paddle inference model (a PaddleX model directory or a program file).
      --json   machine-readable JSON
      --ir     also print the canonical IR text
      --require-params   fail when the parameters file is missing

  build-model <name> --out DIR [--format pir|legacy] [--seed N] [--clip-activation quick_gelu|gelu]
      Write the exported graph of PP-ShiTuV2_rec, PP-ShiTuV2_rec_CLIP_vit_base or
      PP-ShiTuV2_rec_CLIP_vit_large with seeded random weights (and its inference.yml).

  export <model_dir> --format onnx --out FILE [--opset N] [--random-weights SEED]
      Convert a Paddle model to ONNX (opset 13-17, default 17).

  run <model_dir> [--batch N] [--threads N] [--repeat N] [--seed N] [--random-weights SEED]
      Run the model on seeded random input (dynamic dims: --shape 1,3,224,224) and print
      output shapes, a checksum and the time per run.

  bench [--models shitu,vitb,vitl] [--batch 1,8] [--threads 1] [--modes normal,hpi,hpi-bf16,ort]
        [--iters N] [--min-time S] [--json] [--out FILE] [--tiny] [--skip-load]
      Benchmark normal mode, hpi (fp32, bf16) and ONNX Runtime on the builder models:
      times, GFLOP/s and % of peak, output check vs normal mode, load time and peak RSS
      (bench --help for all options). Needs onnxruntime-node for the ort mode.

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
      case 'build-model':
        return await buildModelCommand(rest, io);
      case 'export':
        return await exportCommand(rest, io);
      case 'run':
        return await runCommand(rest, io);
      case 'bench':
        return await benchMain(rest, io);
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

type Parsed = ReturnType<typeof parseArgs>;

/** parseArgs with usage errors reported as exit code 2 (returns null then). */
function parseOrUsage(
  name: string,
  args: readonly string[],
  options: NonNullable<Parameters<typeof parseArgs>[0]>['options'],
  io: CliIo,
): Parsed | null {
  try {
    return parseArgs({ args: [...args], allowPositionals: true, strict: true, options });
  } catch (err) {
    io.stderr(`paddle-image-feature ${name}: ${(err as Error).message}\n\n${USAGE}`);
    return null;
  }
}

function intOption(
  parsed: Parsed,
  key: string,
  def: number | undefined,
  min: number,
): number | undefined {
  const raw = parsed.values[key];
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(`--${key} must be an integer >= ${min}, got '${String(raw)}'`);
  }
  return n;
}

async function buildModelCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseOrUsage(
    'build-model',
    args,
    {
      out: { type: 'string' },
      format: { type: 'string', default: 'pir' },
      seed: { type: 'string' },
      'clip-activation': { type: 'string' },
    },
    io,
  );
  if (parsed === null) return 2;
  const [name] = parsed.positionals;
  const out = parsed.values['out'];
  if (parsed.positionals.length !== 1 || name === undefined || typeof out !== 'string') {
    io.stderr(
      `paddle-image-feature build-model: expected <name> and --out DIR (names: ${BUILDABLE_MODELS.join(', ')})\n`,
    );
    return 2;
  }
  const format = parsed.values['format'];
  if (format !== 'pir' && format !== 'legacy') {
    throw new InvalidArgumentError(`--format must be pir or legacy, got '${String(format)}'`);
  }
  const act = parsed.values['clip-activation'];
  if (act !== undefined && act !== 'quick_gelu' && act !== 'gelu') {
    throw new InvalidArgumentError(`--clip-activation must be quick_gelu or gelu`);
  }
  const seed = intOption(parsed, 'seed', 0, 0) ?? 0;
  const started = Date.now();
  const res = await buildModel(name, out, {
    format,
    seed,
    ...(act === undefined ? {} : { clipActivation: act }),
  });
  io.stdout(
    `built ${name} (${format}, seed ${seed}) in ${Date.now() - started} ms\n  ${res.programFile}\n  ${res.paramsFile}\n  ${res.configFile}\n`,
  );
  return 0;
}

async function exportCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseOrUsage(
    'export',
    args,
    {
      out: { type: 'string' },
      format: { type: 'string', default: 'onnx' },
      opset: { type: 'string' },
      'random-weights': { type: 'string' },
    },
    io,
  );
  if (parsed === null) return 2;
  const [dir] = parsed.positionals;
  const out = parsed.values['out'];
  if (parsed.positionals.length !== 1 || dir === undefined || typeof out !== 'string') {
    io.stderr(`paddle-image-feature export: expected <model_dir> and --out FILE\n`);
    return 2;
  }
  if (parsed.values['format'] !== 'onnx') {
    throw new InvalidArgumentError(
      `--format '${String(parsed.values['format'])}' is not supported here (onnx; Paddle formats: saveModel)`,
    );
  }
  const opset = intOption(parsed, 'opset', undefined, 13);
  const seed = intOption(parsed, 'random-weights', undefined, 0);
  const res = await exportOnnx(dir, out, {
    ...(opset === undefined ? {} : { opset }),
    ...(seed === undefined ? {} : { randomWeights: seed, requireParams: false }),
  });
  io.stdout(`wrote ${res.file} (${res.bytes} bytes)\n`);
  return 0;
}

async function runCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseOrUsage(
    'run',
    args,
    {
      batch: { type: 'string' },
      shape: { type: 'string' },
      threads: { type: 'string' },
      repeat: { type: 'string' },
      seed: { type: 'string' },
      'random-weights': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    io,
  );
  if (parsed === null) return 2;
  const [dir] = parsed.positionals;
  if (parsed.positionals.length !== 1 || dir === undefined) {
    io.stderr(`paddle-image-feature run: expected exactly one <model_dir>\n`);
    return 2;
  }
  const batch = intOption(parsed, 'batch', 1, 1) ?? 1;
  const threads = intOption(parsed, 'threads', 1, 1) ?? 1;
  const repeat = intOption(parsed, 'repeat', 1, 1) ?? 1;
  const seed = intOption(parsed, 'seed', 1, 0) ?? 1;
  const rw = intOption(parsed, 'random-weights', undefined, 0);
  const p = await loadPredictor(dir, {
    cpuThreads: threads,
    ...(rw === undefined ? {} : { randomWeights: rw }),
  });
  try {
    const feeds: Record<string, { data: Float32Array; shape: number[] }> = {};
    const shapeArg = parsed.values['shape'];
    for (const input of p.inputs) {
      let shape = input.shape.map((d, i) => (i === 0 && d < 0 ? batch : d));
      if (typeof shapeArg === 'string') shape = shapeArg.split(',').map(Number);
      if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new InvalidArgumentError(
          `input '${input.name}' has dynamic dims [${input.shape.join(', ')}]: give --shape`,
        );
      }
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      let s = seed >>> 0;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        data[i] = s / 2147483648 - 1;
      }
      feeds[input.name] = { data, shape };
    }
    const times: number[] = [];
    let outputs: Awaited<ReturnType<typeof p.run>> = {};
    for (let r = 0; r < repeat; r++) {
      const t = process.hrtime.bigint();
      outputs = await p.run(feeds);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const summary = Object.entries(outputs).map(([name, t]) => {
      let sum = 0;
      for (const v of t.data as Float32Array) sum += Math.abs(v);
      return { name, dtype: t.dtype, shape: [...t.shape], absSum: sum };
    });
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    if (parsed.values['json'] === true) {
      io.stdout(`${JSON.stringify({ outputs: summary, msPerRun: times, medianMs: median })}\n`);
    } else {
      for (const o of summary) {
        io.stdout(
          `${o.name} ${o.dtype} [${o.shape.join(', ')}] sum|x|=${o.absSum.toPrecision(8)}\n`,
        );
      }
      io.stdout(
        `median ${median.toFixed(2)} ms per run over ${repeat} run(s), ${threads} thread(s)\n`,
      );
    }
  } finally {
    p.close();
  }
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
