/** `paddle-image-feature predict`: features of images, in input order. */
import type { Command } from 'commander';

import { createModel } from '../image-feature.js';
import { createProgress } from '../progress.js';
import { engineNote } from '../hpi-config.js';
import {
  errorJsonLine,
  HPI_OPTION_HELP,
  hpiBackendOption,
  hpiModelOptions,
  intArg,
  MODEL_OPTION_HELP,
  modelNameFor,
} from './args.js';
import type { CliContext } from './context.js';
import { FailedInputs } from './failures.js';

interface PredictOptions {
  model?: string;
  modelDir?: string;
  batchSize: number;
  threads: number;
  hpi: boolean;
  hpiBackend?: string;
  bf16: boolean;
  output?: string;
  json: boolean;
}

/** Adds `predict` to the program. */
export function registerPredict(program: Command, ctx: CliContext): void {
  program
    .command('predict')
    .description('features of images (files, directories, URLs), in input order')
    .argument('<inputs...>', 'image files, directories or http(s) URLs')
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--batch-size <n>', 'images per inference call', intArg(1, 4096), 1)
    .option('--threads <n>', 'CPU threads per inference call', intArg(1, 256), 1)
    .option('--hpi', HPI_OPTION_HELP, false)
    .addOption(hpiBackendOption())
    .option('--bf16', 'bf16 precision (hpi on paddle_mkldnn; needs AVX512-BF16 or AMX)', false)
    .option('--output <dir>', 'save <stem>_res.json per input into DIR')
    .option('--json', 'one JSON object per line on stdout (machine-readable)', false)
    .action(async (inputs: string[], o: PredictOptions) => {
      ctx.state.code = await predict(inputs, o, ctx);
    });
}

async function predict(inputs: string[], o: PredictOptions, ctx: CliContext): Promise<number> {
  const { io } = ctx;
  const model = await createModel(await modelNameFor(o.model, o.modelDir), {
    ...(o.modelDir === undefined ? {} : { modelDir: o.modelDir }),
    batchSize: o.batchSize,
    cpuThreads: o.threads,
    ...hpiModelOptions({ ...o, hpi: o.hpi || o.bf16 }),
    precision: o.bf16 ? 'bf16' : 'fp32',
  });
  if (model.runMode === 'hpi' || o.hpi || o.hpiBackend !== undefined) {
    io.stderr(`${engineNote(model.engine)}\n`);
  }
  // On a terminal with --output, a progress bar and a summary; otherwise one line per
  // result (Python-style repr, or JSON with --json) that scripts can read.
  const showBar = ctx.tty && !o.json && o.output !== undefined;
  const bar = createProgress('predict', { enabled: showBar });
  let done = 0;
  const failed = new FailedInputs(io);
  try {
    const results = model.predict(inputs, {
      onResolved: (n) => {
        bar.setTotal(n);
      },
    });
    for await (const res of results) {
      bar.update(++done);
      if (res.error !== null) {
        failed.report(res.inputPath, res.error);
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
      `${done - failed.count} result(s) saved to ${o.output ?? ''}${failed.count > 0 ? `, ${failed.count} failed` : ''}\n`,
    );
  }
  return failed.count > 0 ? 1 : 0;
}
