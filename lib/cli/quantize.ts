/**
 * `paddle-image-feature quantize`: int8 post-training quantisation of a model on calibration
 * images (lib/quantize.ts), written as a quantised model directory (the model's files plus
 * quantization.json) that loads with precision 'int8' without calibrating again.
 */
import { Option, type Command } from 'commander';

import { InvalidArgumentError } from '../errors.js';
import { createModel } from '../image-feature.js';
import { resolveInputs, type ImageInput } from '../input.js';
import { writeQuantizedModel } from '../quantize.js';
import { intArg, MODEL_OPTION_HELP, modelNameFor, numberArg } from './args.js';
import type { CliContext } from './context.js';

/** Fewest calibration images the command takes (issue 18: calibration on >= 32 images). */
export const MIN_CALIBRATION_IMAGES = 32;

interface QuantizeCliOptions {
  model?: string;
  modelDir?: string;
  out: string;
  algo: 'max' | 'percentile';
  percentile: number;
  minCosine: number;
  threads: number;
}

/** Adds `quantize` to the program. */
export function registerQuantize(program: Command, ctx: CliContext): void {
  program
    .command('quantize')
    .description(
      'int8 post-training quantisation on calibration images; writes a model directory that loads with precision int8',
    )
    .argument(
      '<calibration...>',
      `calibration images, directories or URLs (${MIN_CALIBRATION_IMAGES} or more)`,
    )
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'the exported inference model to quantise')
    .requiredOption('--out <dir>', 'the quantised model directory to write (created)')
    .addOption(
      new Option('--algo <algo>', 'activation range')
        .choices(['percentile', 'max'])
        .default('percentile'),
    )
    .option(
      '--percentile <p>',
      'with --algo percentile: |x| percentile',
      numberArg(50.0001, 100),
      99.99,
    )
    .option(
      '--min-cosine <c>',
      'refuse below this worst-image feature cosine to fp32 on the calibration set',
      numberArg(-1, 1),
      0.99,
    )
    .option('--threads <n>', 'CPU threads', intArg(1, 256), 1)
    .action(async (inputs: string[], o: QuantizeCliOptions) => {
      ctx.state.code = await quantize(inputs, o, ctx);
    });
}

async function quantize(inputs: string[], o: QuantizeCliOptions, ctx: CliContext): Promise<number> {
  const items = await resolveInputs(inputs);
  // The resolved images (directories listed, URLs fetched once) are what calibrates.
  const images: ImageInput[] = items.map((i) => {
    if (i.kind === 'failed') throw i.error;
    return i.kind === 'file' ? i.path : i.kind === 'encoded' ? i.data : i.pixels;
  });
  if (items.length < MIN_CALIBRATION_IMAGES) {
    throw new InvalidArgumentError(
      `quantize needs at least ${MIN_CALIBRATION_IMAGES} calibration images, got ${items.length}`,
    );
  }
  const t0 = performance.now();
  const model = await createModel(await modelNameFor(o.model, o.modelDir), {
    ...(o.modelDir === undefined ? {} : { modelDir: o.modelDir }),
    useHpip: true,
    hpiConfig: { backend: 'paddle_mkldnn' },
    precision: 'int8',
    cpuThreads: o.threads,
    calibration: images,
    quantize: { algo: o.algo, percentile: o.percentile, minCosine: o.minCosine },
  });
  try {
    const spec = model.quantization;
    if (spec === null) throw new InvalidArgumentError('the model was not quantised');
    const file = await writeQuantizedModel(model.modelDir, o.out, spec);
    const r = spec.report;
    ctx.io.stdout(
      `quantised ${model.modelName} on ${r.rows} images in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
        `${r.int8Layers} of ${r.totalLayers} convolutions in int8; feature cosine to fp32 worst ` +
        `${r.cosineWorst.toFixed(5)}, mean ${r.cosineMean.toFixed(5)} (gate ${r.minCosine}); ` +
        `a calibration batch takes ${r.msInt8.toFixed(1)} ms in int8, ${r.msFp32.toFixed(1)} ms in fp32\n` +
        `wrote ${file}\n`,
    );
    return 0;
  } finally {
    model.close();
  }
}
