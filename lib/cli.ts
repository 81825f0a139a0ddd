#!/usr/bin/env node
/**
 * The `paddle-image-feature` command: friendly subcommands (predict, check-dataset, convert,
 * split, evaluate, export, inspect, bench, ...) and PaddleX's module interface
 * (`-c <module yaml> -o Global.mode=... -o key=value`).
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError, Option } from 'commander';

import { benchMain } from './bench.js';
import { buildModel, BUILDABLE_MODELS } from './builder.js';
import { applyOverride, CONFIG_DIR, loadModuleConfig, type ConfigMap } from './config.js';
import { InvalidArgumentError, PifError } from './errors.js';
import { exportOnnx } from './export.js';
import { createModel, OFFICIAL_MODELS } from './image-feature.js';
import { formatModelInfo, inspectModel } from './inspect.js';
import { dumpModel } from './model.js';
import { loadPredictor } from './predictor.js';
import { createProgress } from './progress.js';
import { lcg32 } from './rng.js';
import { pyJsonDumps } from './pyjson.js';
import { registerServeCommand } from './serve/command.js';
import { registerIndexCommands } from './vector-index/command.js';
import { errorJsonLine, intArg, MODEL_OPTION_HELP, modelNameFor, numberArg } from './cli-args.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Whether stdout/stderr are terminals (progress bars, human output). Default: detect. */
  isTTY?: boolean;
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

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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

const PADDLEX_HELP = `
PaddleX module interface:
  paddle-image-feature -c configs/modules/image_feature/PP-ShiTuV2_rec.yaml \\
      -o Global.mode=check_dataset -o Global.dataset_dir=./dataset/Inshop_examples
  Modes: check_dataset, evaluate, predict, export. Results go to <Global.output>/<mode>_result.json.
  -c also takes a shipped config by model name (${OFFICIAL_MODELS.join(', ')}).`;

/** What `--help` prints: commander's help plus the PaddleX section. */
function fullHelp(program: Command): string {
  return `${program.helpInformation()}${PADDLEX_HELP}\n`; // commander adds the newline too
}

interface State {
  code: number;
}

// Loaded on first use: the dataset and evaluation code is not needed by most commands.
async function runMode(
  ...args: Parameters<typeof import('./paddlex-modes.js').runMode>
): Promise<number> {
  return (await import('./paddlex-modes.js')).runMode(...args);
}

function buildProgram(io: CliIo, state: State, version: string): Command {
  const tty = io.isTTY ?? (process.stdout.isTTY && process.stderr.isTTY);
  const program = new Command('paddle-image-feature');
  program
    .description(
      'Image features with PaddlePaddle PP-ShiTuV2 recognition models: predict, dataset tools, evaluation, export',
    )
    .version(version, '-v, --version', 'show the version')
    .helpOption('-h, --help', 'show this help')
    .option('-c, --config <yaml>', 'PaddleX module config (runs Global.mode)')
    .option('-o, --override <key=value>', 'override a config key (repeatable)', collect, [])
    .addHelpText('after', PADDLEX_HELP)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showSuggestionAfterError(true)
    .action(async (opts: { config?: string; override: string[] }) => {
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
      state.code = await runMode(config, { ...io, progress: tty });
    });

  program
    .command('predict')
    .description('features of images (files, directories, URLs), in input order')
    .argument('<inputs...>', 'image files, directories or http(s) URLs')
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--batch-size <n>', 'images per inference call', intArg(1, 4096), 1)
    .option('--threads <n>', 'CPU threads per inference call', intArg(1, 256), 1)
    .option('--hpi', 'high-performance mode (fused oneDNN graph)', false)
    .option('--bf16', 'bf16 precision (with --hpi; needs AVX512-BF16 or AMX)', false)
    .option('--output <dir>', 'save <stem>_res.json per input into DIR')
    .option('--json', 'one JSON object per line on stdout (machine-readable)', false)
    .action(
      async (
        inputs: string[],
        o: {
          model?: string;
          modelDir?: string;
          batchSize: number;
          threads: number;
          hpi: boolean;
          bf16: boolean;
          output?: string;
          json: boolean;
        },
      ) => {
        const model = await createModel(await modelNameFor(o.model, o.modelDir), {
          ...(o.modelDir === undefined ? {} : { modelDir: o.modelDir }),
          batchSize: o.batchSize,
          cpuThreads: o.threads,
          useHpip: o.hpi || o.bf16,
          precision: o.bf16 ? 'bf16' : 'fp32',
        });
        // On a terminal with --output, a progress bar and a summary; otherwise one line per
        // result (Python-style repr, or JSON with --json) that scripts can read.
        const showBar = tty && !o.json && o.output !== undefined;
        const bar = createProgress('predict', { enabled: showBar });
        let done = 0;
        let failed = 0;
        try {
          const results = model.predict(inputs, {
            onResolved: (n) => {
              bar.setTotal(n);
            },
          });
          for await (const res of results) {
            bar.update(++done);
            if (res.error !== null) {
              failed++;
              io.stderr(`${res.inputPath ?? '<input>'}: ${res.error.message}\n`);
              if (o.json) io.stdout(`${errorJsonLine(res.inputPath, res.error)}\n`);
              continue;
            }
            const saved = o.output === undefined ? null : await res.saveToJson(o.output);
            if (o.json) io.stdout(`${res.toJsonString({ indent: null })}\n`);
            else if (!showBar) {
              io.stdout(`${res.toString()}${saved === null ? '' : `\n  saved ${saved}`}\n`);
            }
          }
        } finally {
          bar.stop();
          model.close();
        }
        if (showBar) {
          io.stdout(
            `${done - failed} result(s) saved to ${o.output ?? ''}${failed > 0 ? `, ${failed} failed` : ''}\n`,
          );
        }
        state.code = failed > 0 ? 1 : 0;
      },
    );

  program
    .command('check-dataset')
    .description(
      'validate a ShiTuRecDataset (PaddleX check_dataset): samples, histogram, result JSON',
    )
    .argument('<dataset_dir>', 'the dataset (the parent of its images/ directory, or above)')
    .option('--output <dir>', 'where check_dataset_result.json and check_dataset/ go', 'output')
    .option('--convert <type>', 'first convert from this format (LabelMe)')
    .option(
      '--split <train,gallery,query>',
      'first re-split all lines by these percents (sum 100), e.g. 70,20,10',
    )
    .option('--seed <n>', 'shuffle seed of --split', intArg(0), 123)
    .action(
      async (
        dir: string,
        o: { output: string; convert?: string; split?: string; seed: number },
      ) => {
        const config: ConfigMap = {
          Global: {
            mode: 'check_dataset',
            model: 'PP-ShiTuV2_rec',
            dataset_dir: dir,
            output: o.output,
          },
          CheckDataset: {
            convert: { enable: o.convert !== undefined, src_dataset_type: o.convert ?? null },
            split: { enable: false, seed: o.seed },
          },
        };
        if (o.split !== undefined) {
          const [train, gallery, query, ...extra] = o.split.split(',').map(Number);
          if (
            train === undefined ||
            gallery === undefined ||
            query === undefined ||
            extra.length > 0 ||
            ![train, gallery, query].every((x) => Number.isFinite(x))
          ) {
            throw new InvalidArgumentError(
              `--split expects three percents like 70,20,10, got '${o.split}'`,
            );
          }
          config['CheckDataset'] = {
            ...(config['CheckDataset'] as ConfigMap),
            split: {
              enable: true,
              train_percent: train,
              gallery_percent: gallery,
              query_percent: query,
              seed: o.seed,
            },
          };
        }
        state.code = await runMode(config, { ...io, progress: tty });
        if (state.code === 0)
          io.stdout(`result: ${path.join(o.output, 'check_dataset_result.json')}\n`);
      },
    );

  program
    .command('convert')
    .description(
      'convert a LabelMe dataset to a ShiTuRecDataset (train/gallery/query.txt 50/30/20)',
    )
    .argument('<dataset_dir>', 'directory with label.txt, annotations/ and images/')
    .addOption(new Option('--type <type>', 'source format').choices(['LabelMe']).default('LabelMe'))
    .action(async (dir: string, o: { type: string }) => {
      const { convertLabelMe } = await import('./dataset/convert.js');
      const r = await convertLabelMe(dir, { srcDatasetType: o.type });
      io.stdout(
        `converted ${r.root}: train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}` +
          `${r.backups.length > 0 ? `; backups: ${r.backups.join(', ')}` : ''}\n`,
      );
    });

  program
    .command('split')
    .description(
      're-split all list lines into train/gallery/query by percents (seeded, reproducible)',
    )
    .argument('<dataset_dir>', 'the dataset root (with train.txt / gallery.txt / query.txt)')
    .requiredOption('--train <percent>', 'train percent', numberArg())
    .requiredOption('--gallery <percent>', 'gallery percent', numberArg())
    .requiredOption('--query <percent>', 'query percent', numberArg())
    .option('--seed <n>', 'shuffle seed', intArg(0), 123)
    .action(
      async (dir: string, o: { train: number; gallery: number; query: number; seed: number }) => {
        const { splitDataset } = await import('./dataset/split.js');
        const r = await splitDataset(dir, {
          trainPercent: o.train,
          galleryPercent: o.gallery,
          queryPercent: o.query,
          seed: o.seed,
        });
        io.stdout(
          `split ${r.root} (seed ${o.seed}): train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}` +
            `${r.backups.length > 0 ? `; backups: ${r.backups.join(', ')}` : ''}\n`,
        );
      },
    );

  program
    .command('evaluate')
    .description('recall@1, recall@5 and mAP of a model on a dataset (gallery.txt vs query.txt)')
    .argument('<dataset_dir>', 'a ShiTuRecDataset')
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--batch-size <n>', 'images per inference call', intArg(1, 4096), 32)
    .option('--hpi', 'high-performance mode', false)
    .option('--output <dir>', 'where evaluate_result.json goes', 'output')
    .action(
      async (
        dir: string,
        o: { model?: string; modelDir?: string; batchSize: number; hpi: boolean; output: string },
      ) => {
        const name = await modelNameFor(o.model, o.modelDir);
        const config: ConfigMap = {
          Global: {
            mode: 'evaluate',
            model: name,
            dataset_dir: dir,
            output: o.output,
            device: 'cpu',
          },
          Evaluate: { model_dir: o.modelDir ?? name, batch_size: o.batchSize },
          Predict: { kernel_option: { run_mode: o.hpi ? 'mkldnn' : 'paddle' } },
        };
        state.code = await runMode(config, { ...io, progress: tty });
      },
    );

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
        io.stdout(
          formatModelInfo(info, { json: o.json, modelPath, ...(ir === undefined ? {} : { ir }) }),
        );
      },
    );

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
    .action(
      async (
        dir: string,
        o: { out: string; format: string; opset?: number; randomWeights?: number },
      ) => {
        if (o.format === 'paddle') {
          const config: ConfigMap = {
            Global: { mode: 'export', model: 'any', output: o.out },
            Export: { model_dir: dir },
          };
          // Export resolves the model by directory; the model name is only used for official models.
          state.code = await runMode(config, io);
          return;
        }
        const res = await exportOnnx(dir, o.out, {
          ...(o.opset === undefined ? {} : { opset: o.opset }),
          ...(o.randomWeights === undefined
            ? {}
            : { randomWeights: o.randomWeights, requireParams: false }),
        });
        io.stdout(`wrote ${res.file} (${res.bytes} bytes)\n`);
      },
    );

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
    .action(
      async (
        name: string,
        o: {
          out: string;
          format: 'pir' | 'legacy';
          seed: number;
          clipActivation?: 'gelu' | 'quick_gelu';
        },
      ) => {
        const started = Date.now();
        const res = await buildModel(name, o.out, {
          format: o.format,
          seed: o.seed,
          ...(o.clipActivation === undefined ? {} : { clipActivation: o.clipActivation }),
        });
        io.stdout(
          `built ${name} (${o.format}, seed ${o.seed}) in ${Date.now() - started} ms\n  ${res.programFile}\n  ${res.paramsFile}\n  ${res.configFile}\n`,
        );
      },
    );

  program
    .command('run')
    .description('run a model on seeded random input: output shapes, checksum, time per run')
    .argument('<model_dir>', 'the model')
    .option('--batch <n>', 'batch size for a dynamic first dim', intArg(1), 1)
    .option('--shape <dims>', 'input shape, e.g. 1,3,224,224')
    .option('--threads <n>', 'CPU threads', intArg(1, 256), 1)
    .option('--repeat <n>', 'runs', intArg(1), 1)
    .option('--seed <n>', 'input seed', intArg(0), 1)
    .option('--hpi', 'high-performance mode (fused oneDNN graph)', false)
    .addOption(
      new Option('--precision <p>', 'fp32, or bf16 (with --hpi; needs AVX512-BF16 or AMX)')
        .choices(['fp32', 'bf16'])
        .default('fp32'),
    )
    .option(
      '--random-weights <seed>',
      'run a program without weights with seeded random ones',
      intArg(0),
    )
    .option('--json', 'machine-readable JSON', false)
    .action(async (dir: string, o: RunOptions) => {
      await runCommand(dir, o, io);
    });

  program
    .command('bench')
    .description('benchmark normal mode, hpi and ONNX Runtime (bench --help for options)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      state.code = await benchMain(args, io);
    });

  registerIndexCommands(program, io);
  registerServeCommand(program, io);

  // Set last: subcommands copy the root's settings when created, and they must reject extras.
  // The root takes them so that an unknown command gets a clear message (see its action).
  program.allowExcessArguments(true);
  return program;
}

/** The top-level help text. */
export async function usage(): Promise<string> {
  return fullHelp(buildProgram(defaultIo, { code: 0 }, await packageVersion()));
}

/** Runs the CLI with `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const state: State = { code: 0 };
  const program = buildProgram(io, state, await packageVersion());
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

interface RunOptions {
  batch: number;
  shape?: string;
  threads: number;
  repeat: number;
  seed: number;
  hpi: boolean;
  precision: 'fp32' | 'bf16';
  randomWeights?: number;
  json: boolean;
}

async function runCommand(dir: string, o: RunOptions, io: CliIo): Promise<void> {
  const { batch, threads, repeat, seed } = o;
  if (o.precision === 'bf16' && !o.hpi) {
    throw new InvalidArgumentError('--precision bf16 needs --hpi (bf16 runs on the oneDNN graph)');
  }
  const p = await loadPredictor(dir, {
    cpuThreads: threads,
    runMode: o.hpi ? 'hpi' : 'normal',
    precision: o.precision,
    ...(o.randomWeights === undefined ? {} : { randomWeights: o.randomWeights }),
  });
  try {
    const feeds: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const input of p.inputs) {
      let shape = input.shape.map((d, i) => (i === 0 && d < 0 ? batch : d));
      if (o.shape !== undefined) shape = o.shape.split(',').map(Number);
      if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new InvalidArgumentError(
          `input '${input.name}' has dynamic dims [${input.shape.join(', ')}]: give --shape`,
        );
      }
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      const next = lcg32(seed);
      for (let i = 0; i < n; i++) data[i] = next() / 2147483648 - 1;
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
    const { nodes, dnnlNodes } = p.engine;
    const mode = `${p.options.runMode} (${p.options.precision}), ${nodes} nodes, ${dnnlNodes} on oneDNN`;
    if (o.json) {
      io.stdout(
        `${JSON.stringify({ outputs: summary, msPerRun: times, medianMs: median, runMode: p.options.runMode, precision: p.options.precision, nodes, dnnlNodes })}\n`,
      );
    } else {
      io.stdout(`${mode}\n`);
      for (const x of summary) {
        io.stdout(
          `${x.name} ${x.dtype} [${x.shape.join(', ')}] sum|x|=${x.absSum.toPrecision(8)}\n`,
        );
      }
      io.stdout(
        `median ${median.toFixed(2)} ms per run over ${repeat} run(s), ${threads} thread(s)\n`,
      );
    }
  } finally {
    p.close();
  }
}

/** JSON of any value, for `--json` outputs that mirror Python's json.dumps. */
export const toPyJson = (v: Parameters<typeof pyJsonDumps>[0]): string =>
  pyJsonDumps(v, { indent: 2, ensureAscii: false });

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
