/** `paddle-image-feature run`: a model on seeded random input, timed. */
import { Option, type Command } from 'commander';

import { InvalidArgumentError } from '../errors.js';
import { loadPredictor, type Predictor } from '../predictor.js';
import { lcg32 } from '../rng.js';
import { intArg } from './args.js';
import type { CliContext, CliIo } from './context.js';

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

/** Adds `run` to the program. */
export function registerRun(program: Command, ctx: CliContext): void {
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
      await runCommand(dir, o, ctx.io);
    });
}

type Feeds = Record<string, { data: Float32Array; shape: number[] }>;

/** One seeded random tensor per model input (uniform in [-1, 1), the LCG of lib/rng.ts). */
function randomFeeds(p: Predictor, o: RunOptions): Feeds {
  const feeds: Feeds = {};
  for (const input of p.inputs) {
    let shape = input.shape.map((d, i) => (i === 0 && d < 0 ? o.batch : d));
    if (o.shape !== undefined) shape = o.shape.split(',').map(Number);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new InvalidArgumentError(
        `input '${input.name}' has dynamic dims [${input.shape.join(', ')}]: give --shape`,
      );
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const next = lcg32(o.seed);
    for (let i = 0; i < n; i++) data[i] = next() / 2147483648 - 1;
    feeds[input.name] = { data, shape };
  }
  return feeds;
}

async function runCommand(dir: string, o: RunOptions, io: CliIo): Promise<void> {
  const { threads, repeat } = o;
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
    const feeds = randomFeeds(p, o);
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
